package objects

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

func openLocalStore(dir string) (*LocalStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open object store %s: %w", dir, err)
	}
	return &LocalStore{dir: dir}, nil
}

func (s *LocalStore) path(d Digest) string {
	h := d.String()
	return filepath.Join(s.dir, h[:2], h)
}

func (s *LocalStore) has(d Digest) (bool, error) {
	_, err := os.Lstat(s.path(d))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up object %s in %s: %w", d, s.dir, err)
	}
	return true, nil
}

func (s *LocalStore) open(d Digest) (io.ReadCloser, error) {
	f, err := os.Open(s.path(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open object %s in %s: %w", d, s.dir, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open object %s: %w", d, err)
	}
	return f, nil
}

// put writes to a temporary file in the store and renames it to the object's
// name only after the content verified, so a reader never sees a bad object.
func (s *LocalStore) put(ctx context.Context, want Want, r io.Reader) error {
	if ok, err := s.has(want.Digest); err != nil {
		return err
	} else if ok {
		return nil // already stored (and verified when it was stored)
	}
	return s.write(want.Digest, func(w io.Writer) (Digest, error) {
		return want.Digest, verifiedCopy(w, r, want)
	})
}

func (s *LocalStore) ingest(ctx context.Context, r io.Reader) (Want, error) {
	var size int64
	var d Digest
	err := s.write(Digest{}, func(w io.Writer) (Digest, error) {
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(w, h), r)
		if err != nil {
			return Digest{}, fmt.Errorf("ingest into %s after %d bytes: %w", s.dir, n, err)
		}
		size = n
		h.Sum(d[:0])
		return d, nil
	})
	return Want{Digest: d, Size: size}, err
}

// write fills a temporary file with fill and renames it to the digest fill
// returns.
func (s *LocalStore) write(hint Digest, fill func(io.Writer) (Digest, error)) (err error) {
	tmp, err := os.CreateTemp(s.dir, "tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary object in %s: %w", s.dir, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	d, err := fill(bw)
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write object %s: %w", d, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write object %s: %w", d, err)
	}
	dst := s.path(d)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("store object %s: %w", d, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("store object %s: %w", d, err)
	}
	return nil
}

// fetchFromStore puts the wanted objects from s into sink, one at a time.
func fetchFromStore(ctx context.Context, s Store, want []Want, sink Sink) error {
	for _, w := range want {
		if err := ctx.Err(); err != nil {
			return err
		}
		rc, err := s.Open(ctx, w.Digest)
		if err != nil {
			return err
		}
		err = sink.Put(ctx, w, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
