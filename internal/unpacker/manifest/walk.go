package manifest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// scanner walks a tree through directory descriptors (never following a
// symlink), collecting entries; regular files missing from the stat cache
// are hashed afterwards by a pool of workers.
type scanner struct {
	ctx     context.Context
	root    string
	rootfd  int
	rootSt  entryStat // the root's device and mount: no entry may be elsewhere
	opts    DirOptions
	log     *slog.Logger
	exclude map[string]bool
	cache   *statCache
	entries []Entry
	stats   []fileStat // parallel to entries (regular files only are used)
	// inodes maps a multiply-linked inode to the index of its first entry.
	inodes map[inodeKey]int
	toHash []int // indexes of entries to hash
	hits   int
	// other and flagged are the Scan's Other and Flagged, in walk order.
	other   []string
	flagged []string
}

type inodeKey struct{ dev, ino uint64 }

// fileStat is what the stat cache compares.
type fileStat struct {
	Ino     uint64
	Size    int64
	MtimeNs int64
	CtimeNs int64
}

func statOf(st *unix.Stat_t) fileStat {
	return fileStat{Ino: st.Ino, Size: st.Size, MtimeNs: st.Mtim.Nano(), CtimeNs: st.Ctim.Nano()}
}

func fromDirectory(ctx context.Context, root string, opts DirOptions) (*Manifest, error) {
	sc, err := scanDirectory(ctx, root, opts)
	if err != nil {
		return nil, err
	}
	return sc.Manifest, nil
}

func scanDirectory(ctx context.Context, root string, opts DirOptions) (*Scan, error) {
	start := time.Now()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rootfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("scan %s: open root directory: %w", root, err)
	}
	defer unix.Close(rootfd)
	s := &scanner{ctx: ctx, root: root, rootfd: rootfd, opts: opts, log: log,
		exclude: map[string]bool{}, inodes: map[inodeKey]int{}}
	for _, n := range opts.Exclude {
		s.exclude[n] = true
	}
	if opts.StatCachePath != "" {
		s.cache = loadStatCache(opts.StatCachePath, log)
	}
	if err := s.addRoot(); err != nil {
		return nil, err
	}
	if err := s.walk(rootfd, ""); err != nil {
		return nil, err
	}
	walked := time.Since(start)
	hashed, err := s.hashAll()
	if err != nil {
		return nil, err
	}
	m := &Manifest{Kind: KindTree, Entries: s.entries}
	s.linkHardLinks(m)
	// Collect the cache before sorting: stats is parallel to the walk order.
	var fresh *statCache
	if opts.StatCachePath != "" {
		fresh = s.freshCache(start)
	}
	sortManifest(m)
	if err := validate(m); err != nil {
		return nil, fmt.Errorf("scan %s: %w", root, err)
	}
	if fresh != nil && !s.cache.sameAs(fresh) {
		if err := fresh.save(opts.StatCachePath); err != nil {
			return nil, fmt.Errorf("scan %s: %w", root, err)
		}
	}
	log.Debug("scanned directory", "root", root, "entries", len(m.Entries), "cache_hits", s.hits,
		"hashed_files", len(s.toHash), "hashed_bytes", hashed, "walk", walked, "total", time.Since(start))
	if len(s.other) > 0 {
		log.Warn("skipped sockets and entries of unknown type while scanning", "root", root, "count", len(s.other), "first", s.other[0])
	}
	slices.SortFunc(s.other, comparePaths)
	slices.SortFunc(s.flagged, comparePaths)
	return &Scan{Manifest: m, Other: s.other, Flagged: s.flagged}, nil
}

