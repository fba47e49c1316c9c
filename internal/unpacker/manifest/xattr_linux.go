package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"golang.org/x/sys/unix"
)

// procPath names the entry name in the directory open as dirfd without
// resolving any symlink but the /proc magic link of the descriptor itself:
// the l*xattr calls on it act on the entry, never on what it points to.
func procPath(dirfd int, name string) string {
	return "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + name
}

// readXattrs lists and reads the extended attributes of path (an l*xattr
// path, see procPath), sorted by name. listFn and getFn let the root
// directory use its descriptor instead.
func readXattrs(list func([]byte) (int, error), get func(name string, buf []byte) (int, error)) ([]Xattr, error) {
	var buf []byte
	for size := 256; ; size *= 4 {
		buf = make([]byte, size)
		n, err := list(buf)
		if errors.Is(err, unix.ERANGE) && size < 1<<20 {
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list xattrs: %w", err)
		}
		buf = buf[:n]
		break
	}
	if len(buf) == 0 {
		return nil, nil
	}
	var out []Xattr
	for _, name := range bytes.Split(bytes.TrimSuffix(buf, []byte{0}), []byte{0}) {
		if len(name) == 0 {
			continue
		}
		v, err := readXattr(string(name), get)
		if errors.Is(err, unix.ENODATA) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, Xattr{Name: string(name), Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func readXattr(name string, get func(string, []byte) (int, error)) ([]byte, error) {
	for size := 256; ; size *= 4 {
		buf := make([]byte, size)
		n, err := get(name, buf)
		if errors.Is(err, unix.ERANGE) && size <= MaxXattrValueLen {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read xattr %s: %w", name, err)
		}
		return buf[:n:n], nil
	}
}

// entryXattrs reads the xattrs of name in the directory dirfd.
func entryXattrs(dirfd int, name string) ([]Xattr, error) {
	p := procPath(dirfd, name)
	return readXattrs(
		func(b []byte) (int, error) { return unix.Llistxattr(p, b) },
		func(n string, b []byte) (int, error) { return unix.Lgetxattr(p, n, b) })
}

// fdXattrs reads the xattrs of an open (non-O_PATH) descriptor.
func fdXattrs(fd int) ([]Xattr, error) {
	return readXattrs(
		func(b []byte) (int, error) { return unix.Flistxattr(fd, b) },
		func(n string, b []byte) (int, error) { return unix.Fgetxattr(fd, n, b) })
}
