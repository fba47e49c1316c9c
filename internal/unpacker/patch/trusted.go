package patch

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// errNotAsRecorded is wrapped by the reasons the trusted fast path gives up:
// the root does not hold what Options.Current says at a path the patch uses.
var errNotAsRecorded = errors.New("not as the current manifest records it")

// trustCurrent takes Options.Current as the root's content instead of
// scanning the whole tree: the diff is computed against it and the root
// directory checked; it returns the checks of every entry the patch will
// change, delete, read content from or link to, every path it will create
// and every directory whose entries change, which must pass before the
// tree is changed (they run while the objects are fetched). An error says
// why Current cannot be trusted (the caller then scans the tree). Nothing
// is modified.
func (p *plan) trustCurrent() (checks func() error, err error) {
	cur := p.opts.Current
	if err := cur.Validate(); err != nil {
		return nil, fmt.Errorf("current manifest is invalid: %w", err)
	}
	if cur.Kind != manifest.KindTree {
		return nil, fmt.Errorf("current manifest is a raw image, not a file tree")
	}
	if cur.Lookup(StagingDir) >= 0 {
		return nil, fmt.Errorf("current manifest names the staging directory %q", StagingDir)
	}
	p.cur, p.other, p.flagged = cur, nil, nil
	p.nlinks = countLinks(cur)
	p.diff()
	// The root first and now: Apply creates the staging directory in it
	// before the other checks are done.
	if err := p.checkEntry(p.t, manifest.RootPath); err != nil {
		return nil, err
	}
	paths, absent := p.touchedPaths()
	return func() error {
		if err := p.checkParallel(paths, absent); err != nil {
			return err
		}
		// A stashed file becomes the object by a link, unread: its content
		// is verified here (copies are verified as they are made).
		for _, s := range p.stashes {
			if err := p.verifyContent(s.path, s.digest); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

// touchedPaths lists the current paths the plan touches (except the root)
// and the paths it creates where Current has nothing (see trustCurrent).
func (p *plan) touchedPaths() (paths, absent []string) {
	cur, want := p.cur, p.want
	deleted := make(map[string]bool, len(p.deletes))
	check := map[string]bool{} // current paths whose state must be as recorded
	dirs := map[string]bool{}  // directories whose entries change
	for _, ci := range p.deletes {
		c := &cur.Entries[ci]
		deleted[c.Path] = true
		check[c.Path] = true
		dir, _ := splitPath(c.Path)
		dirs[dir] = true
	}
	for i := range want.Entries {
		w, a := &want.Entries[i], &p.acts[i]
		switch a.kind {
		case actSame:
			continue
		case actKeep:
			if a.meta || (isDir(w) && a.cur.MtimeNs != w.MtimeNs) {
				check[w.Path] = true
			}
			continue
		case actLink:
			if cur.Lookup(a.anchor) >= 0 && !deleted[a.anchor] {
				check[a.anchor] = true
			}
		}
		if a.copyFrom != "" {
			check[a.copyFrom] = true
		}
		dir, _ := splitPath(w.Path)
		dirs[dir] = true
		switch {
		case deleted[w.Path]:
			// checked with the deletions
		case cur.Lookup(w.Path) >= 0:
			check[w.Path] = true // replaced by rename
		case cur.Lookup(dir) >= 0 && !deleted[dir]:
			absent = append(absent, w.Path) // else its parent is new too
		}
	}
	for _, s := range p.stashes {
		check[s.path] = true
	}
	for _, m := range p.metas {
		check[m.path] = true
	}
	for d := range dirs {
		if cur.Lookup(d) >= 0 && !deleted[d] {
			check[d] = true
		}
	}
	delete(check, manifest.RootPath) // checked already
	paths = make([]string, 0, len(check))
	for path := range check {
		paths = append(paths, path)
	}
	// Sorted, so that neighbours share directories and inode table blocks.
	slices.Sort(paths)
	slices.Sort(absent)
	return paths, absent
}

// startChecks runs the checks of a trusted plan in the background.
func (p *plan) startChecks(checks func() error) {
	p.checks = make(chan error, 1)
	go func() { p.checks <- checks() }()
}

// awaitChecks waits for the checks of a trusted plan and returns their
// verdict; nil for a plan made from a scan.
func (p *plan) awaitChecks() error {
	if p.checks == nil {
		return nil
	}
	if !p.checksDone {
		p.checkErr = <-p.checks
		p.checksDone = true
	}
	return p.checkErr
}

// checkParallel runs checkEntry on every path of check and makes sure
// every path of absent does not exist, several at a time: on a volume just
// mounted each is a cold inode read, and the reads overlap.
func (p *plan) checkParallel(check, absent []string) error {
	workers := p.opts.Parallel
	if workers <= 0 {
		workers = 8
	}
	type job struct {
		path   string
		absent bool
	}
	jobs := make(chan job)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each worker its own directory descriptors (tree is not
			// safe for concurrent use); the root's is shared, never closed here.
			t := &tree{root: p.t.root, rootfd: p.t.rootfd, dirs: map[string]int{}}
			defer t.forgetAll()
			for j := range jobs {
				if errs[w] != nil {
					continue
				}
				if j.absent {
					errs[w] = checkAbsent(t, j.path)
				} else {
					errs[w] = p.checkEntry(t, j.path)
				}
			}
		}()
	}
	for _, path := range check {
		jobs <- job{path: path}
	}
	for _, path := range absent {
		jobs <- job{path: path, absent: true}
	}
	close(jobs)
	wg.Wait()
	return errors.Join(errs...)
}

// checkAbsent makes sure nothing exists at path.
func checkAbsent(t *tree, path string) error {
	_, err := t.lstat(path)
	switch {
	case err == nil:
		return fmt.Errorf("%s exists: %w (absent)", path, errNotAsRecorded)
	case !errors.Is(err, unix.ENOENT):
		return fmt.Errorf("stat %s: %w", path, err)
	}
	return nil
}

// checkEntry compares what the root holds at path with the current
// manifest's entry: type, permissions, owner, size, mtime, link count,
// symlink length, device numbers, no immutable or append-only flag, and for
// a hard link the inode of the name it links to.
func (p *plan) checkEntry(t *tree, path string) error {
	cur := p.cur
	ci := cur.Lookup(path)
	if ci < 0 {
		return fmt.Errorf("%s: %w (no entry)", path, errNotAsRecorded)
	}
	c := &cur.Entries[ci]
	st, err := statxAt(t, path)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("%s is missing: %w", path, errNotAsRecorded)
		}
		return fmt.Errorf("stat %s: %w", path, err)
	}
	data := c
	if c.Type == manifest.TypeHardLink {
		data = &cur.Entries[cur.Lookup(c.Link)]
		pst, err := statxAt(t, c.Link)
		if err != nil {
			return fmt.Errorf("%s: hard link target %s: %w (%v)", path, c.Link, errNotAsRecorded, err)
		}
		if pst.Ino != st.Ino {
			return fmt.Errorf("%s is not a hard link of %s (inode %d, not %d): %w", path, c.Link, st.Ino, pst.Ino, errNotAsRecorded)
		}
	}
	if d := statDiffers(&st, data, p.nlinks[data.Path]); d != "" {
		return fmt.Errorf("%s: %s: %w", path, d, errNotAsRecorded)
	}
	return nil
}

