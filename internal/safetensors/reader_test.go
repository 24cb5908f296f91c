package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// le builds little-endian bytes from values of one width.
func le[T uint8 | uint16 | uint32 | uint64](v ...T) []byte {
	var b []byte
	for _, x := range v {
		switch x := any(x).(type) {
		case uint8:
			b = append(b, x)
		case uint16:
			b = binary.LittleEndian.AppendUint16(b, x)
		case uint32:
			b = binary.LittleEndian.AppendUint32(b, x)
		case uint64:
			b = binary.LittleEndian.AppendUint64(b, x)
		}
	}
	return b
}

// dtypeCase is a tensor of every dtype with hand-written bit patterns and their float32 values from the
// formats' definitions (exact, or rounded to nearest-even where float32 cannot hold the value).
type dtypeCase struct {
	tensor Tensor
	want   []float32
}

func dtypeCases() []dtypeCase {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	return []dtypeCase{
		{Tensor{"f64", "F64", []int{2, 2}, le(math.Float64bits(1+0x1p-30), math.Float64bits(0.1), math.Float64bits(-1e300), math.Float64bits(0x1p-149))},
			[]float32{1, 0.1, -inf, 0x1p-149}},
		{Tensor{"f32", "F32", []int{3}, le(math.Float32bits(1.5), math.Float32bits(-0x1p-149), math.Float32bits(3e38))},
			[]float32{1.5, -0x1p-149, 3e38}},
		{Tensor{"f16", "F16", []int{5}, le[uint16](0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001)},
			[]float32{1, -2, 0.5, 65504, 0x1p-24}},
		{Tensor{"bf16", "BF16", []int{2, 2}, le[uint16](0x3f80, 0xc000, 0x3f00, 0x7f7f)},
			[]float32{1, -2, 0.5, math.Float32frombits(0x7f7f0000)}},
		{Tensor{"e4m3", "F8_E4M3", []int{6}, le[uint8](0x38, 0x7e, 0x01, 0xb8, 0x08, 0x7f)},
			[]float32{1, 448, 0x1p-9, -1, 0x1p-6, nan}},
		{Tensor{"e5m2", "F8_E5M2", []int{5}, le[uint8](0x3c, 0x7b, 0x01, 0xfc, 0x7e)},
			[]float32{1, 57344, 0x1p-16, -inf, nan}},
		{Tensor{"bool", "BOOL", []int{3}, le[uint8](0, 1, 1)}, []float32{0, 1, 1}},
		{Tensor{"u8", "U8", []int{2}, le[uint8](0, 255)}, []float32{0, 255}},
		{Tensor{"i8", "I8", []int{2}, le[uint8](0x80, 0x7f)}, []float32{-128, 127}},
		{Tensor{"u16", "U16", []int{1}, le[uint16](65535)}, []float32{65535}},
		{Tensor{"i16", "I16", []int{2}, le[uint16](0x8000, 0xffff)}, []float32{-32768, -1}},
		{Tensor{"u32", "U32", []int{2}, le[uint32](math.MaxUint32, 1<<24+1)}, []float32{1 << 32, 1 << 24}},
		{Tensor{"i32", "I32", []int{2}, le[uint32](0x80000000, 1<<24+3)}, []float32{-(1 << 31), 1<<24 + 4}},
		{Tensor{"u64", "U64", []int{1}, le[uint64](math.MaxUint64)}, []float32{1 << 64}},
		{Tensor{"i64", "I64", []int{2}, le[uint64](1<<63, 1<<24+1)}, []float32{-(1 << 63), 1 << 24}},
		{Tensor{"scalar", "F32", []int{}, le(math.Float32bits(7))}, []float32{7}},
		{Tensor{"empty", "BF16", []int{0, 1 << 30}, nil}, []float32{}},
	}
}

func sameFloats(got, want []float32) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if math.IsNaN(float64(want[i])) != math.IsNaN(float64(got[i])) ||
			!math.IsNaN(float64(want[i])) && math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			return false
		}
	}
	return true
}

