package imagefile

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"io"
	"os"
	"strings"
)

const pngSignature = "\x89PNG\r\n\x1a\n"

// Limits on what ReadPNGText accepts from a file, so that a hostile file cannot make it
// allocate without bound.
const (
	maxTextChunk = 64 << 20 // bytes of one text chunk as stored
	maxInflated  = 64 << 20 // bytes of one compressed text once inflated
)

// textEntry is one PNG text chunk to write.
type textEntry struct{ keyword, text string }

// encodePNG encodes img with image/png and inserts the text chunks before the first IDAT.
func encodePNG(w io.Writer, img image.Image, texts []textEntry) error {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return fmt.Errorf("imagefile: encode PNG: %w", err)
	}
	var chunks bytes.Buffer
	for _, t := range texts {
		typ, data := textChunk(t.keyword, t.text)
		writeChunk(&chunks, typ, data)
	}
	out, err := insertBeforeIDAT(buf.Bytes(), chunks.Bytes())
	if err != nil {
		return err
	}
	if _, err := w.Write(out); err != nil {
		return fmt.Errorf("imagefile: write PNG: %w", err)
	}
	return nil
}

// textChunk builds a text chunk as PIL's PngInfo.add_text does: tEXt with Latin-1 text when
// every character is Latin-1, else iTXt, uncompressed, with empty language tag and translated
// keyword, and the text in UTF-8. keyword is one of this package's ASCII keywords.
func textChunk(keyword, text string) (typ string, data []byte) {
	if l1, ok := toLatin1(text); ok {
		data = append([]byte(keyword), 0)
		return "tEXt", append(data, l1...)
	}
	// keyword NUL, compression flag 0, method 0, language "" NUL, translated keyword "" NUL.
	data = append([]byte(keyword), 0, 0, 0, 0, 0)
	return "iTXt", append(data, valid(text)...)
}

// toLatin1 encodes s in Latin-1 if every character of it is in U+0000–U+00FF.
func toLatin1(s string) ([]byte, bool) {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff { // also invalid UTF-8, which decodes as U+FFFD
			return nil, false
		}
		b = append(b, byte(r))
	}
	return b, true
}

// writeChunk appends one PNG chunk: length, type, data, CRC-32 of type and data.
func writeChunk(w *bytes.Buffer, typ string, data []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(data)))
	w.Write(n[:])
	crc := crc32.NewIEEE()
	crc.Write([]byte(typ))
	crc.Write(data)
	w.WriteString(typ)
	w.Write(data)
	binary.BigEndian.PutUint32(n[:], crc.Sum32())
	w.Write(n[:])
}

// insertBeforeIDAT returns the PNG stream png with extra inserted before its first IDAT chunk
// (or before IEND if there is none).
func insertBeforeIDAT(png, extra []byte) ([]byte, error) {
	if !bytes.HasPrefix(png, []byte(pngSignature)) {
		return nil, errors.New("imagefile: encoder output is not a PNG stream")
	}
	for off := len(pngSignature); off+8 <= len(png); {
		n := int(binary.BigEndian.Uint32(png[off:]))
		typ := string(png[off+4 : off+8])
		if typ == "IDAT" || typ == "IEND" {
			out := make([]byte, 0, len(png)+len(extra))
			out = append(out, png[:off]...)
			out = append(out, extra...)
			return append(out, png[off:]...), nil
		}
		off += 12 + n
	}
	return nil, errors.New("imagefile: encoder output has no IDAT or IEND chunk")
}

// ReadPNGText returns the text chunks (tEXt, zTXt and iTXt) of the PNG file at path, keyword →
// text in UTF-8; a keyword that occurs twice keeps its last text, as PIL's Image.info does. It
// checks every chunk's CRC and fails on a damaged or truncated file.
func ReadPNGText(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("imagefile: %w", err)
	}
	defer f.Close()
	texts, err := readPNGText(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("imagefile: read %s: %w", path, err)
	}
	return texts, nil
}

