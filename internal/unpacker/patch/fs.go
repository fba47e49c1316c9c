package patch

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
)

// tree performs every file-system operation of a patch relative to the root
// directory descriptor. Directories are opened with openat2 and
// RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_XDEV, and the final
// component is acted on with AT_SYMLINK_NOFOLLOW (or equivalent), so no
// symlink is ever followed and no mount point inside the root is crossed.
type tree struct {
	root   string
	rootfd int
	// dirs caches open O_PATH descriptors of directories by path.
	dirs map[string]int
}

// maxCachedDirs bounds the descriptors a tree keeps open.
const maxCachedDirs = 256

func openTree(root string) (*tree, error) {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open root %s: %w", root, err)
	}
	return &tree{root: root, rootfd: fd, dirs: map[string]int{}}, nil
}

func (t *tree) close() {
	t.forgetAll()
	unix.Close(t.rootfd)
}

func (t *tree) forgetAll() {
	for p, fd := range t.dirs {
		unix.Close(fd)
		delete(t.dirs, p)
	}
}

// forget drops cached descriptors of dir and everything below it (after dir
// is removed).
func (t *tree) forget(dir string) {
	for p, fd := range t.dirs {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			unix.Close(fd)
			delete(t.dirs, p)
		}
	}
}

// openBeneath opens path below the root without following any symlink.
func (t *tree) openBeneath(path string, flags int) (int, error) {
	return openAt(t.rootfd, path, flags)
}

// openAt opens path relative to dirfd without following any symlink, without
// leaving dirfd's tree and without crossing into another mount (a bind mount
// over a directory of the root must never lead the patch outside the
// volume): such a path fails with EXDEV.
func openAt(dirfd int, path string, flags int) (int, error) {
	for {
		fd, err := unix.Openat2(dirfd, path, &unix.OpenHow{
			Flags:   uint64(flags | unix.O_CLOEXEC | unix.O_NOFOLLOW),
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
		})
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			continue
		}
		return fd, err
	}
}

// dir returns a descriptor of the directory at path ("." is the root).
func (t *tree) dir(path string) (int, error) {
	if path == manifest.RootPath {
		return t.rootfd, nil
	}
	if fd, ok := t.dirs[path]; ok {
		return fd, nil
	}
	if len(t.dirs) >= maxCachedDirs {
		t.forgetAll()
	}
	fd, err := t.openBeneath(path, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return -1, fmt.Errorf("open directory %s beneath %s without following symlinks: %w", path, t.root, explainXDEV(err))
	}
	t.dirs[path] = fd
	return fd, nil
}

// parent returns the descriptor of path's parent directory and path's last
// component. The root itself is (rootfd, ".").
func (t *tree) parent(path string) (int, string, error) {
	if path == manifest.RootPath {
		return t.rootfd, ".", nil
	}
	dir, name := splitPath(path)
	fd, err := t.dir(dir)
	return fd, name, err
}

func splitPath(p string) (dir, name string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return manifest.RootPath, p
	}
	return p[:i], p[i+1:]
}

// lstat stats path without following a symlink.
func (t *tree) lstat(path string) (unix.Stat_t, error) {
	var st unix.Stat_t
	fd, name, err := t.parent(path)
	if err != nil {
		return st, err
	}
	err = unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	return st, err
}

// explainXDEV adds to an openat2 EXDEV error what it means here.
func explainXDEV(err error) error {
	if errors.Is(err, unix.EXDEV) {
		return fmt.Errorf("%w: a mount point inside the root, which the patch never crosses", err)
	}
	return err
}
