package volume

import (
	"fmt"
	"path"
	"strings"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
)

// checkBootable checks m against what findKernels and kernelArgs need of a
// root (MakeBootable's rules), without any file system: so that a revision
// that cannot boot is refused before the volume is touched.
func checkBootable(m *manifest.Manifest) error {
	if m.Kind != manifest.KindTree {
		return fmt.Errorf("revision is not a file tree")
	}
	boot, err := resolveIn(m, "boot", true)
	if err != nil {
		return fmt.Errorf("no kernel: boot: %w", err)
	}
	if boot < 0 || m.Entries[boot].Type != manifest.TypeDirectory {
		return fmt.Errorf("no kernel: the revision has no boot directory (MakeBootable needs boot/vmlinuz-VERSION)")
	}
	bootPath := m.Entries[boot].Path
	found := false
	for i := boot + 1; i < len(m.Entries) && strings.HasPrefix(m.Entries[i].Path, bootPath+"/"); i++ {
		name := strings.TrimPrefix(m.Entries[i].Path, bootPath+"/")
		if strings.Contains(name, "/") {
			continue
		}
		for _, prefix := range kernelPrefixes {
			version, ok := strings.CutPrefix(name, prefix)
			if ok && version != "" && !strings.HasSuffix(version, ".old") && isRegular(m, i) {
				found = true
			}
		}
	}
	if !found {
		return fmt.Errorf("no kernel: %s holds no regular file named vmlinuz-VERSION (symlinks and *.old do not count)", bootPath)
	}
	// etc/kernel/cmdline, when present: a regular file of at most 2 KiB.
	dir, err := resolveIn(m, "etc/kernel", true)
	if err != nil {
		return fmt.Errorf("kernel command line etc/kernel/cmdline: %w", err)
	}
	if dir >= 0 {
		p := "cmdline"
		if d := m.Entries[dir].Path; d != manifest.RootPath {
			p = d + "/cmdline"
		}
		if i := m.Lookup(p); i >= 0 {
			size := m.Entries[i].Size
			if t := m.Entries[i].Type; t == manifest.TypeHardLink {
				size = m.Entries[m.Lookup(m.Entries[i].Link)].Size
			}
			if !isRegular(m, i) || size > maxCmdlineFile {
				return fmt.Errorf("kernel command line %s: want a regular file of at most %d bytes", p, maxCmdlineFile)
			}
		}
	}
	return nil
}

// isRegular reports whether entry i is a regular file (or a hard link to one).
func isRegular(m *manifest.Manifest, i int) bool {
	e := &m.Entries[i]
	if e.Type == manifest.TypeHardLink {
		if t := m.Lookup(e.Link); t >= 0 {
			e = &m.Entries[t]
		}
	}
	return e.Type == manifest.TypeRegular
}

// resolveIn resolves p (relative to the root) in m the way a path under the
// mounted root resolves and beneath() accepts it: relative symlinks are
// followed (the last component only when followLast), while an absolute
// one, or ".." above the root, leads outside the root and is an error. It
// returns the entry's index, or -1 when some component does not exist.
func resolveIn(m *manifest.Manifest, p string, followLast bool) (int, error) {
	parts := strings.Split(p, "/")
	cur := "" // resolved so far, relative to the root
	hops := 0
	for len(parts) > 0 {
		name := parts[0]
		parts = parts[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			if cur == "" {
				return -1, fmt.Errorf("%s leads outside the root", p)
			}
			cur = path.Dir(cur)
			if cur == "." {
				cur = ""
			}
			continue
		}
		next := name
		if cur != "" {
			next = cur + "/" + name
		}
		i := m.Lookup(next)
		if i < 0 {
			return -1, nil
		}
		e := &m.Entries[i]
		if e.Type == manifest.TypeSymlink && (len(parts) > 0 || followLast) {
			if hops++; hops > 40 {
				return -1, fmt.Errorf("%s: too many levels of symbolic links", p)
			}
			if path.IsAbs(e.Link) {
				return -1, fmt.Errorf("%s is a symlink to the absolute path %s, which leads outside the root", next, e.Link)
			}
			parts = append(strings.Split(e.Link, "/"), parts...)
			continue
		}
		if len(parts) > 0 && e.Type != manifest.TypeDirectory {
			return -1, nil
		}
		cur = next
	}
	if cur == "" {
		return 0, nil
	}
	return m.Lookup(cur), nil
}