func readPNGText(r io.Reader) (map[string]string, error) {
	sig := make([]byte, len(pngSignature))
	if _, err := io.ReadFull(r, sig); err != nil || string(sig) != pngSignature {
		return nil, errors.New("not a PNG file")
	}
	texts := map[string]string{}
	for {
		typ, data, err := readChunk(r)
		if err != nil {
			return nil, err
		}
		switch typ {
		case "IEND":
			return texts, nil
		case "tEXt", "zTXt", "iTXt":
			k, v, err := decodeText(typ, data)
			if err != nil {
				return nil, fmt.Errorf("%s chunk: %w", typ, err)
			}
			texts[k] = v
		}
	}
}

// readChunk reads one chunk and checks its CRC. Data is returned for text chunks only; the
// data of other chunks is hashed and dropped.
func readChunk(r io.Reader) (typ string, data []byte, err error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return "", nil, fmt.Errorf("truncated before IEND: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	typ = string(hdr[4:])
	if n > 1<<31-1 {
		return "", nil, fmt.Errorf("chunk %q length %d out of range", typ, n)
	}
	crc := crc32.NewIEEE()
	crc.Write(hdr[4:])
	text := typ == "tEXt" || typ == "zTXt" || typ == "iTXt"
	if text && n > maxTextChunk {
		return "", nil, fmt.Errorf("%s chunk of %d bytes is over the %d-byte limit", typ, n, maxTextChunk)
	}
	var body bytes.Buffer
	dst := io.Writer(crc)
	if text {
		dst = io.MultiWriter(crc, &body)
	}
	if _, err := io.CopyN(dst, r, int64(n)); err != nil {
		return "", nil, fmt.Errorf("chunk %q truncated: %w", typ, err)
	}
	var sum [4]byte
	if _, err := io.ReadFull(r, sum[:]); err != nil {
		return "", nil, fmt.Errorf("chunk %q truncated: %w", typ, err)
	}
	if binary.BigEndian.Uint32(sum[:]) != crc.Sum32() {
		return "", nil, fmt.Errorf("chunk %q has a bad CRC", typ)
	}
	return typ, body.Bytes(), nil
}

// decodeText decodes a tEXt, zTXt or iTXt chunk's data into keyword and UTF-8 text.
func decodeText(typ string, data []byte) (keyword, text string, err error) {
	k, rest, ok := bytes.Cut(data, []byte{0})
	if !ok {
		return "", "", errors.New("no keyword terminator")
	}
	keyword = latin1(k)
	switch typ {
	case "tEXt":
		return keyword, latin1(rest), nil
	case "zTXt":
		if len(rest) < 1 || rest[0] != 0 {
			return "", "", errors.New("unknown compression method")
		}
		b, err := inflate(rest[1:])
		return keyword, latin1(b), err
	}
	// iTXt: compression flag, method, language tag NUL, translated keyword NUL, text.
	if len(rest) < 2 {
		return "", "", errors.New("truncated header")
	}
	flag, method := rest[0], rest[1]
	_, rest, ok1 := bytes.Cut(rest[2:], []byte{0})
	_, rest, ok2 := bytes.Cut(rest, []byte{0})
	if !ok1 || !ok2 {
		return "", "", errors.New("truncated header")
	}
	if flag == 1 {
		if method != 0 {
			return "", "", errors.New("unknown compression method")
		}
		if rest, err = inflate(rest); err != nil {
			return "", "", err
		}
	}
	return keyword, valid(string(rest)), nil
}

// inflate decompresses zlib data, refusing more than maxInflated bytes of output.
func inflate(b []byte) ([]byte, error) {
	zr, err := zlib.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("inflate: %w", err)
	}
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, maxInflated+1))
	if err != nil {
		return nil, fmt.Errorf("inflate: %w", err)
	}
	if len(out) > maxInflated {
		return nil, fmt.Errorf("inflated text is over the %d-byte limit", maxInflated)
	}
	return out, nil
}

// latin1 decodes Latin-1 bytes into a UTF-8 string.
func latin1(b []byte) string {
	var s strings.Builder
	s.Grow(len(b))
	for _, c := range b {
		s.WriteRune(rune(c))
	}
	return s.String()
}
