package manifest

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// emptyDigest is the digest of zero bytes, the only valid digest of an empty file.
var emptyDigest objects.Digest = sha256.Sum256(nil)

func validate(m *Manifest) error {
	if m == nil {
		return fmt.Errorf("manifest is nil")
	}
	switch m.Kind {
	case KindTree:
		if m.Image != nil {
			return fmt.Errorf("tree manifest has raw image blocks")
		}
		return validateTree(m.Entries)
	case KindRawImage:
		if len(m.Entries) != 0 {
			return fmt.Errorf("raw image manifest has %d tree entries", len(m.Entries))
		}
		return validateImage(m.Image)
	default:
		return fmt.Errorf("manifest kind %q is neither tree (%q) nor raw image (%q)", rune(m.Kind), rune(KindTree), rune(KindRawImage))
	}
}

func validateImage(img *RawImage) error {
	if img == nil {
		return fmt.Errorf("raw image manifest has no image")
	}
	if img.Size <= 0 || img.Size > MaxImageSize {
		return fmt.Errorf("raw image size %d is outside 1..%d", img.Size, int64(MaxImageSize))
	}
	want := (img.Size + BlockSize - 1) / BlockSize
	if int64(len(img.Blocks)) != want {
		return fmt.Errorf("raw image of %d bytes needs %d block digests, has %d", img.Size, want, len(img.Blocks))
	}
	for i, d := range img.Blocks {
		if d.IsZero() {
			return fmt.Errorf("raw image block %d has no digest", i)
		}
	}
	return nil
}

func validateTree(entries []Entry) error {
	if len(entries) == 0 {
		return fmt.Errorf("tree manifest has no entries (not even the root directory)")
	}
	if len(entries) > MaxEntries {
		return fmt.Errorf("tree manifest has %d entries, more than the limit of %d", len(entries), MaxEntries)
	}
	if entries[0].Path != RootPath || entries[0].Type != TypeDirectory {
		return fmt.Errorf("tree manifest must start with the root directory %q, starts with %s %q", RootPath, entries[0].Type, entries[0].Path)
	}
	// types maps each path seen so far to its type, for parent and hard link checks.
	types := make(map[string]Type, len(entries))
	for i := range entries {
		e := &entries[i]
		if i > 0 {
			if err := validatePath(e.Path); err != nil {
				return fmt.Errorf("manifest entry %d: %w", i, err)
			}
			prev := entries[i-1].Path
			if c := comparePaths(prev, e.Path); c == 0 {
				return fmt.Errorf("manifest entry %q: duplicate path", e.Path)
			} else if c > 0 {
				return fmt.Errorf("manifest entry %q: out of canonical order (after %q)", e.Path, prev)
			}
			parent := parentOf(e.Path)
			pt, ok := types[parent]
			if !ok {
				return fmt.Errorf("manifest entry %q: parent directory %q is missing", e.Path, parent)
			}
			if pt != TypeDirectory {
				return fmt.Errorf("manifest entry %q: parent %q is a %s, not a directory", e.Path, parent, pt)
			}
		}
		if err := validateEntry(e, types); err != nil {
			return fmt.Errorf("manifest entry %q: %w", e.Path, err)
		}
		types[e.Path] = e.Type
	}
	return nil
}

// parentOf returns the parent path of a non-root path.
func parentOf(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return RootPath
	}
	return p[:i]
}

// validatePath checks a non-root entry path.
func validatePath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("empty path")
	case len(p) > MaxPathLen:
		return fmt.Errorf("path of %d bytes is longer than %d", len(p), MaxPathLen)
	case strings.IndexByte(p, 0) >= 0:
		return fmt.Errorf("path %q contains a NUL byte", p)
	case p[0] == '/':
		return fmt.Errorf("path %q is absolute", p)
	case p == RootPath:
		return fmt.Errorf("path %q: the root may only be the first entry", p)
	}
	for c := range strings.SplitSeq(p, "/") {
		switch {
		case c == "":
			return fmt.Errorf("path %q has an empty component", p)
		case c == "." || c == "..":
			return fmt.Errorf("path %q has a %q component", p, c)
		case len(c) > MaxNameLen:
			return fmt.Errorf("path %q has a component of %d bytes, longer than %d", p, len(c), MaxNameLen)
		}
	}
	return nil
}

