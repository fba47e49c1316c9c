package objects

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
)

// errWrongDigest marks complete content that is not the object (as opposed to
// content that broke off, which a retry may cure).
var errWrongDigest = fmt.Errorf("wrong content: %w", ErrMismatch)

// verifiedCopy copies exactly want.Size bytes and checks their digest. It
// reads one byte past the declared size to catch content that is too long.
func verifiedCopy(w io.Writer, r io.Reader, want Want) error {
	if want.Size < 0 || want.Size > MaxObjectSize {
		return fmt.Errorf("object %s: declared size %d is outside 0..%d: %w", want.Digest, want.Size, MaxObjectSize, ErrMismatch)
	}
	h := sha256.New()
	buf := make([]byte, min(max(want.Size, 512), 256<<10))
	n, err := io.CopyBuffer(io.MultiWriter(w, h), io.LimitReader(r, want.Size), buf)
	if err != nil {
		return fmt.Errorf("object %s: copy after %d of %d bytes: %w", want.Digest, n, want.Size, err)
	}
	if n < want.Size {
		return fmt.Errorf("object %s: truncated: %d of %d bytes: %w", want.Digest, n, want.Size, ErrMismatch)
	}
	var one [1]byte
	if m, err := io.ReadFull(r, one[:]); m > 0 {
		return fmt.Errorf("object %s: longer than its declared %d bytes: %w", want.Digest, want.Size, errWrongDigest)
	} else if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("object %s: read past end: %w", want.Digest, err)
	}
	var got Digest
	h.Sum(got[:0])
	if got != want.Digest {
		return fmt.Errorf("object %s: content hashes to %s: %w", want.Digest, got, errWrongDigest)
	}
	return nil
}
