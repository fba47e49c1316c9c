package manifest

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// pathsByDigest lists, per digest, the paths of regular files holding it.
func pathsByDigest(m *Manifest) map[objects.Digest][]string {
	out := map[objects.Digest][]string{}
	for _, e := range m.Entries {
		if e.Type == TypeRegular {
			out[e.Digest] = append(out[e.Digest], e.Path)
		}
	}
	return out
}

type directorySource struct {
	root string
	m    *Manifest
}

func newDirectorySource(root string, m *Manifest) objects.Source {
	return &directorySource{root: root, m: m}
}

// Fetch reads each wanted object from a file of the tree that holds it,
// trying the next such file if one changed since the manifest was built.
func (s *directorySource) Fetch(ctx context.Context, want []objects.Want, sink objects.Sink) error {
	rootfd, err := unix.Open(s.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("read objects from %s: %w", s.root, err)
	}
	defer unix.Close(rootfd)
	paths := pathsByDigest(s.m)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, w := range want {
		g.Go(func() error {
			candidates := paths[w.Digest]
			if len(candidates) == 0 {
				return fmt.Errorf("read object %s from %s: no file of the manifest holds it: %w", w.Digest, s.root, objects.ErrNotFound)
			}
			var last error
			for _, p := range candidates {
				fd, err := openBeneath(rootfd, p, unix.O_RDONLY)
				if err != nil {
					last = fmt.Errorf("open %s: %w", p, err)
					continue
				}
				f := os.NewFile(uintptr(fd), p)
				err = sink.Put(ctx, w, f)
				f.Close()
				if err == nil {
					return nil
				}
				if !errors.Is(err, objects.ErrMismatch) {
					return fmt.Errorf("read object %s from %s/%s: %w", w.Digest, s.root, p, err)
				}
				last = fmt.Errorf("%s: %w", p, err)
			}
			return fmt.Errorf("read object %s from %s: no file still holds it (last: %w)", w.Digest, s.root, last)
		})
	}
	return g.Wait()
}

type tarSource struct {
	path string
	m    *Manifest
}

func newTarSource(path string, m *Manifest) objects.Source { return &tarSource{path: path, m: m} }

// Fetch reads the tarball once and puts each wanted object the first time a
// member holding it goes by.
func (s *tarSource) Fetch(ctx context.Context, want []objects.Want, sink objects.Sink) error {
	pending := make(map[objects.Digest]objects.Want, len(want))
	for _, w := range want {
		pending[w.Digest] = w
	}
	if len(pending) == 0 {
		return nil
	}
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("read objects from tarball: %w", err)
	}
	defer f.Close()
	stream, release, err := decompressed(f)
	if err != nil {
		return fmt.Errorf("read objects from %s: %w", s.path, err)
	}
	defer release()
	tr := tar.NewReader(stream)
	for len(pending) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read objects from %s: %w", s.path, err)
		}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		default:
			continue
		}
		p, err := cleanMemberName(hdr.Name)
		if err != nil {
			continue
		}
		d, ok := memberObject(s.m, p)
		if !ok {
			continue
		}
		w, ok := pending[d]
		if !ok {
			continue
		}
		if err := sink.Put(ctx, w, tr); err != nil {
			return fmt.Errorf("read object %s from %s member %q: %w", w.Digest, s.path, hdr.Name, err)
		}
		delete(pending, w.Digest)
	}
	for d := range pending {
		return fmt.Errorf("read objects from %s: %d objects not found in the tarball (e.g. %s): %w", s.path, len(pending), d, objects.ErrNotFound)
	}
	return nil
}

type rawImageSource struct {
	r io.ReaderAt
	m *Manifest
}

func newRawImageSource(r io.ReaderAt, m *Manifest) objects.Source {
	return &rawImageSource{r: r, m: m}
}

func (s *rawImageSource) Fetch(ctx context.Context, want []objects.Want, sink objects.Sink) error {
	if s.m.Image == nil {
		return fmt.Errorf("read blocks: manifest is not a raw image")
	}
	first := map[objects.Digest]int{}
	for i, d := range s.m.Image.Blocks {
		if _, ok := first[d]; !ok {
			first[d] = i
		}
	}
	buf := make([]byte, BlockSize)
	for _, w := range want {
		if err := ctx.Err(); err != nil {
			return err
		}
		i, ok := first[w.Digest]
		if !ok {
			return fmt.Errorf("read block %s: not in the image: %w", w.Digest, objects.ErrNotFound)
		}
		n := s.m.Image.blockSize(i)
		if _, err := s.r.ReadAt(buf[:n], int64(i)*BlockSize); err != nil {
			return fmt.Errorf("read image block %d: %w", i, err)
		}
		if err := sink.Put(ctx, w, bytes.NewReader(buf[:n])); err != nil {
			return fmt.Errorf("image block %d: %w", i, err)
		}
	}
	return nil
}
