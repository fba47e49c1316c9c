package manifest

import (
	"bufio"
	"encoding/gob"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// statCacheVersion changes whenever the meaning of a cached record changes;
// a cache of another version is ignored.
const statCacheVersion = 1

// racyWindow: a file whose ctime is this close to the scan start may still
// be changed within the same timestamp tick without its stat changing, so it
// is not cached (the "racy git" problem).
const racyWindow = 2 * time.Second

// statCache maps a path to the stat it had when its digest was computed.
type statCache struct {
	Version int
	Files   map[string]cachedFile
}

// cachedFile is what a scan learnt about one entry with the given stat.
type cachedFile struct {
	Stat   fileStat
	Digest objects.Digest // regular files
	Link   string         // symlinks
	Xattrs []Xattr
}

// lookup is nil-safe: a nil cache knows nothing.
func (c *statCache) lookup(p string, st fileStat) (cachedFile, bool) {
	if c == nil {
		return cachedFile{}, false
	}
	f, ok := c.Files[p]
	if !ok || f.Stat != st {
		return cachedFile{}, false
	}
	return f, true
}

// sameAs reports whether saving fresh would record nothing new: every
// fresh record is in c with the same stat (a warm rescan of an unchanged
// tree then writes nothing).
func (c *statCache) sameAs(fresh *statCache) bool {
	if c == nil || len(c.Files) != len(fresh.Files) {
		return false
	}
	for p, f := range fresh.Files {
		if g, ok := c.Files[p]; !ok || g.Stat != f.Stat {
			return false
		}
	}
	return true
}

// loadStatCache reads the cache; a missing, unreadable or stale-format cache
// is an empty one (it only saves time).
func loadStatCache(path string, log *slog.Logger) *statCache {
	f, err := os.Open(path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			log.Warn("ignoring unreadable stat cache", "path", path, "err", err)
		}
		return nil
	}
	defer f.Close()
	var c statCache
	if err := gob.NewDecoder(bufio.NewReaderSize(f, 1<<20)).Decode(&c); err != nil || c.Version != statCacheVersion {
		log.Warn("ignoring invalid stat cache", "path", path, "err", err, "version", c.Version)
		return nil
	}
	return &c
}

func (c *statCache) save(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("save stat cache: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("save stat cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 1<<20)
	err = gob.NewEncoder(w).Encode(c)
	if err == nil {
		err = w.Flush()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("save stat cache %s: %w", path, err)
	}
	return nil
}

// freshCache records the entries of this scan, except racy ones (and the
// root, which is always read).
func (s *scanner) freshCache(start time.Time) *statCache {
	c := &statCache{Version: statCacheVersion, Files: make(map[string]cachedFile, len(s.entries))}
	limit := start.Add(-racyWindow).UnixNano()
	for i, e := range s.entries {
		if e.Type == TypeHardLink || e.Path == RootPath || s.stats[i].CtimeNs >= limit || s.stats[i].MtimeNs >= limit {
			continue
		}
		c.Files[e.Path] = cachedFile{Stat: s.stats[i], Digest: e.Digest, Link: e.Link, Xattrs: e.Xattrs}
	}
	return c
}

// writeStatCache records the current stat of every entry of m under root
// with m's digest, symlink target and xattrs, for a caller that has just
// made root equal to m. Entries are stat'ed relative to their directory
// (one statx each), never across a mount.
func writeStatCache(root string, m *Manifest, path string) error {
	rootfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("record stat cache of %s: %w", root, err)
	}
	defer unix.Close(rootfd)
	rootSt, err := statxAt(rootfd, "", unix.AT_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("record stat cache of %s: %w", root, err)
	}
	dirs := map[string]int{}
	defer func() {
		for _, fd := range dirs {
			unix.Close(fd)
		}
	}()
	dirFD := func(dir string) (int, error) {
		if dir == "" {
			return rootfd, nil
		}
		if fd, ok := dirs[dir]; ok {
			return fd, nil
		}
		if len(dirs) >= 256 {
			for p, fd := range dirs {
				unix.Close(fd)
				delete(dirs, p)
			}
		}
		fd, err := openBeneath(rootfd, dir, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return -1, err
		}
		dirs[dir] = fd
		return fd, nil
	}
	c := &statCache{Version: statCacheVersion, Files: make(map[string]cachedFile, len(m.Entries))}
	for i := 1; i < len(m.Entries); i++ {
		e := &m.Entries[i]
		data := e
		if e.Type == TypeHardLink {
			// Any name of a multiply-linked file may be the one a scan meets
			// first, so every name is recorded with the inode's data.
			t := lookup(m, e.Link)
			if t < 0 {
				continue
			}
			data = &m.Entries[t]
		}
		dir, name := "", e.Path
		if j := strings.LastIndexByte(e.Path, '/'); j >= 0 {
			dir, name = e.Path[:j], e.Path[j+1:]
		}
		fd, err := dirFD(dir)
		if err != nil {
			return fmt.Errorf("record stat cache of %s: open %s: %w", root, dir, err)
		}
		st, err := statxAt(fd, name, 0)
		if err != nil {
			return fmt.Errorf("record stat cache of %s: stat %s: %w", root, e.Path, err)
		}
		if st.dev != rootSt.dev || (st.mntID != 0 && rootSt.mntID != 0 && st.mntID != rootSt.mntID) {
			return fmt.Errorf("record stat cache of %s: %s: %w", root, e.Path, errOtherMount)
		}
		if data.Type == TypeRegular && (st.kind() != unix.S_IFREG || st.size != data.Size) {
			return fmt.Errorf("record stat cache of %s: %s is not the regular file of %d bytes the manifest says", root, e.Path, data.Size)
		}
		c.Files[e.Path] = cachedFile{Stat: statOfEntry(&st), Digest: data.Digest, Link: data.Link, Xattrs: data.Xattrs}
	}
	return c.save(path)
}
