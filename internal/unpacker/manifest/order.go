package manifest

import (
	"slices"
	"strings"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

func typeName(t Type) string {
	switch t {
	case TypeDirectory:
		return "directory"
	case TypeRegular:
		return "regular file"
	case TypeSymlink:
		return "symlink"
	case TypeHardLink:
		return "hard link"
	case TypeCharDevice:
		return "character device"
	case TypeBlockDevice:
		return "block device"
	case TypeFIFO:
		return "fifo"
	}
	return "unknown type " + string(rune(t))
}

// comparePaths orders paths component by component: the root first, and '/'
// below every other byte so that "a/b" sorts before "a.b" and every directory
// is immediately followed by its descendants.
func comparePaths(a, b string) int {
	if a == b {
		return 0
	}
	if a == RootPath {
		return -1
	}
	if b == RootPath {
		return 1
	}
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if ca == '/' {
			return -1
		}
		if cb == '/' {
			return 1
		}
		if ca < cb {
			return -1
		}
		return 1
	}
	return len(a) - len(b)
}

func sortManifest(m *Manifest) {
	slices.SortStableFunc(m.Entries, func(a, b Entry) int { return comparePaths(a.Path, b.Path) })
	for i := range m.Entries {
		xs := m.Entries[i].Xattrs
		slices.SortStableFunc(xs, func(a, b Xattr) int { return strings.Compare(a.Name, b.Name) })
	}
}

func lookup(m *Manifest, p string) int {
	i, ok := slices.BinarySearchFunc(m.Entries, p, func(e Entry, p string) int { return comparePaths(e.Path, p) })
	if !ok {
		return -1
	}
	return i
}

func objectsOf(m *Manifest) []objects.Want {
	seen := map[objects.Digest]bool{}
	var out []objects.Want
	add := func(d objects.Digest, size int64) {
		if !seen[d] {
			seen[d] = true
			out = append(out, objects.Want{Digest: d, Size: size})
		}
	}
	switch m.Kind {
	case KindTree:
		for _, e := range m.Entries {
			if e.Type == TypeRegular {
				add(e.Digest, e.Size)
			}
		}
	case KindRawImage:
		if m.Image != nil {
			for i, d := range m.Image.Blocks {
				add(d, m.Image.blockSize(i))
			}
		}
	}
	return out
}

// blockSize is the size of block i (the last one may be short).
func (img *RawImage) blockSize(i int) int64 {
	start := int64(i) * BlockSize
	return min(int64(BlockSize), img.Size-start)
}

func summarize(m *Manifest) Summary {
	s := Summary{Kind: m.Kind}
	switch m.Kind {
	case KindTree:
		s.Entries = len(m.Entries)
		for _, e := range m.Entries {
			switch e.Type {
			case TypeDirectory:
				s.Directories++
			case TypeRegular:
				s.Regular++
				s.Bytes += e.Size
			case TypeSymlink:
				s.Symlinks++
			case TypeHardLink:
				s.HardLinks++
			case TypeCharDevice, TypeBlockDevice:
				s.Devices++
			case TypeFIFO:
				s.FIFOs++
			}
			s.Xattrs += len(e.Xattrs)
		}
	case KindRawImage:
		if m.Image != nil {
			s.Bytes = m.Image.Size
			s.Entries = len(m.Image.Blocks)
		}
	}
	for _, o := range objectsOf(m) {
		s.Objects++
		s.ObjectBytes += o.Size
	}
	return s
}
