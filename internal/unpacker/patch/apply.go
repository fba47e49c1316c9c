package patch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// apply runs the phases of a tree patch: stash, fetch, delete, create, set
// metadata, remove staging, directory mtimes, sync.
func (p *plan) apply(ctx context.Context, src objects.Source) (res Result, err error) {
	if p.used {
		return res, fmt.Errorf("patch %s: plan already applied", p.t.root)
	}
	p.used = true
	defer p.release()
	treeChanged := false
	rootMtime := p.cur.Entries[0].MtimeNs // as found
	defer func() {
		// A failure before the tree changed leaves the root as it was found
		// (unless the caller wants the verified objects kept for a retry).
		if err != nil && !treeChanged && !p.opts.KeepStaged {
			if rerr := p.stage.remove(); rerr != nil {
				p.log.Warn("could not remove the staging directory", "root", p.t.root, "err", rerr)
			} else if rerr := setMtime(p.t.rootfd, ".", rootMtime); rerr != nil {
				p.log.Warn("could not restore the root's mtime", "root", p.t.root, "err", rerr)
			}
		}
	}()
	defer func() { res.Duration = time.Since(p.start) }()
	root := p.t.root
	touched := map[string]bool{} // directories whose entries changed
	if err := p.prepareStaging(touched); err != nil {
		return res, err
	}
	fetchStart := time.Now()
	if p.trusted {
		// The checks of the entries the patch touches run while the
		// objects arrive; nothing in the tree changes before they passed.
		if err := p.fetch(ctx, src, &res); err != nil {
			return res, err
		}
		if err := p.awaitChecks(); err != nil {
			p.distrust(err)
			if err := p.scanAndDiff(ctx); err != nil {
				return res, fmt.Errorf("patch %s: %w", root, err)
			}
			if err := p.prepareStaging(touched); err != nil {
				return res, err
			}
		}
	}
	if err := p.stashAll(&res); err != nil {
		return res, err
	}
	// All objects, or those a scan after all found missing too.
	if err := p.fetch(ctx, src, &res); err != nil {
		return res, err
	}
	fetchTime := time.Since(fetchStart)
	if err := p.hook(PointFetched, ""); err != nil {
		return res, err
	}

	var totalBytes int64
	for i := range p.acts {
		if p.acts[i].kind == actCreate {
			totalBytes += p.want.Entries[i].Size
		}
	}
	p.prog.phase(PhaseUpdating, len(p.other)+len(p.deletes)+len(p.want.Entries)+len(p.metas), totalBytes)

	treeChanged = true
	updateStart := time.Now()
	if err := p.deleteOther(touched); err != nil {
		return res, err
	}
	if err := p.deleteAll(ctx, touched, &res); err != nil {
		return res, err
	}
	if err := p.createAll(ctx, touched, &res); err != nil {
		return res, err
	}
	if err := p.metadataAll(ctx); err != nil {
		return res, err
	}
	if err := p.stage.remove(); err != nil {
		return res, fmt.Errorf("patch %s: %w", root, err)
	}
	if err := p.dirMtimes(touched); err != nil {
		return res, err
	}

	updateTime := time.Since(updateStart)
	syncStart := time.Now()
	p.prog.phase(PhaseSyncing, 0, 0)
	// The tree is final: record its stat cache while the file system syncs
	// (stat'ing is CPU work, syncing waits for the device).
	cacheDone := make(chan error, 1)
	if p.opts.StatCachePath != "" && !p.trusted {
		go func() { cacheDone <- manifest.WriteStatCache(root, p.want, p.opts.StatCachePath) }()
	} else {
		cacheDone <- nil
	}
	// One syncfs makes everything durable at once; per-file fsync would
	// cost a journal commit each.
	syncErr := unix.Syncfs(p.t.rootfd)
	if err := <-cacheDone; err != nil {
		// A stale cache only costs a slower scan next time.
		p.log.Warn("could not refresh the stat cache", "root", root, "err", err)
	}
	if syncErr != nil {
		return res, fmt.Errorf("patch %s: sync file system: %w", root, syncErr)
	}
	syncTime := time.Since(syncStart)
	if err := p.hook(PointSynced, ""); err != nil {
		return res, err
	}
	for i := range p.acts {
		switch a := &p.acts[i]; {
		case a.kind == actSame || (a.kind == actKeep && !a.meta):
			res.Unchanged++
		case a.existed:
			res.Updated++
		default:
			res.Created++
		}
	}
	res.Deleted = len(p.other) + len(p.deletes)
	res.TrustedCurrent, res.CurrentNotTrusted = p.trusted, p.fallback
	res.BytesWritten += p.stage.written.Load()
	p.prog.phase(PhaseDone, 0, 0)
	p.log.Info("patched", "root", root, "created", res.Created, "updated", res.Updated,
		"deleted", res.Deleted, "unchanged", res.Unchanged, "bytes_written", res.BytesWritten,
		"objects_fetched", res.ObjectsFetched, "bytes_fetched", res.BytesFetched,
		"objects_reused", res.ObjectsReused, "trusted_current", res.TrustedCurrent,
		"prepare", p.prepared.Sub(p.start), "fetch", fetchTime, "update", updateTime, "sync", syncTime, "elapsed", time.Since(p.start))
	return res, nil
}

