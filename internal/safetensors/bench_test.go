package safetensors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"testing"

	"github.com/rflowrt/rflow/internal/benchutil"
)

// syntheticSpec is one tensor of a synthetic bf16 checkpoint.
type syntheticSpec struct {
	name  string
	shape []int
}

// transformerLikeSpecs is ~208 MiB of bf16 shaped like a small DiT: 8 blocks of qkv, projection, MLP
// and norm weights plus a 16 MiB embedding (the largest tensor: 32 MiB as float32).
func transformerLikeSpecs() []syntheticSpec {
	specs := []syntheticSpec{{"embed.weight", []int{8192, 1024}}}
	for i := range 8 {
		p := "blocks." + strconv.Itoa(i) + "."
		specs = append(specs,
			syntheticSpec{p + "attn.qkv.weight", []int{3 * 1024, 1024}},
			syntheticSpec{p + "attn.proj.weight", []int{1024, 1024}},
			syntheticSpec{p + "mlp.up.weight", []int{4096, 1024}},
			syntheticSpec{p + "mlp.down.weight", []int{1024, 4096}},
			syntheticSpec{p + "norm.weight", []int{1024}})
	}
	return specs
}

// writeSyntheticBF16 writes a bf16 safetensors file tensor by tensor through a small buffer, so that
// making the file does not itself raise the process's peak memory. It returns the file size.
func writeSyntheticBF16(path string, specs []syntheticSpec) (int64, error) {
	sort.Slice(specs, func(i, j int) bool { return specs[i].name < specs[j].name })
	var hdr bytes.Buffer
	hdr.WriteByte('{')
	var off int64
	for i, s := range specs {
		n := int64(2)
		for _, d := range s.shape {
			n *= int64(d)
		}
		name, _ := json.Marshal(s.name)
		shape, _ := json.Marshal(s.shape)
		if i > 0 {
			hdr.WriteByte(',')
		}
		fmt.Fprintf(&hdr, `%s:{"dtype":"BF16","shape":%s,"data_offsets":[%d,%d]}`, name, shape, off, off+n)
		off += n
	}
	hdr.WriteByte('}')
	for hdr.Len()%8 != 0 {
		hdr.WriteByte(' ')
	}
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.Write(binary.LittleEndian.AppendUint64(nil, uint64(hdr.Len())))
	w.Write(hdr.Bytes())
	x := uint32(2463534242)
	chunk := make([]byte, 1<<16)
	for left := off; left > 0; left -= int64(len(chunk)) {
		for i := 0; i < len(chunk); i += 2 {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			// Magnitudes between 2^-5 and 4 with random mantissas and signs, like trained weights.
			chunk[i], chunk[i+1] = byte(x), byte(x>>8)&0x80|byte(0x3d+x%5)
		}
		w.Write(chunk[:min(int64(len(chunk)), left)])
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	return 8 + int64(hdr.Len()) + off, f.Close()
}

// BenchmarkFloat32Stream streams every tensor of a ~208 MiB bf16 file one at a time and reports the
// growth of the peak resident set (VmHWM, reset through /proc/self/clear_refs before each run) over
// the resident set before it. It should stay near a few times the largest tensor (Go's heap keeps
// garbage up to GOGC before collecting), not the file size or its float32 size.
//
//	go test -run '^$' -bench Float32Stream -benchtime 3x ./internal/safetensors
func BenchmarkFloat32Stream(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("reads peak RSS from /proc/self/status")
	}
	path := filepath.Join(b.TempDir(), "synthetic-bf16.safetensors")
	specs := transformerLikeSpecs()
	size, err := writeSyntheticBF16(path, specs)
	if err != nil {
		b.Fatal(err)
	}
	var largest int64
	for _, s := range specs {
		n := int64(4)
		for _, d := range s.shape {
			n *= int64(d)
		}
		largest = max(largest, n)
	}
	for _, mode := range []string{"Float32", "Raw+Release", "Raw"} {
		b.Run(mode, func(b *testing.B) {
			r, err := Open(path)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			names := r.Names()
			runtime.GC()
			debug.FreeOSMemory()
			reset := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
			before, _ := benchutil.StatusKB("VmRSS")
			if !reset {
				before, _ = benchutil.StatusKB("VmHWM") // growth is then a lower bound
			}
			b.SetBytes(size)
			var sink float32
			for b.Loop() {
				for _, name := range names {
					switch mode {
					case "Float32":
						v, err := r.Float32(name)
						if err != nil {
							b.Fatal(err)
						}
						sink += v[len(v)-1]
					default: // a converter copying the bytes on (touch every page), with or without Release
						raw, err := r.Raw(name)
						if err != nil {
							b.Fatal(err)
						}
						for i := 0; i < len(raw); i += 4096 {
							sink += float32(raw[i])
						}
						if mode == "Raw+Release" {
							r.Release(name)
						}
					}
				}
			}
			peak, _ := benchutil.StatusKB("VmHWM")
			b.ReportMetric(float64(peak-before)/1024, "peak-RSS-growth-MiB")
			b.ReportMetric(float64(largest)/(1<<20), "largest-f32-MiB")
			b.ReportMetric(float64(size)/(1<<20), "file-MiB")
			_ = sink
		})
	}
}
