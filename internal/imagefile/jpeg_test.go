package imagefile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"
)

// smoothImage is an opaque gradient that JPEG reproduces closely.
func smoothImage(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetRGBA(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), 128, 255})
		}
	}
	return img
}

// jpegSegment finds the first segment with the given marker (and payload prefix) before SOS,
// walking the file independently of the package's reader.
func jpegSegment(t *testing.T, b []byte, marker byte, prefix string) []byte {
	t.Helper()
	if len(b) < 4 || b[0] != 0xff || b[1] != 0xd8 {
		t.Fatal("no SOI")
	}
	for off := 2; off+4 <= len(b); {
		if b[off] != 0xff {
			t.Fatalf("no marker at %d", off)
		}
		m, n := b[off+1], int(binary.BigEndian.Uint16(b[off+2:]))
		if m == 0xda {
			break
		}
		data := b[off+4 : off+2+n]
		if m == marker && bytes.HasPrefix(data, []byte(prefix)) {
			return data
		}
		off += 2 + n
	}
	return nil
}

// tiffEntries reads one IFD with an independent mini TIFF reader: tag → (type, count, value
// bytes), checking the next-IFD offset is 0 and tags ascend.
func tiffEntries(t *testing.T, tiff []byte, order binary.ByteOrder, ifd uint32) map[uint16][]byte {
	t.Helper()
	n := int(order.Uint16(tiff[ifd:]))
	out := map[uint16][]byte{}
	last := -1
	for i := range n {
		e := tiff[int(ifd)+2+12*i:]
		tag, typ, count := order.Uint16(e), order.Uint16(e[2:]), order.Uint32(e[4:])
		if int(tag) <= last {
			t.Errorf("tag 0x%04x out of order", tag)
		}
		last = int(tag)
		size := map[uint16]uint32{4: 4, 7: 1}[typ] * count
		if size == 0 {
			t.Fatalf("tag 0x%04x: unexpected type %d", tag, typ)
		}
		val := e[8:12]
		if size > 4 {
			off := order.Uint32(e[8:])
			if off%2 != 0 {
				t.Errorf("tag 0x%04x value at odd offset %d", tag, off)
			}
			val = tiff[off : off+size]
		}
		out[tag] = val[:size]
	}
	if next := order.Uint32(tiff[int(ifd)+2+12*n:]); next != 0 {
		t.Errorf("IFD at %d: next IFD %d, want 0", ifd, next)
	}
	return out
}