// prepareStaging clears inode flags the scan found (first, as nothing
// below could change a flagged entry or its directory; the exact revision
// has no inode flags anyway) and creates the staging directory when the
// plan needs it.
func (p *plan) prepareStaging(touched map[string]bool) error {
	if err := p.clearFlags(); err != nil {
		return err
	}
	p.flagged = nil
	needStaging := len(p.stashes) > 0 || len(p.missing) > 0 || p.leftovers > 0
	for i := range p.acts {
		if k := p.acts[i].kind; k == actCreate || k == actLink {
			needStaging = true
		}
	}
	if needStaging {
		if err := p.stage.ensure(); err != nil {
			return fmt.Errorf("patch %s: %w", p.t.root, err)
		}
		touched[manifest.RootPath] = true
	}
	return nil
}

// stashAll keeps the content of files that are going away but needed
// elsewhere, as staged objects.
func (p *plan) stashAll(res *Result) error {
	for _, s := range p.stashes {
		if p.stage.has(s.digest) {
			continue
		}
		if err := p.stage.stash(s.path, s.digest); err != nil {
			return fmt.Errorf("patch %s: %w", p.t.root, err)
		}
		res.ObjectsReused++
		if err := p.hook(PointStaged, s.path); err != nil {
			return err
		}
	}
	return nil
}

// fetch obtains the missing objects from src into staging: those not
// staged yet (a trusted patch that scans after all fetches twice).
func (p *plan) fetch(ctx context.Context, src objects.Source, res *Result) error {
	var missing []objects.Want
	for _, w := range p.missing {
		if !p.stage.has(w.Digest) {
			missing = append(missing, w)
		}
	}
	p.missing = missing
	if len(p.missing) == 0 {
		return nil
	}
	root := p.t.root
	if src == nil {
		return fmt.Errorf("patch %s: %d objects are missing and no source was given", root, len(p.missing))
	}
	var total int64
	for _, w := range p.missing {
		total += w.Size
	}
	p.prog.phase(PhaseFetching, len(p.missing), total)
	p.stage.onPut = func(w objects.Want) {
		p.prog.add(1, w.Size)
	}
	// See Deterministic placement: the objects of files without holes are
	// allocated first, in order, and fetched concurrently; those of sparse
	// files are fetched one at a time after them.
	sparse := p.sparseObjects()
	var dense, holey []objects.Want
	for _, w := range p.missing {
		if sparse[w.Digest] {
			holey = append(holey, w)
		} else {
			dense = append(dense, w)
		}
	}
	if err := p.stage.reserve(dense); err != nil {
		p.stage.dropReservations()
		return fmt.Errorf("patch %s: %w", root, err)
	}
	sink := &stagingSink{p: p}
	batches := [][]objects.Want{dense}
	for _, w := range holey {
		batches = append(batches, []objects.Want{w})
	}
	for _, batch := range batches {
		if len(batch) == 0 {
			continue
		}
		if err := src.Fetch(ctx, batch, sink); err != nil {
			p.stage.dropReservations()
			if herr := sink.firstHookErr(); herr != nil {
				return herr
			}
			return fmt.Errorf("patch %s: fetch %d missing objects: %w", root, len(p.missing), err)
		}
	}
	for _, w := range p.missing {
		if !p.stage.has(w.Digest) {
			return fmt.Errorf("patch %s: the source did not deliver object %s", root, w.Digest)
		}
		res.ObjectsFetched++
		res.BytesFetched += w.Size
	}
	return nil
}

