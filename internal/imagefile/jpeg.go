package imagefile

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"os"
	"strings"
	"unicode/utf16"
)

// EXIF tags and TIFF field types used here.
const (
	tagExifIFD     = 0x8769 // IFD0: offset of the Exif IFD
	tagExifVersion = 0x9000 // Exif IFD: version, UNDEFINED[4]
	tagUserComment = 0x9286 // Exif IFD: UserComment, UNDEFINED[n]

	typeLong      = 4
	typeUndefined = 7
	typeIFD       = 13
)

// JPEG markers.
const (
	markerSOI  = 0xd8
	markerEOI  = 0xd9
	markerSOS  = 0xda
	markerAPP1 = 0xe1
	markerCOM  = 0xfe
)

const (
	exifHeader     = "Exif\x00\x00"
	maxSegmentData = 0xffff - 2 // a segment's length field counts itself
)

// User comment character-code prefixes (EXIF 2.3 §4.6.5, table 9).
var (
	prefixUnicode   = []byte("UNICODE\x00")
	prefixASCII     = []byte("ASCII\x00\x00\x00")
	prefixUndefined = []byte("\x00\x00\x00\x00\x00\x00\x00\x00")
)

// ErrNoMetadata reports a file that holds none of the metadata asked for.
var ErrNoMetadata = errors.New("imagefile: no metadata found")

// encodeJPEG encodes img with image/jpeg and inserts, right after SOI, an EXIF APP1 segment
// holding comment as UserComment and, if com is not empty, a COM segment holding com.
func encodeJPEG(w io.Writer, img image.Image, quality int, comment string, com []byte) error {
	exif := exifUserComment(comment)
	if len(exif) > maxSegmentData {
		return fmt.Errorf("imagefile: parameters text too long for a JPEG EXIF segment "+
			"(%d bytes of EXIF, at most %d); write PNG instead", len(exif), maxSegmentData)
	}
	if len(com) > maxSegmentData {
		return fmt.Errorf("imagefile: rflow JSON too long for a JPEG COM segment "+
			"(%d bytes, at most %d); write PNG instead", len(com), maxSegmentData)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		return fmt.Errorf("imagefile: encode JPEG: %w", err)
	}
	b := buf.Bytes()
	if len(b) < 2 || b[0] != 0xff || b[1] != markerSOI {
		return errors.New("imagefile: encoder output is not a JPEG stream")
	}
	var out bytes.Buffer
	out.Grow(len(b) + len(exif) + len(com) + 8)
	out.Write(b[:2])
	writeSegment(&out, markerAPP1, exif)
	if len(com) > 0 {
		writeSegment(&out, markerCOM, com)
	}
	out.Write(b[2:])
	if _, err := w.Write(out.Bytes()); err != nil {
		return fmt.Errorf("imagefile: write JPEG: %w", err)
	}
	return nil
}

func writeSegment(w *bytes.Buffer, marker byte, data []byte) {
	w.Write([]byte{0xff, marker})
	var n [2]byte
	binary.BigEndian.PutUint16(n[:], uint16(len(data)+2))
	w.Write(n[:])
	w.Write(data)
}

// exifUserComment builds an APP1 payload, "Exif\0\0" and a TIFF structure, laid out as piexif
// dumps {"Exif": {UserComment: UserComment.dump(text, encoding="unicode")}} for A1111:
// big-endian ("MM") TIFF, IFD0 holding only the Exif IFD pointer, and an Exif IFD holding
// ExifVersion "0232" and UserComment = "UNICODE\0" + UTF-16BE text.
//
// Byte order: piexif writes big-endian TIFF and UTF-16BE, and its reader (used by A1111 and
// Forge) always decodes UTF-16BE, while exiftool decodes with the TIFF byte order; big-endian
// throughout satisfies both.
func exifUserComment(text string) []byte {
	be := binary.BigEndian
	units := utf16.Encode([]rune(valid(text)))
	comment := make([]byte, len(prefixUnicode), len(prefixUnicode)+2*len(units))
	copy(comment, prefixUnicode)
	for _, u := range units {
		comment = be.AppendUint16(comment, u)
	}
	const (
		ifd0   = 8
		exif   = ifd0 + 2 + 12 + 4 // IFD0: count, one entry, next-IFD offset
		values = exif + 2 + 2*12 + 4
	)
	b := []byte(exifHeader + "MM\x00\x2a")
	b = be.AppendUint32(b, ifd0)
	b = be.AppendUint16(b, 1)
	b = appendEntry(b, tagExifIFD, typeLong, 1, be.AppendUint32(nil, exif))
	b = be.AppendUint32(b, 0)
	b = be.AppendUint16(b, 2)
	b = appendEntry(b, tagExifVersion, typeUndefined, 4, []byte("0232"))
	b = appendEntry(b, tagUserComment, typeUndefined, uint32(len(comment)), be.AppendUint32(nil, values))
	b = be.AppendUint32(b, 0)
	return append(b, comment...)
}

