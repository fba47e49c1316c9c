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
// symlink, never leaving the root's mount), several directories at a time,
// collecting entries; regular files missing from the stat cache are hashed
// afterwards by a pool of workers.
type scanner struct {
	ctx     context.Context
	root    string
	rootfd  int
	rootSt  entryStat // the root's device and mount: no entry may be elsewhere
	opts    DirOptions
	log     *slog.Logger
	exclude map[string]bool
	// cache is loaded while the walk starts (the first directories wait on
	// the device anyway); cacheReady is closed once it is.
	cache      *statCache
	cacheReady chan struct{}
	// entries and stats are parallel, in canonical order once the walk is
	// done (stats is used for regular files and symlinks only).
	entries []Entry
	stats   []fileStat
	toHash  []int // indexes of entries to hash
	hits    atomic.Int64

	mu sync.Mutex // guards found, other and flagged during the walk
	// found collects what the walkers saw, in no particular order.
	found []found
	// other and flagged are the Scan's Other and Flagged.
	other   []string
	flagged []string
}

// found is one entry as a walker saw it, before hard links are resolved.
type found struct {
	e  Entry
	st fileStat
	// key identifies the inode of a non-directory with several names.
	key   inodeKey
	multi bool
	// hash: a regular file the stat cache did not know.
	hash bool
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

// directorySupport: Linux has every call the scan needs (statx, openat2,
// l*xattr) and reports everything a manifest records.
func directorySupport() error { return nil }

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
	s := &scanner{ctx: ctx, root: root, rootfd: rootfd, opts: opts, log: log, exclude: map[string]bool{}, cacheReady: make(chan struct{})}
	for _, n := range opts.Exclude {
		s.exclude[n] = true
	}
	if opts.StatCachePath != "" {
		go func() { s.cache = loadStatCache(opts.StatCachePath, log); close(s.cacheReady) }()
	} else {
		close(s.cacheReady)
	}
	if err := s.addRoot(); err != nil {
		return nil, err
	}
	err = s.walkAll()
	<-s.cacheReady
	if err != nil {
		return nil, err
	}
	s.assemble()
	walked := time.Since(start)
	hashed, err := s.hashAll()
	if err != nil {
		return nil, err
	}
	m := &Manifest{Kind: KindTree, Entries: s.entries}
	var fresh *statCache
	if opts.StatCachePath != "" && !opts.KeepStatCache {
		fresh = s.freshCache(start)
	}
	if err := validate(m); err != nil {
		return nil, fmt.Errorf("scan %s: %w", root, err)
	}
	if fresh != nil && !s.cache.sameAs(fresh) {
		if err := fresh.save(opts.StatCachePath); err != nil {
			return nil, fmt.Errorf("scan %s: %w", root, err)
		}
	}
	log.Debug("scanned directory", "root", root, "entries", len(m.Entries), "cache_hits", s.hits.Load(),
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

// walkers is how many directories are read at once: the scan of a volume
// after a mount waits mostly on inode reads, which overlap well.
const walkers = 8

// walkAll reads every directory below the root with a pool of walkers.
func (s *scanner) walkAll() error {
	var (
		mu       sync.Mutex
		cond     = sync.NewCond(&mu)
		queue    = []string{""} // directories to read ("" is the root)
		active   int
		firstErr error
		wg       sync.WaitGroup
	)
	for range walkers {
		wg.Go(func() {
			for {
				mu.Lock()
				for len(queue) == 0 && active > 0 && firstErr == nil {
					cond.Wait()
				}
				if firstErr != nil || len(queue) == 0 {
					cond.Broadcast()
					mu.Unlock()
					return
				}
				// Last in, first out: depth first, so the queue stays short.
				dir := queue[len(queue)-1]
				queue = queue[:len(queue)-1]
				active++
				mu.Unlock()
				subdirs, err := s.readDir(dir)
				mu.Lock()
				active--
				if err != nil && firstErr == nil {
					firstErr = err
				}
				queue = append(queue, subdirs...)
				cond.Broadcast()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return firstErr
}

// readDir records the entries of directory dir ("" for the root) and
// returns the paths of its subdirectories.
func (s *scanner) readDir(dir string) ([]string, error) {
	if err := s.ctx.Err(); err != nil {
		return nil, err
	}
	var (
		fd  int
		err error
	)
	if dir == "" {
		fd, err = unix.Dup(s.rootfd)
	} else {
		fd, err = openBeneath(s.rootfd, dir, unix.O_RDONLY|unix.O_DIRECTORY)
		if errors.Is(err, unix.EXDEV) {
			err = errOtherMount
		}
	}
	if err != nil {
		return nil, fmt.Errorf("scan %s: open directory: %w", join(s.root, dir), err)
	}
	f := os.NewFile(uintptr(fd), join(s.root, dir))
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("scan %s: read directory: %w", join(s.root, dir), err)
	}
	var (
		subdirs        []string
		out            = make([]found, 0, len(names))
		other, flagged []string
	)
	for _, name := range names {
		if dir == "" && s.exclude[name] {
			continue
		}
		p := join(dir, name)
		fe, kind, flags, err := s.readEntry(fd, name, p)
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", join(s.root, p), err)
		}
		if flags {
			flagged = append(flagged, p)
		}
		switch kind {
		case 0:
			other = append(other, p)
		case unix.S_IFDIR:
			subdirs = append(subdirs, p)
			fallthrough
		default:
			out = append(out, fe)
		}
	}
	s.mu.Lock()
	s.found = append(s.found, out...)
	s.other = append(s.other, other...)
	s.flagged = append(s.flagged, flagged...)
	s.mu.Unlock()
	return subdirs, nil
}

// readEntry reads one directory entry. kind is its file type, 0 for an
// entry the manifest cannot describe (socket, unknown type), which is
// reported but not recorded; flagged says it is immutable or append-only.
func (s *scanner) readEntry(dirfd int, name, p string) (fe found, kind uint32, flagged bool, err error) {
	st, err := statxAt(dirfd, name, 0)
	if err != nil {
		return fe, 0, false, fmt.Errorf("stat: %w", err)
	}
	if err := s.sameMount(&st); err != nil {
		return fe, 0, false, err
	}
	flagged = st.attrs&flaggedAttrs != 0
	kind = st.kind()
	fs := statOfEntry(&st)
	fe = found{st: fs, key: inodeKey{st.dev, st.ino}, multi: kind != unix.S_IFDIR && st.nlink > 1}
	// A cache hit (same inode, size, mtime and ctime) vouches for the digest,
	// symlink target and xattrs: changing any of them changes the ctime.
	<-s.cacheReady
	cached, hit := s.cache.lookup(p, fs)
	if hit {
		s.hits.Add(1)
	}
	e := Entry{Path: p, Mode: st.mode & 0o7777, UID: st.uid, GID: st.gid, MtimeNs: st.mtimeNs}
	switch kind {
	case unix.S_IFDIR:
		e.Type = TypeDirectory
	case unix.S_IFREG:
		e.Type = TypeRegular
		e.Size = st.size
		// Fewer bytes allocated than the size: there are holes (tar's
		// test too). Blocks come with every stat, no cache needed.
		e.Sparse = st.size > 0 && st.blocks*512 < st.size
		if hit {
			e.Digest = cached.Digest
		} else {
			fe.hash = true
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
			return fe, 0, false, fmt.Errorf("read symlink: %w", err)
		}
		if n >= len(buf) {
			return fe, 0, false, fmt.Errorf("symlink target changed while reading it")
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
		s.log.Debug("skipping entry the manifest cannot describe", "path", p, "type", fmt.Sprintf("%#o", kind))
		return fe, 0, flagged, nil
	}
	if hit {
		e.Xattrs = cached.Xattrs
	} else {
		xs, err := entryXattrs(dirfd, name)
		if err != nil {
			return fe, 0, false, err
		}
		e.Xattrs = xs
	}
	fe.e = e
	return fe, kind, flagged, nil
}

// assemble puts what the walkers found in canonical order after the root
// and makes every name of a multiply-linked inode but the canonically
// first a hard link to it.
func (s *scanner) assemble() {
	slices.SortFunc(s.found, func(a, b found) int { return comparePaths(a.e.Path, b.e.Path) })
	primary := map[inodeKey]int{}
	for _, f := range s.found {
		idx := len(s.entries)
		if f.multi {
			if first, ok := primary[f.key]; ok {
				s.entries = append(s.entries, Entry{Path: f.e.Path, Type: TypeHardLink, Link: s.entries[first].Path})
				s.stats = append(s.stats, fileStat{})
				continue
			}
			primary[f.key] = idx
		}
		if f.hash {
			s.toHash = append(s.toHash, idx)
		}
		s.entries = append(s.entries, f.e)
		s.stats = append(s.stats, f.st)
	}
	s.found = nil
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