// sparseObjects are the digests of the manifest's sparse files.
func (p *plan) sparseObjects() map[objects.Digest]bool {
	out := map[objects.Digest]bool{}
	for i := range p.want.Entries {
		if e := &p.want.Entries[i]; e.Type == manifest.TypeRegular && e.Sparse {
			out[e.Digest] = true
		}
	}
	return out
}

// stagingSink is the staging directory as the Sink given to the source,
// calling the hook after each object.
type stagingSink struct {
	p       *plan
	mu      sync.Mutex
	hookErr error
}

func (s *stagingSink) firstHookErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hookErr
}

func (s *stagingSink) Put(ctx context.Context, want objects.Want, r io.Reader) error {
	if err := s.p.stage.Put(ctx, want, r); err != nil {
		return err
	}
	if err := s.p.hook(PointStaged, want.Digest.String()); err != nil {
		s.mu.Lock()
		s.hookErr = err
		s.mu.Unlock()
		return err
	}
	return nil
}

// deleteAll removes the current entries the manifest does not keep.
func (p *plan) deleteAll(ctx context.Context, touched map[string]bool, res *Result) error {
	for _, ci := range p.deletes {
		if err := ctx.Err(); err != nil {
			return err
		}
		c := &p.cur.Entries[ci]
		fd, name, err := p.t.parent(c.Path)
		if err != nil {
			return fmt.Errorf("patch %s: delete %s: %w", p.t.root, c.Path, err)
		}
		flags := 0
		if isDir(c) {
			flags = unix.AT_REMOVEDIR
			p.t.forget(c.Path)
		}
		if err := unix.Unlinkat(fd, name, flags); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("patch %s: delete %s %s: %w", p.t.root, c.Type, c.Path, err)
		}
		dir, _ := splitPath(c.Path)
		touched[dir] = true
		p.prog.add(1, 0)
		if err := p.hook(PointDeleted, c.Path); err != nil {
			return err
		}
	}
	return nil
}

