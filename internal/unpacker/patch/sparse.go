package patch

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// holeSize is the granularity at which runs of zeros are left as holes: the
// file-system block size of ext4 and xfs volumes.
const holeSize = 4096

var zeroBlock [holeSize]byte

// sparseWriter writes sequentially to fd, leaving every aligned all-zero
// holeSize block as a hole, so sparse files stay sparse and zeros cost no
// blocks. finish sets the final size (a trailing hole).
type sparseWriter struct {
	fd      int
	off     int64
	written int64 // bytes actually written
}

func (w *sparseWriter) Write(p []byte) (int, error) {
	runStart := 0
	i := 0
	for i < len(p) {
		end := i + holeSize - int((w.off+int64(i))%holeSize)
		if end > len(p) {
			end = len(p)
		}
		if end-i == holeSize && [holeSize]byte(p[i:end]) == zeroBlock {
			if err := w.flush(p[runStart:i], w.off+int64(runStart)); err != nil {
				return runStart, err
			}
			runStart = end
		}
		i = end
	}
	if err := w.flush(p[runStart:], w.off+int64(runStart)); err != nil {
		return runStart, err
	}
	w.off += int64(len(p))
	return len(p), nil
}

func (w *sparseWriter) flush(b []byte, off int64) error {
	for len(b) > 0 {
		n, err := unix.Pwrite(w.fd, b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("write at offset %d: %w", off, err)
		}
		b, off = b[n:], off+int64(n)
		w.written += int64(n)
	}
	return nil
}

func (w *sparseWriter) finish() error {
	if err := unix.Ftruncate(w.fd, w.off); err != nil {
		return fmt.Errorf("set size %d: %w", w.off, err)
	}
	return nil
}
