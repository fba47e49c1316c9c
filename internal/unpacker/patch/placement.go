package patch

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// Deterministic placement.
//
// The same revision unpacked onto two equal from-scratch volumes must give
// two equal file systems (the promise of one AMI identical in every
// target), whatever the order its objects arrive in. ext4 numbers an inode
// and places a block by what was allocated before it, so every allocation
// is made by one goroutine, in the order of the manifest, and objects
// fetched concurrently only fill space allocated for them beforehand:
//
//   - reserve creates each missing object's staging file (its inode) under
//     its digest and allocates its blocks (fallocate) in the order of
//     Missing, before the fetch starts; Put then writes every byte into
//     them (zeros too: a run left unwritten would split the extent when
//     the data around it is written back, and an extent tree block
//     allocated by writeback lands wherever the flusher happens to be);
//   - an object that a Sparse entry uses keeps its holes, so it cannot be
//     allocated before its content is known: such objects are fetched one
//     at a time after the others (there are few: a tree rarely has sparse
//     files), each data run allocated just before it is written;
//   - copies of content made while creating entries are allocated the
//     same way before they are written (whole for a file without holes,
//     run by run for a sparse one).
//
// Delayed allocation would otherwise place the blocks of whatever the
// flusher writes back first; with every block allocated by fallocate,
// writeback only converts unwritten extents. The daemon also turns off the
// per-CPU group preallocations of small files on its volumes
// (mb_group_prealloc 0), as a goroutine may move between CPUs.

// reserve creates (in order) a staging file named by the digest of each of
// ws with all its blocks allocated, for Put to fill.
func (s *staging) reserve(ws []objects.Want) error {
	for _, w := range ws {
		if s.has(w.Digest) || s.isReserved(w.Digest) {
			continue
		}
		name := w.Digest.String()
		fd, err := unix.Openat(s.fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if errors.Is(err, unix.EEXIST) {
			// Left by an earlier attempt of this patch without verifying:
			// its content is not trusted, its blocks are reused.
			fd, err = unix.Openat(s.fd, name, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
		if err != nil {
			return fmt.Errorf("reserve staging file for object %s: %w", w.Digest, err)
		}
		if w.Size > 0 {
			err = unix.Fallocate(fd, 0, 0, w.Size)
			if errors.Is(err, unix.EOPNOTSUPP) {
				err = unix.Ftruncate(fd, w.Size) // no allocation to fix, then
			}
		}
		if cerr := unix.Close(fd); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			unix.Unlinkat(s.fd, name, 0)
			return fmt.Errorf("reserve %d bytes for object %s: %w", w.Size, w.Digest, err)
		}
		s.mu.Lock()
		s.reserved[w.Digest] = true
		s.mu.Unlock()
	}
	return nil
}

func (s *staging) isReserved(d objects.Digest) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reserved[d]
}

// dropReservations deletes the reserved files that were never filled (a
// fetch that broke off), so that the staging directory holds only
// verified objects.
func (s *staging) dropReservations() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for d := range s.reserved {
		unix.Unlinkat(s.fd, d.String(), 0)
		delete(s.reserved, d)
	}
}

// fill writes object want, read from r, into its reserved file, every
// byte, and verifies it.
func (s *staging) fill(want objects.Want, r interface{ Read([]byte) (int, error) }) error {
	name := want.Digest.String()
	fd, err := unix.Openat(s.fd, name, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("stage object %s: open its reserved file: %w", want.Digest, err)
	}
	err = s.copyInto(&sparseWriter{fd: fd, dense: true}, r, want)
	if err != nil {
		return fmt.Errorf("stage object %s: %w", want.Digest, err)
	}
	s.mu.Lock()
	delete(s.reserved, want.Digest)
	s.objects[want.Digest] = true
	s.mu.Unlock()
	return nil
}

// allocateRun allocates the blocks of [off, off+n) of fd without changing
// its size, so that a write there allocates nothing later (see
// Deterministic placement); file systems without fallocate allocate at
// writeback as before.
func allocateRun(fd int, off, n int64) error {
	err := unix.Fallocate(fd, unix.FALLOC_FL_KEEP_SIZE, off, n)
	if err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("allocate %d bytes at offset %d: %w", n, off, err)
	}
	return nil
}

// adoptStaging makes the staging directory the new directory w, the first
// the patch creates, instead of making one, when the staging directory holds
// nothing but what this patch staged (no leftovers of an earlier patch, no
// stashed files): every staged object is renamed into place from there, so
// it ends up holding nothing else but w's own entries. A removed staging
// directory would leave behind, on the device, an inode with the clock's
// times and a random generation, and blocks whose content and checksums
// depend on when the journal last wrote them; an adopted one stays in the
// tree, where Normalize resets it like any other directory. The price: w's
// directory keeps the blocks the staged names took (ext4 never shrinks a
// directory), some 80 bytes per object fetched.
func (p *plan) adoptStaging(w *manifest.Entry) (bool, error) {
	if p.stage.fd < 0 || p.stage.adopted || p.leftovers > 0 || len(p.stashes) > 0 {
		return false, nil
	}
	fd, name, err := p.t.parent(w.Path)
	if err != nil {
		return false, err
	}
	if err := unix.Renameat2(p.t.rootfd, StagingDir, fd, name, unix.RENAME_NOREPLACE); err != nil {
		return false, fmt.Errorf("make the staging directory the new directory: %w", err)
	}
	p.stage.adopted = true
	return true, nil
}