// createAll makes directories, new inodes and hard links in canonical order
// (parents before children).
func (p *plan) createAll(ctx context.Context, touched map[string]bool, res *Result) error {
	for i := range p.want.Entries {
		a := &p.acts[i]
		w := &p.want.Entries[i]
		if a.kind == actKeep || a.kind == actSame {
			p.prog.add(1, 0)
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		var err error
		switch a.kind {
		case actMkdir:
			var adopted bool
			if adopted, err = p.adoptStaging(w); err == nil && !adopted {
				err = p.mkdir(w)
			}
		case actCreate:
			err = p.create(w, a, res)
		case actLink:
			err = p.link(w, a)
		}
		if err != nil {
			return fmt.Errorf("patch %s: %s %s: %w", p.t.root, w.Type, w.Path, err)
		}
		dir, _ := splitPath(w.Path)
		touched[dir] = true
		p.prog.add(1, 0)
		if err := p.hook(PointCreated, w.Path); err != nil {
			return err
		}
	}
	return nil
}

func (p *plan) mkdir(w *manifest.Entry) error {
	fd, name, err := p.t.parent(w.Path)
	if err != nil {
		return err
	}
	// Owner, mode and xattrs are set in the metadata pass; 0700 keeps the
	// directory private until then.
	if err := unix.Mkdirat(fd, name, 0o700); err != nil {
		return fmt.Errorf("mkdir: %w", err)
	}
	return nil
}

// create makes the new inode in staging, gives it its metadata and renames
// it into place, replacing whatever non-directory was there.
func (p *plan) create(w *manifest.Entry, a *action, res *Result) error {
	sfd := p.stage.fd
	tmp := p.stage.tmpName()
	switch w.Type {
	case manifest.TypeRegular:
		var err error
		if tmp, err = p.regularContent(w, a, tmp, res); err != nil {
			return err
		}
		if !w.Sparse && w.Size > 0 {
			if err := allocate(sfd, tmp, w.Size); err != nil {
				unix.Unlinkat(sfd, tmp, 0)
				return err
			}
		}
	case manifest.TypeSymlink:
		if err := unix.Symlinkat(w.Link, sfd, tmp); err != nil {
			return fmt.Errorf("symlink: %w", err)
		}
	case manifest.TypeCharDevice, manifest.TypeBlockDevice, manifest.TypeFIFO:
		mode := uint32(unix.S_IFIFO)
		switch w.Type {
		case manifest.TypeCharDevice:
			mode = unix.S_IFCHR
		case manifest.TypeBlockDevice:
			mode = unix.S_IFBLK
		}
		dev := int(unix.Mkdev(w.DevMajor, w.DevMinor))
		if err := unix.Mknodat(sfd, tmp, mode|0o600, dev); err != nil {
			return fmt.Errorf("mknod: %w", err)
		}
	default:
		return fmt.Errorf("cannot create a %s", w.Type)
	}
	if err := setMeta(sfd, tmp, w, nil, true); err != nil {
		unix.Unlinkat(sfd, tmp, 0)
		return err
	}
	return p.moveIntoPlace(tmp, w.Path)
}

// regularContent fills a new regular file in staging and returns its name
// there: the staged object itself for its last user, else a copy.
func (p *plan) regularContent(w *manifest.Entry, a *action, tmp string, res *Result) (string, error) {
	sfd := p.stage.fd
	if w.Size == 0 {
		fd, err := unix.Openat(sfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return "", fmt.Errorf("create: %w", err)
		}
		unix.Close(fd)
		return tmp, nil
	}
	if a.copyFrom == "" {
		name := w.Digest.String()
		p.stagedUses[w.Digest]--
		if p.stagedUses[w.Digest] <= 0 {
			p.stage.forget(w.Digest)
			p.prog.add(0, w.Size)
			return name, nil
		}
		n, err := p.copyFile(sfd, name, tmp, objects.Want{Digest: w.Digest, Size: w.Size}, w.Sparse)
		res.BytesWritten += n
		return tmp, err
	}
	fd, name, err := p.t.parent(a.copyFrom)
	if err != nil {
		return "", err
	}
	n, err := p.copyFile(fd, name, tmp, objects.Want{Digest: w.Digest, Size: w.Size}, w.Sparse)
	res.BytesWritten += n
	return tmp, err
}

// copyFile copies (verifying the digest) a file into a new staging file
// and returns the bytes written: allocated whole first and written in full,
// or, for a sparse file, run by run without its holes (see Deterministic
// placement).
func (p *plan) copyFile(srcDir int, srcName, tmp string, want objects.Want, sparse bool) (int64, error) {
	in, err := openAt(srcDir, srcName, unix.O_RDONLY|unix.O_NOATIME)
	if errors.Is(err, unix.EPERM) {
		in, err = openAt(srcDir, srcName, unix.O_RDONLY) // O_NOATIME needs the owner or CAP_FOWNER
	}
	if err != nil {
		return 0, fmt.Errorf("open content source %s: %w", srcName, err)
	}
	src := os.NewFile(uintptr(in), srcName)
	defer src.Close()
	out, err := unix.Openat(p.stage.fd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("create: %w", err)
	}
	w := &sparseWriter{fd: out, dense: !sparse, allocRuns: sparse}
	if !sparse {
		err = unix.Fallocate(out, 0, 0, want.Size)
		if errors.Is(err, unix.EOPNOTSUPP) {
			err = nil
		}
	}
	if err == nil {
		err = objects.Copy(w, src, want)
	}
	if err == nil {
		err = w.finish()
	}
	if cerr := unix.Close(out); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		unix.Unlinkat(p.stage.fd, tmp, 0)
		return w.written, fmt.Errorf("copy content: %w", err)
	}
	p.prog.add(0, want.Size)
	return w.written, nil
}

