package patch

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// staging is the directory at the root (StagingDir) holding verified objects
// named by their hex digest and temporary files ("tmp-N") of a patch. Being
// on the same file system as the tree, its objects move into place by rename.
type staging struct {
	t  *tree
	fd int // O_PATH descriptor; -1 until the directory exists

	mu      sync.Mutex
	objects map[objects.Digest]bool
	// reserved are the objects whose staging file (named by the digest)
	// reserve created and allocated, not yet filled and verified.
	reserved map[objects.Digest]bool
	// adopted: the directory became a directory of the tree (see
	// adoptStaging); the fd still names it, StagingDir no longer does.
	adopted bool
	seq     atomic.Int64
	// onPut is called after each object fetched into staging.
	onPut func(w objects.Want)
	// written counts bytes written by Put.
	written atomic.Int64
}

func newStaging(t *tree) *staging {
	return &staging{t: t, fd: -1, objects: map[objects.Digest]bool{}, reserved: map[objects.Digest]bool{}}
}

// ensure creates (or opens) the staging directory.
func (s *staging) ensure() error {
	if s.fd >= 0 {
		return nil
	}
	err := unix.Mkdirat(s.t.rootfd, StagingDir, 0o700)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("create staging directory %s/%s: %w", s.t.root, StagingDir, err)
	}
	fd, err := s.t.openBeneath(StagingDir, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("open staging directory %s/%s: %w", s.t.root, StagingDir, explainXDEV(err))
	}
	s.fd = fd
	return nil
}

func (s *staging) close() {
	if s.fd >= 0 {
		unix.Close(s.fd)
		s.fd = -1
	}
}

// exists reports whether a staging directory is present at the root; a
// non-directory in its place (never valid content) is removed.
func (s *staging) exists() (bool, error) {
	var st unix.Stat_t
	err := unix.Fstatat(s.t.rootfd, StagingDir, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat staging directory: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if err := unix.Unlinkat(s.t.rootfd, StagingDir, 0); err != nil {
			return false, fmt.Errorf("remove non-directory %s/%s: %w", s.t.root, StagingDir, err)
		}
		return false, nil
	}
	return true, nil
}

// names lists the staging directory.
func (s *staging) names() ([]string, error) {
	fd, err := s.t.openBeneath(StagingDir, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, fmt.Errorf("list staging directory: %w", explainXDEV(err))
	}
	f := os.NewFile(uintptr(fd), StagingDir)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list staging directory: %w", err)
	}
	return names, nil
}

// loadLeftovers keeps the objects an interrupted patch staged, after
// verifying each (they were not fsynced), and deletes everything else.
func (s *staging) loadLeftovers(ctx context.Context) (int, error) {
	ok, err := s.exists()
	if err != nil || !ok {
		return 0, err
	}
	if err := s.ensure(); err != nil {
		return 0, err
	}
	names, err := s.names()
	if err != nil {
		return 0, err
	}
	kept := 0
	buf := make([]byte, 1<<20)
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return kept, err
		}
		d, perr := objects.ParseDigest(name)
		if perr == nil && s.verify(name, d, buf) {
			s.objects[d] = true
			kept++
			continue
		}
		if err := removeAllAt(s.fd, name); err != nil {
			return kept, fmt.Errorf("clean staging directory: %w", err)
		}
	}
	return kept, nil
}

func (s *staging) verify(name string, d objects.Digest, buf []byte) bool {
	fd, err := openAt(s.fd, name, unix.O_RDONLY)
	if err != nil {
		return false
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var st unix.Stat_t
	// A staged object still linked into the tree (stashed before an
	// interruption) is not free to move or modify: drop it; the scan finds
	// its content in the tree anyway.
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink != 1 {
		return false
	}
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, buf); err != nil {
		return false
	}
	var got objects.Digest
	h.Sum(got[:0])
	return got == d
}

func (s *staging) has(d objects.Digest) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.objects[d]
}

func (s *staging) forget(d objects.Digest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.objects, d)
}

func (s *staging) tmpName() string { return fmt.Sprintf("tmp-%d", s.seq.Add(1)) }

// Put implements objects.Sink: a reserved object fills its file; another
// is written (sparsely, each run allocated first) to a temporary file and
// renamed to its digest only after it verified.
func (s *staging) Put(ctx context.Context, want objects.Want, r io.Reader) error {
	if s.has(want.Digest) {
		return nil
	}
	if s.isReserved(want.Digest) {
		if err := s.fill(want, r); err != nil {
			return err
		}
		if s.onPut != nil {
			s.onPut(want)
		}
		return nil
	}
	tmp := s.tmpName()
	fd, err := unix.Openat(s.fd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("stage object %s: %w", want.Digest, err)
	}
	err = s.copyInto(&sparseWriter{fd: fd, allocRuns: true}, r, want)
	if err == nil {
		err = unix.Renameat(s.fd, tmp, s.fd, want.Digest.String())
	}
	if err != nil {
		unix.Unlinkat(s.fd, tmp, 0)
		return fmt.Errorf("stage object %s: %w", want.Digest, err)
	}
	s.mu.Lock()
	s.objects[want.Digest] = true
	s.mu.Unlock()
	if s.onPut != nil {
		s.onPut(want)
	}
	return nil
}

// stash links an existing file of the tree into staging as object d, so
// its content survives the deletion of its old names at no copying cost.
func (s *staging) stash(path string, d objects.Digest) error {
	if s.has(d) {
		return nil
	}
	fd, name, err := s.t.parent(path)
	if err != nil {
		return err
	}
	err = unix.Linkat(fd, name, s.fd, d.String(), 0)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("keep content of %s as object %s: %w", path, d, err)
	}
	s.mu.Lock()
	s.objects[d] = true
	s.mu.Unlock()
	return nil
}

// remove deletes the staging directory and whatever is left in it.
func (s *staging) remove() error {
	ok, err := s.exists()
	if err != nil || !ok {
		return err
	}
	s.close()
	if err := removeAllAt(s.t.rootfd, StagingDir); err != nil {
		return fmt.Errorf("remove staging directory: %w", err)
	}
	return nil
}

// removeAllAt removes name in dirfd and, for a directory, its contents,
// without following symlinks or crossing into another mount.
func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	fd, err := openAt(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("open %s: %w", name, explainXDEV(err))
	}
	f := os.NewFile(uintptr(fd), name)
	names, err := f.Readdirnames(-1)
	if err != nil {
		f.Close()
		return fmt.Errorf("list %s: %w", name, err)
	}
	for _, n := range names {
		if err := removeAllAt(fd, n); err != nil {
			f.Close()
			return fmt.Errorf("%s/%w", name, err)
		}
	}
	f.Close()
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil {
		return fmt.Errorf("remove directory %s: %w", name, err)
	}
	return nil
}

// copyInto copies object want from r through w into w's file, verifying it,
// closes the file and counts the bytes written.
func (s *staging) copyInto(w *sparseWriter, r io.Reader, want objects.Want) error {
	err := objects.Copy(w, r, want)
	if err == nil {
		err = w.finish()
	}
	if cerr := unix.Close(w.fd); err == nil && cerr != nil {
		err = cerr
	}
	s.written.Add(w.written)
	return err
}