func validateEntry(e *Entry, types map[string]Type) error {
	if e.Type == TypeHardLink {
		if e.Mode != 0 || e.UID != 0 || e.GID != 0 || e.MtimeNs != 0 || e.Size != 0 || len(e.Xattrs) != 0 ||
			!e.Digest.IsZero() || e.DevMajor != 0 || e.DevMinor != 0 || e.Sparse {
			return fmt.Errorf("hard link carries its own metadata (it shares its target's)")
		}
		if err := validatePath(e.Link); err != nil {
			return fmt.Errorf("hard link target: %w", err)
		}
		t, ok := types[e.Link]
		if !ok {
			return fmt.Errorf("hard link target %q is missing or does not come earlier", e.Link)
		}
		if t == TypeDirectory || t == TypeHardLink {
			return fmt.Errorf("hard link target %q is a %s", e.Link, t)
		}
		return nil
	}
	if e.Mode&^0o7777 != 0 {
		return fmt.Errorf("mode %#o has bits outside 07777", e.Mode)
	}
	if e.Type != TypeRegular {
		if e.Size != 0 || !e.Digest.IsZero() {
			return fmt.Errorf("a %s has no content (size %d, digest %s)", e.Type, e.Size, e.Digest)
		}
	}
	if e.Sparse && (e.Type != TypeRegular || e.Size == 0) {
		return fmt.Errorf("only a regular file of nonzero size can be sparse, not a %s of %d bytes", e.Type, e.Size)
	}
	if e.Type != TypeSymlink && e.Link != "" {
		return fmt.Errorf("a %s has no link target (has %q)", e.Type, e.Link)
	}
	if e.Type != TypeCharDevice && e.Type != TypeBlockDevice && (e.DevMajor != 0 || e.DevMinor != 0) {
		return fmt.Errorf("a %s has no device numbers (has %d:%d)", e.Type, e.DevMajor, e.DevMinor)
	}
	switch e.Type {
	case TypeDirectory, TypeCharDevice, TypeBlockDevice, TypeFIFO:
	case TypeRegular:
		if e.Size < 0 || e.Size > objects.MaxObjectSize {
			return fmt.Errorf("size %d is outside 0..%d", e.Size, objects.MaxObjectSize)
		}
		if e.Digest.IsZero() {
			return fmt.Errorf("regular file has no digest")
		}
		if e.Size == 0 && e.Digest != emptyDigest {
			return fmt.Errorf("empty file has digest %s, not that of empty content", e.Digest)
		}
	case TypeSymlink:
		switch {
		case e.Link == "":
			return fmt.Errorf("symlink has an empty target")
		case len(e.Link) > MaxPathLen:
			return fmt.Errorf("symlink target of %d bytes is longer than %d", len(e.Link), MaxPathLen)
		case strings.IndexByte(e.Link, 0) >= 0:
			return fmt.Errorf("symlink target %q contains a NUL byte", e.Link)
		}
	default:
		return fmt.Errorf("unknown entry type %q", rune(e.Type))
	}
	return validateXattrs(e)
}

func validateXattrs(e *Entry) error {
	if len(e.Xattrs) > MaxXattrs {
		return fmt.Errorf("%d xattrs, more than %d", len(e.Xattrs), MaxXattrs)
	}
	for i, x := range e.Xattrs {
		if i > 0 && e.Xattrs[i-1].Name >= x.Name {
			return fmt.Errorf("xattr %q: duplicate or out of order", x.Name)
		}
		if err := validateXattr(e.Type, x); err != nil {
			return fmt.Errorf("xattr %q: %w", x.Name, err)
		}
	}
	return nil
}

func validateXattr(t Type, x Xattr) error {
	switch {
	case len(x.Name) > MaxXattrNameLen:
		return fmt.Errorf("name longer than %d bytes", MaxXattrNameLen)
	case strings.IndexByte(x.Name, 0) >= 0:
		return fmt.Errorf("name contains a NUL byte")
	case len(x.Value) > MaxXattrValueLen:
		return fmt.Errorf("value of %d bytes is longer than %d", len(x.Value), MaxXattrValueLen)
	}
	ns, rest, _ := strings.Cut(x.Name, ".")
	if rest == "" {
		return fmt.Errorf("name has no namespace and attribute (want e.g. user.name)")
	}
	switch ns {
	case "security", "trusted":
	case "user":
		if t != TypeRegular && t != TypeDirectory {
			return fmt.Errorf("user.* attributes exist only on regular files and directories, not on a %s", t)
		}
	case "system":
		switch x.Name {
		case aclAccess:
		case aclDefault:
			if t != TypeDirectory {
				return fmt.Errorf("a default ACL exists only on directories, not on a %s", t)
			}
		default:
			return fmt.Errorf("only POSIX ACLs (%s, %s) are supported in the system namespace", aclAccess, aclDefault)
		}
		if t == TypeSymlink {
			return fmt.Errorf("symlinks carry no ACLs")
		}
		if err := validateACL(x.Value); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown namespace %q (want security, system, trusted or user)", ns)
	}
	return nil
}

// POSIX ACL xattr names and their kernel encoding: a little-endian version 2
// header, then 8-byte entries (tag u16, perm u16, id u32).
const (
	aclAccess  = "system.posix_acl_access"
	aclDefault = "system.posix_acl_default"
	aclVersion = 2
)

func validateACL(v []byte) error {
	if len(v) < 4 || (len(v)-4)%8 != 0 {
		return fmt.Errorf("ACL value of %d bytes is not a version header plus 8-byte entries", len(v))
	}
	if ver := binary.LittleEndian.Uint32(v); ver != aclVersion {
		return fmt.Errorf("ACL version %d, want %d", ver, aclVersion)
	}
	return nil
}