// moveIntoPlace renames a staging entry to path.
func (p *plan) moveIntoPlace(tmp, path string) error {
	fd, name, err := p.t.parent(path)
	if err != nil {
		return err
	}
	if err := unix.Renameat(p.stage.fd, tmp, fd, name); err != nil {
		unix.Unlinkat(p.stage.fd, tmp, 0)
		return fmt.Errorf("rename into place: %w", err)
	}
	return nil
}

// link gives the group's inode (named by a.anchor) the name w.Path.
func (p *plan) link(w *manifest.Entry, a *action) error {
	fd, name, err := p.t.parent(a.anchor)
	if err != nil {
		return err
	}
	tmp := p.stage.tmpName()
	if err := unix.Linkat(fd, name, p.stage.fd, tmp, 0); err != nil {
		return fmt.Errorf("hard link to %s: %w", a.anchor, err)
	}
	return p.moveIntoPlace(tmp, w.Path)
}

// metadataAll sets ownership, mode and xattrs of kept inodes and new
// directories; non-directory mtimes too (directory mtimes come last).
func (p *plan) metadataAll(ctx context.Context) error {
	for _, m := range p.metas {
		if err := ctx.Err(); err != nil {
			return err
		}
		fd, name, err := p.t.parent(m.path)
		if err != nil {
			return fmt.Errorf("patch %s: metadata of %s: %w", p.t.root, m.path, err)
		}
		cur := m.cur
		if m.fill {
			if err := allocate(fd, name, m.want.Size); err != nil {
				return fmt.Errorf("patch %s: %s: %w", p.t.root, m.path, err)
			}
			// Allocating may move the times: set the mtime again.
			c := *cur
			c.MtimeNs = m.want.MtimeNs + 1
			cur = &c
		}
		if err := setMeta(fd, name, m.want, cur, true); err != nil {
			return fmt.Errorf("patch %s: metadata of %s %s: %w", p.t.root, m.want.Type, m.path, err)
		}
		p.prog.add(1, 0)
		if err := p.hook(PointMetadata, m.path); err != nil {
			return err
		}
	}
	for i := range p.want.Entries {
		w, a := &p.want.Entries[i], &p.acts[i]
		if !isDir(w) || (a.kind == actKeep && !a.meta) {
			continue
		}
		fd, name, err := p.t.parent(w.Path)
		if err != nil {
			return fmt.Errorf("patch %s: metadata of %s: %w", p.t.root, w.Path, err)
		}
		if err := setMeta(fd, name, w, a.cur, false); err != nil {
			return fmt.Errorf("patch %s: metadata of directory %s: %w", p.t.root, w.Path, err)
		}
		p.prog.add(1, 0)
		if err := p.hook(PointMetadata, w.Path); err != nil {
			return err
		}
	}
	return nil
}

// dirMtimes sets the mtime of every directory that is new, differs, or had
// entries added or removed: after everything else, since any change inside
// a directory moves its mtime.
func (p *plan) dirMtimes(touched map[string]bool) error {
	for i := range p.want.Entries {
		w, a := &p.want.Entries[i], &p.acts[i]
		if !isDir(w) {
			continue
		}
		if a.kind == actKeep && a.cur.MtimeNs == w.MtimeNs && !touched[w.Path] {
			continue
		}
		fd, name, err := p.t.parent(w.Path)
		if err != nil {
			return fmt.Errorf("patch %s: mtime of %s: %w", p.t.root, w.Path, err)
		}
		if err := setMtime(fd, name, w.MtimeNs); err != nil {
			return fmt.Errorf("patch %s: directory %s: %w", p.t.root, w.Path, err)
		}
	}
	return nil
}