func TestWriteJPEG(t *testing.T) {
	img := smoothImage(32, 24)
	p := Params{Prompt: "日本の猫, café 😀", NegativePrompt: "ugly", Steps: 20, Sampler: "Euler",
		CFGScale: 1, DistilledCFGScale: 3.5, Seed: 5, Width: 32, Height: 24, Version: "rflow 0.1.0"}
	js := []byte(`{"seed":5}`)
	path := filepath.Join(t.TempDir(), "out.JPG")
	if err := Write(path, img, p, WriteOptions{RflowJSON: js}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if dec.Bounds() != img.Bounds() {
		t.Fatalf("bounds %v", dec.Bounds())
	}
	r, g, _, _ := dec.At(31, 23).RGBA()
	if r>>8 < 220 || g>>8 < 220 {
		t.Errorf("corner pixel %v far from the original", dec.At(31, 23))
	}
	checkEXIF(t, jpegSegment(t, b, 0xe1, "Exif\x00\x00"), p.Text())
	if com := jpegSegment(t, b, 0xfe, ""); string(com) != string(js) {
		t.Errorf("COM = %q, want %q", com, js)
	}
	got, err := ReadJPEGUserComment(path)
	if err != nil || got != p.Text() {
		t.Errorf("ReadJPEGUserComment = %q, %v; want %q", got, err, p.Text())
	}
	coms, err := ReadJPEGComments(path)
	if err != nil || len(coms) != 1 || coms[0] != string(js) {
		t.Errorf("ReadJPEGComments = %q, %v", coms, err)
	}
}

// checkEXIF checks the APP1 payload: big-endian TIFF, IFD0 → Exif IFD → UserComment.
func checkEXIF(t *testing.T, app1 []byte, text string) {
	t.Helper()
	if app1 == nil {
		t.Fatal("no EXIF APP1 segment")
	}
	tiff := app1[6:]
	if string(tiff[:4]) != "MM\x00\x2a" {
		t.Fatalf("TIFF header %q", tiff[:4])
	}
	be := binary.BigEndian
	ifd0 := tiffEntries(t, tiff, be, be.Uint32(tiff[4:]))
	ptr, ok := ifd0[0x8769]
	if !ok || len(ifd0) != 1 {
		t.Fatalf("IFD0 = %v, want only the Exif pointer", ifd0)
	}
	exif := tiffEntries(t, tiff, be, be.Uint32(ptr))
	if string(exif[0x9000]) != "0232" {
		t.Errorf("ExifVersion = %q", exif[0x9000])
	}
	uc := exif[0x9286]
	if !bytes.HasPrefix(uc, []byte("UNICODE\x00")) || len(uc)%2 != 0 {
		t.Fatalf("UserComment starts %q", uc[:min(len(uc), 8)])
	}
	units := make([]uint16, (len(uc)-8)/2)
	for i := range units {
		units[i] = be.Uint16(uc[8+2*i:])
	}
	if got := string(utf16.Decode(units)); got != text {
		t.Errorf("UserComment = %q, want %q", got, text)
	}
}

// jpegWithAPP1 returns a small JPEG with the given APP1 payload inserted after SOI.
func jpegWithAPP1(t *testing.T, app1 []byte) []byte {
	t.Helper()
	var buf, out bytes.Buffer
	if err := jpeg.Encode(&buf, smoothImage(8, 8), nil); err != nil {
		t.Fatal(err)
	}
	out.Write(buf.Bytes()[:2])
	if app1 != nil {
		writeSegment(&out, 0xe1, app1)
	}
	out.Write(buf.Bytes()[2:])
	return out.Bytes()
}

// littleEndianEXIF builds "Exif\0\0" + an II TIFF with a UserComment of the given raw value.
func littleEndianEXIF(raw []byte) []byte {
	le := binary.LittleEndian
	b := []byte("Exif\x00\x00II\x2a\x00")
	b = le.AppendUint32(b, 8)
	entry := func(b []byte, tag, typ uint16, count, val uint32) []byte {
		b = le.AppendUint16(b, tag)
		b = le.AppendUint16(b, typ)
		b = le.AppendUint32(b, count)
		return le.AppendUint32(b, val)
	}
	b = le.AppendUint16(b, 1)
	b = entry(b, 0x8769, 4, 1, 26)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint16(b, 1)
	b = entry(b, 0x9286, 7, uint32(len(raw)), 44)
	b = le.AppendUint32(b, 0)
	return append(b, raw...)
}

func TestReadJPEGUserCommentEncodings(t *testing.T) {
	utf16le := func(s string) []byte {
		var b []byte
		for _, u := range utf16.Encode([]rune(s)) {
			b = binary.LittleEndian.AppendUint16(b, u)
		}
		return b
	}
	cases := map[string]struct {
		raw  []byte
		want string
	}{
		"unicode LE":   {append([]byte("UNICODE\x00"), utf16le("日本 😀")...), "日本 😀"},
		"unicode BOM":  {append([]byte("UNICODE\x00\xfe\xff"), 0x00, 'h', 0x00, 'i'), "hi"},
		"ascii padded": {[]byte("ASCII\x00\x00\x00hello\x00\x00"), "hello"},
		"undefined":    {append(make([]byte, 8), "é"...), "é"},
		"no prefix":    {[]byte("plain text"), "plain text"},
	}
	dir := t.TempDir()
	for name, c := range cases {
		path := filepath.Join(dir, name+".jpg")
		if err := os.WriteFile(path, jpegWithAPP1(t, littleEndianEXIF(c.raw)), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := ReadJPEGUserComment(path); err != nil || got != c.want {
			t.Errorf("%s: got %q, %v; want %q", name, got, err, c.want)
		}
	}
}

func TestReadJPEGUserCommentMissingAndDamaged(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.jpg")
	if err := os.WriteFile(plain, jpegWithAPP1(t, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadJPEGUserComment(plain); !errors.Is(err, ErrNoMetadata) {
		t.Errorf("no EXIF: err = %v, want ErrNoMetadata", err)
	}
	if coms, err := ReadJPEGComments(plain); err != nil || len(coms) != 0 {
		t.Errorf("ReadJPEGComments = %q, %v", coms, err)
	}
	// Every truncation of a valid EXIF structure must give an error or a result, never a panic.
	full := exifUserComment("some text, long enough to need an offset")
	for n := len("Exif\x00\x00"); n < len(full); n++ {
		path := filepath.Join(dir, "cut.jpg")
		if err := os.WriteFile(path, jpegWithAPP1(t, full[:n]), 0o644); err != nil {
			t.Fatal(err)
		}
		ReadJPEGUserComment(path)
	}
	for name, b := range map[string][]byte{
		"not JPEG":  []byte("\x89PNG"),
		"truncated": jpegWithAPP1(t, full)[:40],
		"bad order": jpegWithAPP1(t, []byte("Exif\x00\x00XX\x00\x2a\x00\x00\x00\x08")),
	} {
		path := filepath.Join(dir, "bad.jpg")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadJPEGUserComment(path); err == nil || errors.Is(err, ErrNoMetadata) {
			t.Errorf("%s: err = %v, want a read error", name, err)
		}
	}
}

func FuzzFindUserComment(f *testing.F) {
	f.Add(exifUserComment("x")[6:])
	f.Add(littleEndianEXIF([]byte("UNICODE\x00a\x00"))[6:])
	f.Fuzz(func(t *testing.T, tiff []byte) {
		if raw, order, err := findUserComment(tiff); err == nil && raw != nil {
			decodeUserComment(raw, order)
		}
	})
}

func TestWriteJPEGTooLong(t *testing.T) {
	dir := t.TempDir()
	p := Params{Prompt: strings.Repeat("x", 40000), Steps: 1, Width: 8, Height: 8}
	err := Write(filepath.Join(dir, "long.jpg"), smoothImage(8, 8), p, WriteOptions{})
	if err == nil || !strings.Contains(err.Error(), "write PNG instead") {
		t.Errorf("err = %v, want a too-long error", err)
	}
	err = Write(filepath.Join(dir, "long2.jpg"), smoothImage(8, 8), Params{Width: 8, Height: 8},
		WriteOptions{RflowJSON: []byte(`"` + strings.Repeat("y", 70000) + `"`)})
	if err == nil {
		t.Error("long COM: no error")
	}
	assertOnlyFiles(t, dir)
}

// TestJPEGWithPiexif reads the comment back with piexif, as A1111 does, when it is installed.
func TestJPEGWithPiexif(t *testing.T) {
	py := pythonWith(t, "piexif")
	p := Params{Prompt: "日本の猫, café 😀", Steps: 4, CFGScale: 3.5, Seed: 9, Width: 16, Height: 16}
	path := filepath.Join(t.TempDir(), "a.jpg")
	if err := Write(path, smoothImage(16, 16), p, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	script := "import sys, piexif, piexif.helper; e = piexif.load(sys.argv[1]); " +
		"c = piexif.helper.UserComment.load(e['Exif'][piexif.ExifIFD.UserComment]); " +
		"sys.stdout.buffer.write(c.encode())"
	out, err := exec.Command(py, "-c", script, path).Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != p.Text() {
		t.Errorf("piexif reads %q, want %q", out, p.Text())
	}
}