// writeTemp writes b to a file called name in a fresh temporary folder and returns its path.
func writeTemp(t testing.TB, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o666); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkDtypes checks every tensor of dtypeCases read through r.
func checkDtypes(t *testing.T, r interface {
	Info(string) (TensorInfo, bool)
	Raw(string) ([]byte, error)
	Float32(string) ([]float32, error)
}, file []byte) {
	t.Helper()
	for _, c := range dtypeCases() {
		name := c.tensor.Name
		info, ok := r.Info(name)
		if !ok {
			t.Fatalf("%s: missing", name)
		}
		wantShape := make([]int64, len(c.tensor.Shape))
		for i, d := range c.tensor.Shape {
			wantShape[i] = int64(d)
		}
		if info.DType != c.tensor.DType || !slices.Equal(info.Shape, wantShape) || info.Size != int64(len(c.tensor.Data)) ||
			!bytes.Equal(file[info.Offset:info.Offset+info.Size], c.tensor.Data) {
			t.Errorf("%s: info %+v", name, info)
		}
		raw, err := r.Raw(name)
		if err != nil || !bytes.Equal(raw, c.tensor.Data) {
			t.Errorf("%s: Raw %x, %v; want %x", name, raw, err, c.tensor.Data)
		}
		got, err := r.Float32(name)
		if err != nil || !sameFloats(got, c.want) {
			t.Errorf("%s (%s): Float32 %v, %v; want %v", name, c.tensor.DType, got, err, c.want)
		}
	}
}

func TestReaderEveryDtype(t *testing.T) {
	var ts []Tensor
	for _, c := range dtypeCases() {
		ts = append(ts, c.tensor)
	}
	path := filepath.Join(t.TempDir(), "all.safetensors")
	meta := map[string]string{"format": "pt", "note": "every dtype"}
	if err := WriteFile(path, ts, meta); err != nil {
		t.Fatal(err)
	}
	file, _ := os.ReadFile(path)
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	wantNames := make([]string, len(ts))
	for i, x := range ts {
		wantNames[i] = x.Name
	}
	slices.Sort(wantNames)
	if !slices.Equal(r.Names(), wantNames) || r.Path() != path {
		t.Errorf("names %v, path %s", r.Names(), r.Path())
	}
	if m := r.Metadata(); m["format"] != "pt" || m["note"] != "every dtype" || len(m) != 2 {
		t.Errorf("metadata %v", m)
	}
	checkDtypes(t, r, file)
	if _, ok := r.Info("nope"); ok {
		t.Error("Info of a missing tensor")
	}

	// The same file through the ReadAt fallback (other OSes, or where mapping fails).
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ra, err := newReader(path, &readAtSource{f: f, n: int64(len(file))})
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	checkDtypes(t, ra, file)
}

// TestInfoIsACopy: callers cannot change the reader's view of a tensor.
func TestInfoIsACopy(t *testing.T) {
	r, err := Open(writeTemp(t, "x.safetensors", mustMarshal(t, F32("x", []int{2}, []float32{1, 2}))))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	info, _ := r.Info("x")
	info.Shape[0] = 99
	r.Names()[0] = "y"
	if again, _ := r.Info("x"); again.Shape[0] != 2 || r.Names()[0] != "x" {
		t.Errorf("info changed: %+v %v", again, r.Names())
	}
}