// appendEntry appends a big-endian 12-byte IFD entry; value is the 4-byte value field.
func appendEntry(b []byte, tag, typ uint16, count uint32, value []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, tag)
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint32(b, count)
	return append(b, value...)
}

// jpegSegments holds the metadata segments of a JPEG file read up to its first SOS.
type jpegSegments struct {
	exif     [][]byte // APP1 payloads after "Exif\0\0"
	comments [][]byte // COM payloads
}

func readJPEGSegments(path string) (jpegSegments, error) {
	var s jpegSegments
	f, err := os.Open(path)
	if err != nil {
		return s, fmt.Errorf("imagefile: %w", err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var soi [2]byte
	if _, err := io.ReadFull(r, soi[:]); err != nil || soi[0] != 0xff || soi[1] != markerSOI {
		return s, fmt.Errorf("imagefile: read %s: not a JPEG file", path)
	}
	for {
		marker, data, err := readSegment(r)
		if err != nil {
			return s, fmt.Errorf("imagefile: read %s: %w", path, err)
		}
		switch {
		case marker == markerSOS || marker == markerEOI:
			return s, nil
		case marker == markerAPP1 && bytes.HasPrefix(data, []byte(exifHeader)):
			s.exif = append(s.exif, data[len(exifHeader):])
		case marker == markerCOM:
			s.comments = append(s.comments, data)
		}
	}
}

// readSegment reads the next marker and, for markers with a payload, the payload.
func readSegment(r *bufio.Reader) (marker byte, data []byte, err error) {
	c, err := r.ReadByte()
	if err != nil || c != 0xff {
		return 0, nil, errors.New("bad or truncated JPEG segment")
	}
	for c == 0xff { // fill bytes
		if c, err = r.ReadByte(); err != nil {
			return 0, nil, errors.New("truncated JPEG segment")
		}
	}
	if c == 0x01 || (c >= 0xd0 && c <= markerEOI) { // TEM, RSTn, SOI, EOI: no payload
		return c, nil, nil
	}
	var n [2]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return 0, nil, errors.New("truncated JPEG segment")
	}
	size := int(binary.BigEndian.Uint16(n[:]))
	if size < 2 {
		return 0, nil, fmt.Errorf("JPEG segment 0x%02x has length %d", c, size)
	}
	data = make([]byte, size-2)
	if _, err := io.ReadFull(r, data); err != nil {
		return 0, nil, errors.New("truncated JPEG segment")
	}
	return c, data, nil
}

// ReadJPEGUserComment returns the EXIF UserComment of the JPEG file at path, decoded as A1111
// does: "UNICODE\0" + UTF-16 (byte order from a BOM if present, else the TIFF byte order),
// "ASCII", or an undefined code read as UTF-8. It returns an error wrapping [ErrNoMetadata] when
// the file has no UserComment.
func ReadJPEGUserComment(path string) (string, error) {
	s, err := readJPEGSegments(path)
	if err != nil {
		return "", err
	}
	for _, tiff := range s.exif {
		raw, order, err := findUserComment(tiff)
		if err != nil {
			return "", fmt.Errorf("imagefile: read %s: EXIF: %w", path, err)
		}
		if raw != nil {
			return decodeUserComment(raw, order), nil
		}
	}
	return "", fmt.Errorf("%w: %s has no EXIF UserComment", ErrNoMetadata, path)
}

// ReadJPEGComments returns the COM segments of the JPEG file at path (where [Write] puts the
// rflow JSON), in file order, with invalid UTF-8 replaced by U+FFFD.
func ReadJPEGComments(path string) ([]string, error) {
	s, err := readJPEGSegments(path)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(s.comments))
	for i, c := range s.comments {
		out[i] = valid(string(c))
	}
	return out, nil
}