func (s *scanner) addRoot() error {
	st, err := statxAt(s.rootfd, "", unix.AT_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("scan %s: stat root: %w", s.root, err)
	}
	s.rootSt = st
	if st.attrs&flaggedAttrs != 0 {
		s.flagged = append(s.flagged, RootPath)
	}
	xs, err := fdXattrs(s.rootfd)
	if err != nil {
		return fmt.Errorf("scan %s: root directory: %w", s.root, err)
	}
	s.entries = append(s.entries, Entry{Path: RootPath, Type: TypeDirectory, Mode: st.mode & 0o7777,
		UID: st.uid, GID: st.gid, MtimeNs: st.mtimeNs, Xattrs: xs})
	s.stats = append(s.stats, fileStat{})
	return nil
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// walk adds the entries of the directory open as dirfd (at path dir, "" for
// the root) and recurses into its subdirectories.
func (s *scanner) walk(dirfd int, dir string) error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	// Read the names through a duplicate so closing the *os.File leaves dirfd open.
	dup, err := unix.Dup(dirfd)
	if err != nil {
		return fmt.Errorf("scan %s: %w", join(s.root, dir), err)
	}
	f := os.NewFile(uintptr(dup), join(s.root, dir))
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("scan %s: read directory: %w", join(s.root, dir), err)
	}
	slices.Sort(names)
	var subdirs []string
	for _, name := range names {
		if dir == "" && s.exclude[name] {
			continue
		}
		p := join(dir, name)
		isDir, err := s.addEntry(dirfd, name, p)
		if err != nil {
			return fmt.Errorf("scan %s: %w", join(s.root, p), err)
		}
		if isDir {
			subdirs = append(subdirs, name)
		}
	}
	for _, name := range subdirs {
		p := join(dir, name)
		fd, err := openBeneath(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY)
		if errors.Is(err, unix.EXDEV) {
			err = errOtherMount
		}
		if err != nil {
			return fmt.Errorf("scan %s: open directory: %w", join(s.root, p), err)
		}
		err = s.walk(fd, p)
		unix.Close(fd)
		if err != nil {
			return err
		}
	}
	return nil
}

// addEntry records one directory entry; it reports whether it is a directory.
func (s *scanner) addEntry(dirfd int, name, p string) (bool, error) {
	st, err := statxAt(dirfd, name, 0)
	if err != nil {
		return false, fmt.Errorf("stat: %w", err)
	}
	if err := s.sameMount(&st); err != nil {
		return false, err
	}
	if st.attrs&flaggedAttrs != 0 {
		s.flagged = append(s.flagged, p)
	}
	idx := len(s.entries)
	if st.kind() != unix.S_IFDIR && st.nlink > 1 {
		key := inodeKey{st.dev, st.ino}
		if first, ok := s.inodes[key]; ok {
			// Another name of an inode already seen: record it as a hard link
			// now; linkHardLinks picks the canonical first name later.
			s.entries = append(s.entries, Entry{Path: p, Type: TypeHardLink, Link: s.entries[first].Path})
			s.stats = append(s.stats, fileStat{})
			return false, nil
		}
		s.inodes[key] = idx
	}
	fs := statOfEntry(&st)
	// A cache hit (same inode, size, mtime and ctime) vouches for the digest,
	// symlink target and xattrs: changing any of them changes the ctime.
	cached, hit := s.cache.lookup(p, fs)
	if hit {
		s.hits++
	}
	e := Entry{Path: p, Mode: st.mode & 0o7777, UID: st.uid, GID: st.gid, MtimeNs: st.mtimeNs}
	switch st.kind() {
	case unix.S_IFDIR:
		e.Type = TypeDirectory
	case unix.S_IFREG:
		e.Type = TypeRegular
		e.Size = st.size
		if hit {
			e.Digest = cached.Digest
		} else {
			s.toHash = append(s.toHash, idx)
		}
	case unix.S_IFLNK:
		e.Type = TypeSymlink
		if hit {
			e.Link = cached.Link
			break
		}
		buf := make([]byte, max(st.size+1, 256))
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return false, fmt.Errorf("read symlink: %w", err)
		}
		if n >= len(buf) {
			return false, fmt.Errorf("symlink target changed while reading it")
		}
		e.Link = string(buf[:n])
	case unix.S_IFCHR:
		e.Type = TypeCharDevice
		e.DevMajor, e.DevMinor = unix.Major(st.rdev), unix.Minor(st.rdev)
	case unix.S_IFBLK:
		e.Type = TypeBlockDevice
		e.DevMajor, e.DevMinor = unix.Major(st.rdev), unix.Minor(st.rdev)
	case unix.S_IFIFO:
		e.Type = TypeFIFO
	default:
		// Sockets (as tar does) and types the manifest has no name for are
		// not content; the caller learns of them (Scan.Other).
		s.other = append(s.other, p)
		s.log.Debug("skipping entry the manifest cannot describe", "path", p, "type", fmt.Sprintf("%#o", st.kind()))
		if key := (inodeKey{st.dev, st.ino}); s.inodes[key] == idx {
			delete(s.inodes, key) // no entry at idx after all
		}
		return false, nil
	}
	if hit {
		e.Xattrs = cached.Xattrs
	} else {
		xs, err := entryXattrs(dirfd, name)
		if err != nil {
			return false, err
		}
		e.Xattrs = xs
	}
	s.entries = append(s.entries, e)
	s.stats = append(s.stats, fs)
	return e.Type == TypeDirectory, nil
}

