package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// magic starts every serialized manifest; the byte after it is the format
// version, then the kind.
const (
	magic         = "autoami-manifest\n"
	formatVersion = 1
)

// Serialization (all integers unsigned LEB128 varints, mtime zig-zag signed,
// strings a varint length then bytes):
//
//	magic, version, kind
//	tree:  count, then per entry: type, path, and
//	       hard link: link
//	       others:    mode (plus sparseModeBit for a sparse regular file),
//	                  uid, gid, mtime,
//	                  regular: size, 32-byte digest; symlink: link;
//	                  devices: major, minor;
//	                  xattr count, then name, value per xattr
//	image: size, then one 32-byte digest per block

// sparseModeBit marks a sparse regular file in the serialized mode. It lies
// outside the permission bits (07777), so the serialization of every other
// entry (and of every manifest made before sparse files were recorded) is
// unchanged.
const sparseModeBit = 0o10000

func marshal(m *Manifest) ([]byte, error) {
	if err := validate(m); err != nil {
		return nil, fmt.Errorf("serialize manifest: %w", err)
	}
	return encode(m), nil
}

func digest(m *Manifest) (objects.Digest, error) {
	b, err := marshal(m)
	if err != nil {
		return objects.Digest{}, err
	}
	return sha256.Sum256(b), nil
}