// findUserComment returns the raw UserComment of a TIFF structure, or nil if it has none.
func findUserComment(tiff []byte) ([]byte, binary.ByteOrder, error) {
	if len(tiff) < 8 {
		return nil, nil, errors.New("truncated TIFF header")
	}
	var order binary.ByteOrder
	switch string(tiff[:2]) {
	case "II":
		order = binary.LittleEndian
	case "MM":
		order = binary.BigEndian
	default:
		return nil, nil, errors.New("bad TIFF byte order")
	}
	if order.Uint16(tiff[2:]) != 42 {
		return nil, nil, errors.New("bad TIFF magic")
	}
	t := tiffReader{tiff, order}
	typ, count, val, err := t.lookup(order.Uint32(tiff[4:]), tagExifIFD)
	if err != nil || val == nil {
		return nil, order, err
	}
	if (typ != typeLong && typ != typeIFD) || count != 1 {
		return nil, order, fmt.Errorf("the Exif IFD pointer has type %d, count %d", typ, count)
	}
	_, _, raw, err := t.lookup(order.Uint32(val), tagUserComment)
	return raw, order, err
}

type tiffReader struct {
	b     []byte
	order binary.ByteOrder
}

// lookup finds tag in the IFD at offset ifd and returns its type, count and value bytes (nil
// if the tag is absent). Only 1-byte types and LONG/IFD are sized; others are not needed here.
func (t tiffReader) lookup(ifd uint32, tag uint16) (typ uint16, count uint32, val []byte, err error) {
	if uint64(ifd)+2 > uint64(len(t.b)) {
		return 0, 0, nil, fmt.Errorf("IFD offset %d out of range", ifd)
	}
	n := uint64(t.order.Uint16(t.b[ifd:]))
	if uint64(ifd)+2+12*n > uint64(len(t.b)) {
		return 0, 0, nil, fmt.Errorf("IFD at %d with %d entries runs past the end", ifd, n)
	}
	for i := uint64(0); i < n; i++ {
		e := t.b[uint64(ifd)+2+12*i:]
		if t.order.Uint16(e) != tag {
			continue
		}
		typ, count = t.order.Uint16(e[2:]), t.order.Uint32(e[4:])
		size := uint64(count)
		if typ == typeLong || typ == typeIFD {
			size *= 4
		}
		if size <= 4 {
			return typ, count, e[8 : 8+size], nil
		}
		off := uint64(t.order.Uint32(e[8:]))
		if off+size > uint64(len(t.b)) {
			return 0, 0, nil, fmt.Errorf("tag 0x%04x value runs past the end", tag)
		}
		return typ, count, t.b[off : off+size], nil
	}
	return 0, 0, nil, nil
}

// decodeUserComment decodes a raw UserComment value (character-code prefix and data).
func decodeUserComment(raw []byte, order binary.ByteOrder) string {
	var s string
	switch {
	case bytes.HasPrefix(raw, prefixUnicode):
		s = decodeUTF16(raw[len(prefixUnicode):], order)
	case bytes.HasPrefix(raw, prefixASCII), bytes.HasPrefix(raw, prefixUndefined):
		s = valid(string(raw[8:]))
	default: // A1111 falls back to decoding the whole value as UTF-8
		s = valid(string(raw))
	}
	return strings.TrimRight(s, "\x00")
}

// decodeUTF16 decodes UTF-16 in the given byte order, or in the order of a leading BOM.
func decodeUTF16(b []byte, order binary.ByteOrder) string {
	if len(b) >= 2 {
		switch {
		case b[0] == 0xfe && b[1] == 0xff:
			order, b = binary.BigEndian, b[2:]
		case b[0] == 0xff && b[1] == 0xfe:
			order, b = binary.LittleEndian, b[2:]
		}
	}
	units := make([]uint16, len(b)/2)
	for i := range units {
		units[i] = order.Uint16(b[2*i:])
	}
	return string(utf16.Decode(units))
}
