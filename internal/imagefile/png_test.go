package imagefile

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// testImage is a small image with distinct pixels, some translucent.
func testImage(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x * 37), uint8(y * 53), uint8(x*y + 11), uint8(255 - x - y)})
		}
	}
	return img
}

func sameNRGBA(t *testing.T, got image.Image, want *image.NRGBA) {
	t.Helper()
	if got.Bounds() != want.Bounds() {
		t.Fatalf("bounds %v, want %v", got.Bounds(), want.Bounds())
	}
	for y := want.Rect.Min.Y; y < want.Rect.Max.Y; y++ {
		for x := want.Rect.Min.X; x < want.Rect.Max.X; x++ {
			g := color.NRGBAModel.Convert(got.At(x, y))
			if g != want.NRGBAAt(x, y) {
				t.Fatalf("pixel (%d,%d) = %v, want %v", x, y, g, want.NRGBAAt(x, y))
			}
		}
	}
}

type rawChunk struct {
	typ  string
	data []byte
}

// walkPNG is an independent chunk walker: it checks the signature, every length and CRC, and
// that IEND ends the file.
func walkPNG(t *testing.T, b []byte) []rawChunk {
	t.Helper()
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatal("no PNG signature")
	}
	var chunks []rawChunk
	for off := 8; ; {
		if off+12 > len(b) {
			t.Fatalf("truncated chunk at %d", off)
		}
		n := int(binary.BigEndian.Uint32(b[off:]))
		end := off + 8 + n
		if end+4 > len(b) {
			t.Fatalf("chunk at %d overruns the file", off)
		}
		if want := crc32.ChecksumIEEE(b[off+4 : end]); binary.BigEndian.Uint32(b[end:]) != want {
			t.Fatalf("chunk %q at %d: bad CRC", b[off+4:off+8], off)
		}
		c := rawChunk{string(b[off+4 : off+8]), b[off+8 : end]}
		chunks = append(chunks, c)
		off = end + 4
		if c.typ == "IEND" {
			if off != len(b) {
				t.Fatalf("%d bytes after IEND", len(b)-off)
			}
			return chunks
		}
	}
}

func chunkIndex(chunks []rawChunk, typ, keyword string) int {
	for i, c := range chunks {
		if c.typ == typ && (keyword == "" || bytes.HasPrefix(c.data, []byte(keyword+"\x00"))) {
			return i
		}
	}
	return -1
}

func TestWritePNG(t *testing.T) {
	img := testImage(7, 5)
	for _, tc := range []struct {
		name, prompt, typ string
	}{
		{"ascii", "a photo of a cat, 4k", "tEXt"},
		{"latin1", "café crème, naïve", "tEXt"},
		{"cjk", "日本の猫, café", "iTXt"},
		{"emoji", "cat 😀", "iTXt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "out.png")
			p := Params{Prompt: tc.prompt, Steps: 4, CFGScale: 3.5, Seed: 9, Width: 7, Height: 5, Version: "rflow 0.1.0"}
			js := []byte(`{"prompt":"` + tc.prompt + `","steps":4}`)
			if err := Write(path, img, p, WriteOptions{RflowJSON: js}); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			dec, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			sameNRGBA(t, dec, img)
			checkPNGChunks(t, walkPNG(t, b), tc.typ, p.Text(), string(js))
			texts, err := ReadPNGText(path)
			if err != nil {
				t.Fatal(err)
			}
			if texts["parameters"] != p.Text() || texts["rflow"] != string(js) || len(texts) != 2 {
				t.Errorf("ReadPNGText = %q", texts)
			}
		})
	}
}

// checkPNGChunks checks the text chunks' type, position and exact bytes.
func checkPNGChunks(t *testing.T, chunks []rawChunk, typ, params, js string) {
	t.Helper()
	idat := chunkIndex(chunks, "IDAT", "")
	for kw, text := range map[string]string{"parameters": params, "rflow": js} {
		i := chunkIndex(chunks, typ, kw)
		if i < 0 || i > idat {
			t.Fatalf("%s chunk %q at %d, IDAT at %d", typ, kw, i, idat)
		}
		var want []byte
		if typ == "tEXt" {
			want = append([]byte(kw+"\x00"), encodeLatin1(t, text)...)
		} else {
			want = append([]byte(kw+"\x00\x00\x00\x00\x00"), text...)
		}
		if !bytes.Equal(chunks[i].data, want) {
			t.Errorf("%s %q data = %q, want %q", typ, kw, chunks[i].data, want)
		}
	}
}