func encode(m *Manifest) []byte {
	size := len(magic) + 2 + 10
	for i := range m.Entries {
		size += 64 + len(m.Entries[i].Path) + len(m.Entries[i].Link)
	}
	if m.Image != nil {
		size += 32 * len(m.Image.Blocks)
	}
	b := make([]byte, 0, size)
	b = append(b, magic...)
	b = append(b, formatVersion, byte(m.Kind))
	switch m.Kind {
	case KindTree:
		b = binary.AppendUvarint(b, uint64(len(m.Entries)))
		for i := range m.Entries {
			b = appendEntry(b, &m.Entries[i])
		}
	case KindRawImage:
		b = binary.AppendUvarint(b, uint64(m.Image.Size))
		for _, d := range m.Image.Blocks {
			b = append(b, d[:]...)
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendEntry(b []byte, e *Entry) []byte {
	b = append(b, byte(e.Type))
	b = appendString(b, e.Path)
	if e.Type == TypeHardLink {
		return appendString(b, e.Link)
	}
	mode := e.Mode
	if e.Sparse {
		mode |= sparseModeBit
	}
	b = binary.AppendUvarint(b, uint64(mode))
	b = binary.AppendUvarint(b, uint64(e.UID))
	b = binary.AppendUvarint(b, uint64(e.GID))
	b = binary.AppendVarint(b, e.MtimeNs)
	switch e.Type {
	case TypeRegular:
		b = binary.AppendUvarint(b, uint64(e.Size))
		b = append(b, e.Digest[:]...)
	case TypeSymlink:
		b = appendString(b, e.Link)
	case TypeCharDevice, TypeBlockDevice:
		b = binary.AppendUvarint(b, uint64(e.DevMajor))
		b = binary.AppendUvarint(b, uint64(e.DevMinor))
	}
	b = binary.AppendUvarint(b, uint64(len(e.Xattrs)))
	for _, x := range e.Xattrs {
		b = appendString(b, x.Name)
		b = binary.AppendUvarint(b, uint64(len(x.Value)))
		b = append(b, x.Value...)
	}
	return b
}

// decoder reads the serialization; the first error sticks.
type decoder struct {
	b   []byte
	off int
	err error
}

var errTruncated = errors.New("truncated")

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("at byte %d: %s", d.off, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) uvarint(what string, limit uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad or truncated varint for %s", what)
		return 0
	}
	d.off += n
	if v > limit {
		d.fail("%s %d exceeds the limit %d", what, v, limit)
		return 0
	}
	return v
}

func (d *decoder) varint(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad or truncated varint for %s", what)
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) bytes(what string, limit int) []byte {
	n := int(d.uvarint(what+" length", uint64(limit)))
	if d.err != nil {
		return nil
	}
	if len(d.b)-d.off < n {
		d.fail("%s of %d bytes: %v", what, n, errTruncated)
		return nil
	}
	v := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return v
}

func (d *decoder) digest(what string) (out objects.Digest) {
	if d.err != nil {
		return out
	}
	if len(d.b)-d.off < len(out) {
		d.fail("%s: %v", what, errTruncated)
		return out
	}
	copy(out[:], d.b[d.off:])
	d.off += len(out)
	return out
}

func unmarshal(b []byte) (*Manifest, error) {
	m, err := decode(b)
	if err != nil {
		return nil, fmt.Errorf("parse manifest: %w", err)
	}
	if err := validate(m); err != nil {
		return nil, fmt.Errorf("parse manifest: %w", err)
	}
	// Accept only the canonical form (minimal varints, nothing trailing), so a
	// revision has exactly one serialization and one digest.
	if !bytes.Equal(encode(m), b) {
		return nil, fmt.Errorf("parse manifest: not in canonical form")
	}
	return m, nil
}

func decode(b []byte) (*Manifest, error) {
	if len(b) < len(magic)+2 || string(b[:len(magic)]) != magic {
		return nil, fmt.Errorf("not an autoami manifest (bad magic)")
	}
	if v := b[len(magic)]; v != formatVersion {
		return nil, fmt.Errorf("manifest format version %d, this unpacker reads version %d", v, formatVersion)
	}
	d := &decoder{b: b, off: len(magic) + 2}
	m := &Manifest{Kind: Kind(b[len(magic)+1])}
	switch m.Kind {
	case KindTree:
		// Each entry takes at least 7 bytes, which bounds the count by the input.
		n := d.uvarint("entry count", uint64(min(MaxEntries, (len(b)-d.off)/7)))
		m.Entries = make([]Entry, 0, n)
		for i := uint64(0); i < n && d.err == nil; i++ {
			m.Entries = append(m.Entries, d.entry())
		}
	case KindRawImage:
		size := int64(d.uvarint("image size", MaxImageSize))
		if d.err == nil {
			count := (size + BlockSize - 1) / BlockSize
			if int64(len(b)-d.off) < 32*count {
				d.fail("image of %d bytes needs %d block digests: %v", size, count, errTruncated)
			} else {
				m.Image = &RawImage{Size: size, Blocks: make([]objects.Digest, count)}
				for i := range m.Image.Blocks {
					m.Image.Blocks[i] = d.digest("block digest")
				}
			}
		}
	default:
		return nil, fmt.Errorf("unknown manifest kind %q", rune(m.Kind))
	}
	if d.err != nil {
		return nil, d.err
	}
	if d.off != len(b) {
		return nil, fmt.Errorf("%d trailing bytes after the manifest", len(b)-d.off)
	}
	return m, nil
}

func (d *decoder) entry() Entry {
	var e Entry
	if d.off >= len(d.b) {
		d.fail("entry type: %v", errTruncated)
		return e
	}
	e.Type = Type(d.b[d.off])
	d.off++
	e.Path = string(d.bytes("path", MaxPathLen))
	if e.Type == TypeHardLink {
		e.Link = string(d.bytes("hard link target", MaxPathLen))
		return e
	}
	limit := uint64(0o7777)
	if e.Type == TypeRegular {
		limit |= sparseModeBit
	}
	e.Mode = uint32(d.uvarint("mode", limit))
	e.Sparse = e.Mode&sparseModeBit != 0
	e.Mode &^= sparseModeBit
	e.UID = uint32(d.uvarint("uid", 1<<32-1))
	e.GID = uint32(d.uvarint("gid", 1<<32-1))
	e.MtimeNs = d.varint("mtime")
	switch e.Type {
	case TypeRegular:
		e.Size = int64(d.uvarint("size", uint64(objects.MaxObjectSize)))
		e.Digest = d.digest("content digest")
	case TypeSymlink:
		e.Link = string(d.bytes("symlink target", MaxPathLen))
	case TypeCharDevice, TypeBlockDevice:
		e.DevMajor = uint32(d.uvarint("device major", 1<<32-1))
		e.DevMinor = uint32(d.uvarint("device minor", 1<<32-1))
	case TypeDirectory, TypeFIFO:
	default:
		d.fail("unknown entry type %q for %q", rune(e.Type), e.Path)
		return e
	}
	n := d.uvarint("xattr count", MaxXattrs)
	for i := uint64(0); i < n && d.err == nil; i++ {
		name := string(d.bytes("xattr name", MaxXattrNameLen))
		value := d.bytes("xattr value", MaxXattrValueLen)
		e.Xattrs = append(e.Xattrs, Xattr{Name: name, Value: bytes.Clone(value)})
	}
	return e
}