// statx stats path (never following a symlink, its directory opened
// beneath the root without symlinks or mount crossings).
func statxAt(t *tree, path string) (unix.Statx_t, error) {
	var x unix.Statx_t
	fd, name, err := t.parent(path)
	if err != nil {
		return x, err
	}
	flags := unix.AT_SYMLINK_NOFOLLOW | unix.AT_STATX_SYNC_AS_STAT
	if path == manifest.RootPath {
		name, flags = "", flags|unix.AT_EMPTY_PATH
	}
	for {
		err = unix.Statx(fd, name, flags, unix.STATX_BASIC_STATS, &x)
		if !errors.Is(err, unix.EINTR) {
			return x, err
		}
	}
}

// statDiffers says how st differs from the entry e (the data entry of a
// hard link group, with nlink names), or "".
func statDiffers(st *unix.Statx_t, e *manifest.Entry, nlink int) string {
	kind := map[manifest.Type]uint32{
		manifest.TypeDirectory: unix.S_IFDIR, manifest.TypeRegular: unix.S_IFREG, manifest.TypeSymlink: unix.S_IFLNK,
		manifest.TypeCharDevice: unix.S_IFCHR, manifest.TypeBlockDevice: unix.S_IFBLK, manifest.TypeFIFO: unix.S_IFIFO,
	}[e.Type]
	mode := uint32(st.Mode)
	mtime := st.Mtime.Sec*1e9 + int64(st.Mtime.Nsec)
	switch {
	case mode&unix.S_IFMT != kind:
		return fmt.Sprintf("type %#o, recorded %s", mode&unix.S_IFMT, e.Type)
	case e.Type != manifest.TypeSymlink && mode&0o7777 != e.Mode:
		return fmt.Sprintf("mode %#o, recorded %#o", mode&0o7777, e.Mode)
	case st.Uid != e.UID || st.Gid != e.GID:
		return fmt.Sprintf("owner %d:%d, recorded %d:%d", st.Uid, st.Gid, e.UID, e.GID)
	case mtime != e.MtimeNs:
		return fmt.Sprintf("mtime %d, recorded %d", mtime, e.MtimeNs)
	case e.Type == manifest.TypeRegular && int64(st.Size) != e.Size:
		return fmt.Sprintf("size %d, recorded %d", st.Size, e.Size)
	case e.Type == manifest.TypeSymlink && int64(st.Size) != int64(len(e.Link)):
		return fmt.Sprintf("symlink target of %d bytes, recorded %d", st.Size, len(e.Link))
	case (e.Type == manifest.TypeCharDevice || e.Type == manifest.TypeBlockDevice) &&
		(st.Rdev_major != e.DevMajor || st.Rdev_minor != e.DevMinor):
		return fmt.Sprintf("device %d:%d, recorded %d:%d", st.Rdev_major, st.Rdev_minor, e.DevMajor, e.DevMinor)
	case e.Type != manifest.TypeDirectory && int(st.Nlink) != nlink:
		return fmt.Sprintf("%d links, recorded %d", st.Nlink, nlink)
	case st.Attributes&st.Attributes_mask&(unix.STATX_ATTR_IMMUTABLE|unix.STATX_ATTR_APPEND) != 0:
		return "immutable or append-only inode flag set"
	}
	return ""
}

// countLinks returns, per non-directory entry of m that hard links may
// name, how many names its inode has.
func countLinks(m *manifest.Manifest) map[string]int {
	n := make(map[string]int, len(m.Entries))
	for i := range m.Entries {
		e := &m.Entries[i]
		switch e.Type {
		case manifest.TypeDirectory:
		case manifest.TypeHardLink:
			n[e.Link]++
		default:
			n[e.Path]++
		}
	}
	return n
}

// verifyContent hashes the regular file at path and compares it with d.
func (p *plan) verifyContent(path string, d objects.Digest) error {
	ci := p.cur.Lookup(path)
	if ci < 0 {
		return fmt.Errorf("%s: %w (no entry)", path, errNotAsRecorded)
	}
	fd, err := p.t.openBeneath(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOATIME)
	if errors.Is(err, unix.EPERM) {
		fd, err = p.t.openBeneath(path, unix.O_RDONLY|unix.O_NONBLOCK)
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", path, explainXDEV(err))
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if err := objects.Copy(io.Discard, f, objects.Want{Digest: d, Size: p.cur.Entries[ci].Size}); err != nil {
		return fmt.Errorf("content of %s: %w: %w", path, errNotAsRecorded, err)
	}
	return nil
}