func mustMarshal(t testing.TB, ts ...Tensor) []byte {
	t.Helper()
	b, err := Marshal(ts, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFloat32Rows(t *testing.T) {
	// A fused qkv weight [3*2, 2] in bf16: q rows 0-1, k rows 2-3, v rows 4-5, values 1..12.
	var data []byte
	for i := range 12 {
		data = binary.LittleEndian.AppendUint16(data, uint16(math.Float32bits(float32(i+1))>>16))
	}
	b := mustMarshal(t, Tensor{"qkv", "BF16", []int{6, 2}, data}, F32("s", []int{}, []float32{1}),
		F32("e", []int{0, 3}, nil))
	r, err := Open(writeTemp(t, "qkv.safetensors", b))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, want := range [][]float32{{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11, 12}} {
		got, err := r.Float32Rows("qkv", int64(2*i), int64(2*i+2))
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("rows %d: %v, %v", i, got, err)
		}
	}
	if got, err := r.Float32Rows("qkv", 3, 3); err != nil || len(got) != 0 {
		t.Errorf("no rows: %v, %v", got, err)
	}
	if got, err := r.Float32Rows("e", 0, 0); err != nil || len(got) != 0 {
		t.Errorf("empty tensor: %v, %v", got, err)
	}
	for _, c := range []struct {
		name       string
		start, end int64
	}{{"qkv", -1, 1}, {"qkv", 2, 1}, {"qkv", 0, 7}, {"s", 0, 1}, {"e", 0, 1}, {"missing", 0, 1}} {
		if v, err := r.Float32Rows(c.name, c.start, c.end); err == nil {
			t.Errorf("%s [%d,%d): %v, no error", c.name, c.start, c.end, v)
		}
	}
}

func TestReaderErrorsAfterCloseAndForMissing(t *testing.T) {
	path := writeTemp(t, "x.safetensors", mustMarshal(t, F32("x", []int{1}, []float32{1})))
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Float32("y"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"y"`) {
		t.Errorf("missing tensor: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for _, f := range []func() error{
		func() error { _, err := r.Raw("x"); return err },
		func() error { _, err := r.Float32("x"); return err },
		func() error { _, err := r.Float32Rows("x", 0, 1); return err },
		func() error { _, err := r.Fingerprint(); return err },
	} {
		if err := f(); !errors.Is(err, ErrClosed) {
			t.Errorf("after Close: %v", err)
		}
	}
	r.Release("x") // no effect, no crash
	if _, err := Open(filepath.Join(t.TempDir(), "none.safetensors")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Open(t.TempDir()); !errors.Is(err, ErrFormat) {
		t.Errorf("a folder: %v", err)
	}
}

// TestOpenExactMessage: the form every content error takes.
func TestOpenExactMessage(t *testing.T) {
	path := writeTemp(t, "model.safetensors",
		file(`{"x.weight":{"dtype":"F32","shape":[25],"data_offsets":[0,100]}}`, make([]byte, 64)))
	_, err := Open(path)
	want := `safetensors: ` + path + `: tensor "x.weight": data offsets [0,100] past the end of the data (64 bytes; file truncated?)`
	if err == nil || err.Error() != want || !errors.Is(err, ErrFormat) {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
}

func TestOpenRejects(t *testing.T) {
	four := make([]byte, 4)
	valid := mustMarshal(t, F32("a", []int{4}, []float32{1, 2, 3, 4}), F32("b", []int{4}, []float32{5, 6, 7, 8}))
	for _, c := range []struct {
		name string
		b    []byte
		want string // in the message
	}{
		{"empty file", nil, "0 bytes, too short"},
		{"short", []byte{1, 2, 3}, "3 bytes, too short"},
		{"header length 0", le[uint64](0), "header length is 0"},
		{"header length past EOF", append(le[uint64](1000), `{}`...), "header length 1000 runs past the end of the file (10 bytes"},
		{"header length over MaxHeader", append(le[uint64](1<<40), `{}`...), "over the 100000000-byte limit"},
		{"header length 2^64-1", append(le[uint64](math.MaxUint64), `{}`...), "over the"},
		{"truncated file", valid[:len(valid)-5], `tensor "b": data offsets [16,32] past the end of the data (27 bytes`},
		{"truncated header", valid[:40], "runs past the end of the file"},
		{"not JSON", file(`hello`, nil), "does not start with '{'"},
		{"not an object", file(`[]`, nil), "does not start with '{'"},
		{"bad JSON", file(`{"a":`, nil), "header JSON at byte"},
		{"JSON after the object", file(`{} {}`, nil), "data after the object"},
		{"not UTF-8", file("{\"\xff\":1}", nil), "UTF-8"},
		{"duplicate name", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, four),
			`tensor "a" is listed twice`},
		{"entry not an object", file(`{"a":5}`, four), `tensor "a": bad entry`},
		{"unknown field", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, four), `tensor "a": bad entry: json: unknown field "x"`},
		{"unknown dtype", file(`{"a":{"dtype":"F31","shape":[1],"data_offsets":[0,4]}}`, four), `tensor "a": unknown dtype "F31"`},
		{"no dtype", file(`{"a":{"shape":[1],"data_offsets":[0,4]}}`, four), `tensor "a": unknown dtype ""`},
		{"no shape", file(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, four), `tensor "a": no shape`},
		{"null shape", file(`{"a":{"dtype":"F32","shape":null,"data_offsets":[0,4]}}`, four), `tensor "a": no shape`},
		{"fractional dim", file(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, four), `tensor "a": bad entry`},
		{"dim past int64", file(`{"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]}}`, four), `tensor "a": bad entry`},
		{"negative dim", file(`{"a":{"dtype":"F32","shape":[2,-1],"data_offsets":[0,4]}}`, four), `tensor "a": shape [2,-1] has a negative dimension`},
		{"absurd shape", file(`{"a":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,4]}}`, four),
			`tensor "a": shape [1099511627776,1099511627776] is too large`},
		{"shape overflowing after a 1", file(`{"a":{"dtype":"F64","shape":[1,2305843009213693952],"data_offsets":[0,4]}}`, four), `is too large`},
		{"no offsets", file(`{"a":{"dtype":"F32","shape":[1]}}`, four), `tensor "a": data_offsets has 0 numbers`},
		{"three offsets", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, four), `data_offsets has 3 numbers`},
		{"reversed offsets", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}`, four), `tensor "a": data offsets [4,0] are not an increasing pair`},
		{"negative offset", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, four), `data offsets [-4,0]`},
		{"offset past int64", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551615]}}`, four), `tensor "a": bad entry`},
		{"size mismatch", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, append(four, four...)),
			`tensor "a": F32[2] needs 8 bytes but data offsets [0,4] hold 4`},
		{"dtype mismatch", file(`{"a":{"dtype":"F16","shape":[1],"data_offsets":[0,4]}}`, four), `tensor "a": F16[1] needs 2 bytes`},
		{"overlap", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`,
			make([]byte, 12)), `tensors "a" [0,8] and "b" [4,12] overlap`},
		{"same range", file(`{"b":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`,
			four), `tensors "a" [0,4] and "b" [0,4] overlap`},
		{"metadata not strings", file(`{"__metadata__":{"k":1}}`, nil), `__metadata__ is not an object of strings`},
		{"metadata not an object", file(`{"__metadata__":"x"}`, nil), `__metadata__ is not an object of strings`},
	} {
		path := writeTemp(t, "bad.safetensors", c.b)
		r, err := Open(path)
		if err == nil {
			r.Close()
			t.Errorf("%s: opened", c.name)
			continue
		}
		msg := err.Error()
		if !errors.Is(err, ErrFormat) || !strings.Contains(msg, c.want) || !strings.Contains(msg, path) ||
			!strings.HasPrefix(msg, "safetensors: ") || strings.ContainsAny(msg, "\n\r") {
			t.Errorf("%s: %q\nwant ErrFormat, one line naming the file and containing %q", c.name, msg, c.want)
		}
	}
}

// TestOpenAccepts: what the format allows beyond what the writer produces.
func TestOpenAccepts(t *testing.T) {
	for name, b := range map[string][]byte{
		"gap and trailing bytes": file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}`, []byte{0, 0, 9, 0}),
		"empty tensors sharing offsets, inside another": file(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},`+
			`"e":{"dtype":"F32","shape":[0],"data_offsets":[1,1]},"f":{"dtype":"F32","shape":[0,5],"data_offsets":[1,1]}}`, []byte{9, 9}),
		"empty tensor with a huge dim":      file(`{"e":{"dtype":"F64","shape":[0,4611686018427387904,4611686018427387904],"data_offsets":[0,0]}}`, nil),
		"null metadata, key order, padding": file(`{"a":{"data_offsets":[0,1],"shape":[],"dtype":"U8"},"__metadata__":null}  	 `, []byte{9}),
		"no tensors":                        file(`{}`, nil),
	} {
		r, err := Open(writeTemp(t, "ok.safetensors", b))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for _, n := range r.Names() {
			info, _ := r.Info(n)
			v, err := r.Float32(n)
			if err != nil || int64(len(v)) != info.Elements() || info.Size > 0 && v[0] != 9 {
				t.Errorf("%s: %s: %v, %v", name, n, v, err)
			}
		}
		r.Close()
	}
}

// TestTruncatedAfterOpen: a file cut short while mapped gives an error, not a crash (SIGBUS).
func TestTruncatedAfterOpen(t *testing.T) {
	v := make([]float32, 1<<16) // 256 KiB: pages past the cut are beyond the new end of the file
	b := mustMarshal(t, F32("v", []int{len(v)}, v))
	path := writeTemp(t, "cut.safetensors", b)
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := os.Truncate(path, 100); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Float32("v"); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("read a truncated file: %d values, %v", len(got), err)
	}
	// The ReadAt fallback says so too.
	f, _ := os.Open(path)
	ra := &Reader{path: path, src: &readAtSource{f: f, n: int64(len(b))}, hdr: r.hdr}
	defer ra.Close()
	if _, err := ra.Float32("v"); err == nil {
		t.Fatal("ReadAt of a truncated file: no error")
	}
}

func TestFingerprint(t *testing.T) {
	// 3 MiB of data: the middle MiB is outside both samples.
	v := make([]float32, 3<<18)
	for i := range v {
		v[i] = float32(i)
	}
	b := mustMarshal(t, F32("v", []int{len(v)}, v))
	dataStart := len(b) - 4*len(v)
	fp := func(b []byte) string {
		t.Helper()
		r, err := Open(writeTemp(t, "f.safetensors", b))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		s, err := r.Fingerprint()
		if err != nil || len(s) != 64 {
			t.Fatalf("fingerprint %q, %v", s, err)
		}
		if again, _ := r.Fingerprint(); again != s {
			t.Fatal("not stable")
		}
		return s
	}
	edit := func(off int) []byte {
		c := slices.Clone(b)
		c[off] ^= 1
		return c
	}
	base := fp(b)
	if fp(slices.Clone(b)) != base {
		t.Error("a copy at another path differs")
	}
	renamed := bytes.Replace(b, []byte(`"v"`), []byte(`"w"`), 1)
	for name, other := range map[string][]byte{
		"header":            renamed,
		"first data byte":   edit(dataStart),
		"last data byte":    edit(len(b) - 1),
		"end of first MiB":  edit(dataStart + 1<<20 - 1),
		"start of last MiB": edit(len(b) - 1<<20),
	} {
		if fp(other) == base {
			t.Errorf("%s changed, fingerprint did not", name)
		}
	}
	// Documented limit: the middle of the data is not read.
	if fp(edit(dataStart+3<<19)) != base {
		t.Error("an edit in the middle changed the fingerprint; update the documentation")
	}
	// Small files hash all their data.
	small := mustMarshal(t, F32("s", []int{3}, []float32{1, 2, 3}))
	if fp(small) == fp(edit2(small, len(small)-6)) {
		t.Error("small file edit not seen")
	}
}

func edit2(b []byte, off int) []byte {
	c := slices.Clone(b)
	c[off] ^= 1
	return c
}

// FuzzOpen feeds arbitrary bytes to the header parser and then reads every tensor it accepts: nothing
// may panic, and what is accepted must be readable with consistent sizes.
func FuzzOpen(f *testing.F) {
	var all []Tensor
	for _, c := range dtypeCases() {
		all = append(all, c.tensor)
	}
	seeds := [][]byte{
		mustMarshal(f, all...),
		mustMarshal(f, F32("a", []int{2, 2}, []float32{1, 2, 3, 4})),
		file(`{"__metadata__":{"k":"v"},"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}`, []byte{0x80, 0x3f, 0, 0xc0}),
		file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[2,3]},"e":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}`, []byte{0, 0, 9}),
		file(`{"a":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,4]}}`, make([]byte, 4)),
		file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, make([]byte, 12)),
		file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,40]}}`, make([]byte, 4)),
		file(`{"a":`, nil),
		append(le[uint64](1000), `{}`...),
		{1, 2, 3},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := newReader("fuzz.safetensors", memSource(b))
		if err != nil {
			if !errors.Is(err, ErrFormat) || strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error %q", err)
			}
			return
		}
		if _, err := r.Fingerprint(); err != nil {
			t.Fatal(err)
		}
		for _, name := range r.Names() {
			info, ok := r.Info(name)
			if !ok {
				t.Fatalf("%q listed but not found", name)
			}
			raw, err := r.Raw(name)
			if err != nil || int64(len(raw)) != info.Size || info.Offset+info.Size > int64(len(b)) {
				t.Fatalf("%q: raw %d bytes, %v, info %+v", name, len(raw), err, info)
			}
			v, err := r.Float32(name)
			if err != nil || int64(len(v)) != info.Elements() {
				t.Fatalf("%q: %d values, %v, info %+v", name, len(v), err, info)
			}
			if len(info.Shape) > 0 {
				rows, err := r.Float32Rows(name, info.Shape[0]/2, info.Shape[0])
				if err != nil || len(rows) != len(v)-len(v)/int(max(1, info.Shape[0]))*int(info.Shape[0]/2) {
					t.Fatalf("%q: rows %d values, %v", name, len(rows), err)
				}
			}
		}
	})
}

// TestConcurrentReads: readers are shared by goroutines (run with -race); releasing pages another
// goroutine is reading only costs it a page fault.
func TestConcurrentReads(t *testing.T) {
	var ts []Tensor
	for i := range 4 {
		v := make([]float32, 5000)
		for j := range v {
			v[j] = float32(i*10000 + j)
		}
		ts = append(ts, F32(string(rune('a'+i)), []int{100, 50}, v))
	}
	r, err := Open(writeTemp(t, "c.safetensors", mustMarshal(t, ts...)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for k := range 50 {
				i := (g + k) % 4
				name := string(rune('a' + i))
				rows, err := r.Float32Rows(name, 10, 20)
				if err == nil && (rows[0] != float32(i*10000+500) || rows[len(rows)-1] != float32(i*10000+999)) {
					err = errors.New(name + ": wrong rows")
				}
				if err == nil {
					_, err = r.Fingerprint()
				}
				r.Release(name)
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
