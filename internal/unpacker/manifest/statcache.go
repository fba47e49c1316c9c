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

type cachedFile struct {
	Stat   fileStat
	Digest objects.Digest
}

// lookup is nil-safe: a nil cache knows nothing.
func (c *statCache) lookup(p string, st fileStat) (objects.Digest, bool) {
	if c == nil {
		return objects.Digest{}, false
	}
	f, ok := c.Files[p]
	if !ok || f.Stat != st {
		return objects.Digest{}, false
	}
	return f.Digest, true
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

// freshCache records the regular files of this scan, except racy ones.
func (s *scanner) freshCache(start time.Time) *statCache {
	c := &statCache{Version: statCacheVersion, Files: make(map[string]cachedFile, len(s.entries))}
	limit := start.Add(-racyWindow).UnixNano()
	for i, e := range s.entries {
		if e.Type != TypeRegular || s.stats[i].CtimeNs >= limit || s.stats[i].MtimeNs >= limit {
			continue
		}
		c.Files[e.Path] = cachedFile{Stat: s.stats[i], Digest: e.Digest}
	}
	return c
}

// writeStatCache records the current stat of every regular file of m under
// root with m's digest, for a caller that has just made root equal to m.
func writeStatCache(root string, m *Manifest, path string) error {
	rootfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("record stat cache of %s: %w", root, err)
	}
	defer unix.Close(rootfd)
	c := &statCache{Version: statCacheVersion, Files: make(map[string]cachedFile, len(m.Entries))}
	for i := range m.Entries {
		e := &m.Entries[i]
		if e.Type == TypeHardLink {
			// Any name of a multiply-linked file may be the one a scan meets
			// first, so every name of a regular file is recorded.
			t := lookup(m, e.Link)
			if t < 0 || m.Entries[t].Type != TypeRegular {
				continue
			}
			e = &Entry{Path: e.Path, Type: TypeRegular, Size: m.Entries[t].Size, Digest: m.Entries[t].Digest}
		}
		if e.Type != TypeRegular {
			continue
		}
		fd, err := openBeneath(rootfd, e.Path, unix.O_PATH)
		if err != nil {
			return fmt.Errorf("record stat cache of %s: open %s: %w", root, e.Path, err)
		}
		var st unix.Stat_t
		err = unix.Fstat(fd, &st)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("record stat cache of %s: stat %s: %w", root, e.Path, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != e.Size {
			return fmt.Errorf("record stat cache of %s: %s is not the regular file of %d bytes the manifest says", root, e.Path, e.Size)
		}
		c.Files[e.Path] = cachedFile{Stat: statOf(&st), Digest: e.Digest}
	}
	return c.save(path)
}
