// Package imagefile writes generated images together with their generation parameters.
//
// The parameters go into the file in the de-facto interchange format of A1111/Forge (the
// "parameters" text built by create_infotext, see spec/peers-and-conventions.md §4.5), so that
// A1111's "PNG Info" tab, Civitai, exiftool and the many infotext parsers read rflow images:
//
//   - PNG: a text chunk with keyword "parameters", tEXt when the text is Latin-1 encodable and
//     uncompressed iTXt (UTF-8) otherwise, as PIL's PngInfo.add_text writes it; plus a chunk with
//     keyword "rflow" holding rflow's own JSON settings. Both go before the first IDAT.
//   - JPEG: an EXIF APP1 segment whose Exif IFD holds UserComment (0x9286) as "UNICODE\0" plus
//     UTF-16, exactly as A1111 writes it with piexif (big-endian TIFF, UTF-16BE); plus a COM
//     segment holding the rflow JSON.
//
// Files are written atomically: a temporary file in the destination directory is written,
// fsynced and renamed (or hard-linked, to refuse an existing name without a race), so a reader
// never sees a partial image and a failed write leaves nothing behind.
//
// [ExpandTemplate] and [Slug] turn output-name templates such as "out/{seed}-{prompt}.png" into
// file names.
package imagefile