// hashAll hashes the files the cache did not know, Workers at a time.
func (s *scanner) hashAll() (int64, error) {
	workers := s.opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var (
		next   atomic.Int64
		total  atomic.Int64
		wg     sync.WaitGroup
		mu     sync.Mutex
		first  error
		failed atomic.Bool
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1<<20)
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= len(s.toHash) {
					return
				}
				e := &s.entries[s.toHash[i]]
				d, err := s.hashFile(e.Path, s.stats[s.toHash[i]], buf)
				if err == nil {
					err = s.ctx.Err()
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("scan %s: %w", join(s.root, e.Path), err)
					}
					mu.Unlock()
					failed.Store(true)
					return
				}
				e.Digest = d
				total.Add(e.Size)
			}
		}()
	}
	wg.Wait()
	return total.Load(), first
}

// openBeneath opens path relative to dirfd without following any symlink,
// without leaving dirfd's tree and without crossing into another mount
// (EXDEV), so that nothing outside the tree's own file system is read.
func openBeneath(dirfd int, path string, flags int) (int, error) {
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

func (s *scanner) hashFile(path string, want fileStat, buf []byte) (objects.Digest, error) {
	var d objects.Digest
	fd, err := openBeneath(s.rootfd, path, unix.O_RDONLY|unix.O_NOATIME)
	if errors.Is(err, unix.EPERM) {
		fd, err = openBeneath(s.rootfd, path, unix.O_RDONLY)
	}
	if err != nil {
		return d, fmt.Errorf("open: %w", err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, f, buf)
	if err != nil {
		return d, fmt.Errorf("read: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return d, fmt.Errorf("stat: %w", err)
	}
	if got := statOf(&st); got != want || n != want.Size {
		return d, fmt.Errorf("file changed while it was being scanned")
	}
	h.Sum(d[:0])
	return d, nil
}

// linkHardLinks makes the canonically first name of each multiply-linked
// inode carry its metadata and every other name a hard link to it. During
// the walk the first name met in walk order was the primary.
func (s *scanner) linkHardLinks(m *Manifest) {
	if len(s.inodes) == 0 {
		return
	}
	groups := map[string][]int{} // walk-order primary path -> entry indexes
	for i := range m.Entries {
		if m.Entries[i].Type == TypeHardLink {
			groups[m.Entries[i].Link] = append(groups[m.Entries[i].Link], i)
		}
	}
	byPath := make(map[string]int, len(s.inodes))
	for _, idx := range s.inodes {
		byPath[m.Entries[idx].Path] = idx
	}
	for primary, links := range groups {
		pi := byPath[primary]
		best := pi
		for _, li := range links {
			if comparePaths(m.Entries[li].Path, m.Entries[best].Path) < 0 {
				best = li
			}
		}
		if best != pi {
			// Swap roles: the canonical first name takes the inode's data.
			bestPath := m.Entries[best].Path
			m.Entries[best] = m.Entries[pi]
			m.Entries[best].Path = bestPath
			s.stats[best], s.stats[pi] = s.stats[pi], s.stats[best]
			m.Entries[pi] = Entry{Path: primary, Type: TypeHardLink}
		}
		target := m.Entries[best].Path
		if best != pi {
			m.Entries[pi].Link = target
		}
		for _, li := range links {
			if li != best {
				m.Entries[li].Link = target
			}
		}
	}
}
