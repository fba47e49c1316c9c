package manifest

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

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