func encodeLatin1(t *testing.T, s string) []byte {
	var b []byte
	for _, r := range s {
		if r > 0xff {
			t.Fatalf("%q is not Latin-1", s)
		}
		b = append(b, byte(r))
	}
	return b
}

// pngWith returns a minimal valid PNG with the given chunks inserted before IDAT.
func pngWith(t *testing.T, extra ...rawChunk) []byte {
	t.Helper()
	var buf, chunks bytes.Buffer
	if err := png.Encode(&buf, testImage(2, 2)); err != nil {
		t.Fatal(err)
	}
	for _, c := range extra {
		writeChunk(&chunks, c.typ, c.data)
	}
	out, err := insertBeforeIDAT(buf.Bytes(), chunks.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func zlibBytes(s string) []byte {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

func TestReadPNGTextChunkKinds(t *testing.T) {
	b := pngWith(t,
		rawChunk{"tEXt", []byte("a\x00caf\xe9")},
		rawChunk{"zTXt", append([]byte("b\x00\x00"), zlibBytes("na\xefve")...)},
		rawChunk{"iTXt", append([]byte("c\x00\x01\x00en\x00tk\x00"), zlibBytes("日本")...)},
		rawChunk{"iTXt", []byte("d\x00\x00\x00\x00\x00plain")},
		rawChunk{"tEXt", []byte("a\x00last wins")},
	)
	path := filepath.Join(t.TempDir(), "k.png")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadPNGText(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "last wins", "b": "naïve", "c": "日本", "d": "plain"}
	if len(got) != len(want) {
		t.Errorf("got %q, want %q", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestReadPNGTextDamaged(t *testing.T) {
	good := pngWith(t, rawChunk{"tEXt", []byte("parameters\x00x")})
	i := bytes.Index(good, []byte("parameters"))
	badCRC := bytes.Clone(good)
	badCRC[i+3] ^= 1
	cases := map[string][]byte{
		"bad CRC":      badCRC,
		"truncated":    good[:len(good)-6],
		"no IEND":      good[:len(good)-12],
		"not PNG":      []byte("GIF89a"),
		"empty":        nil,
		"bad zTXt":     pngWith(t, rawChunk{"zTXt", []byte("k\x00\x00garbage")}),
		"no separator": pngWith(t, rawChunk{"tEXt", []byte("keyword")}),
		"short iTXt":   pngWith(t, rawChunk{"iTXt", []byte("k\x00\x00")}),
	}
	dir := t.TempDir()
	for name, b := range cases {
		path := filepath.Join(dir, name+".png")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadPNGText(path); err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.HasPrefix(err.Error(), "imagefile: read ") {
			t.Errorf("%s: error %q not wrapped", name, err)
		}
	}
	if _, err := ReadPNGText(filepath.Join(dir, "missing.png")); err == nil {
		t.Error("missing file: no error")
	}
}

// TestPNGWithPIL cross-checks with PIL, the library A1111 reads with, when it is installed.
func TestPNGWithPIL(t *testing.T) {
	py := pythonWith(t, "PIL")
	dir := t.TempDir()
	p := Params{Prompt: "日本の猫, café", NegativePrompt: "x: y", Steps: 4, CFGScale: 3.5, Seed: 9, Width: 7, Height: 5}
	path := filepath.Join(dir, "pil.png")
	if err := Write(path, testImage(7, 5), p, WriteOptions{RflowJSON: []byte(`{"a":1}`)}); err != nil {
		t.Fatal(err)
	}
	script := "import sys; from PIL import Image; im = Image.open(sys.argv[1]); im.load(); " +
		"sys.stdout.buffer.write((im.info['parameters'] + '\\0' + im.info['rflow']).encode())"
	out, err := exec.Command(py, "-c", script, path).Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := p.Text() + "\x00" + `{"a":1}`; string(out) != want {
		t.Errorf("PIL reads %q, want %q", out, want)
	}
}

// pythonWith returns a Python 3 interpreter that can import module, or skips the test.
func pythonWith(t *testing.T, module string) string {
	t.Helper()
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(py, "-c", "import "+module).Run() == nil {
			return py
		}
	}
	t.Skipf("no python3 with %s", module)
	return ""
}
