package patch

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// holeSize is the granularity at which runs of zeros are left as holes: the
// file-system block size of ext4 and xfs volumes.
//
// Every file's content is written this way (a staged object may serve
// sparse and non-sparse files alike); a file the manifest does not mark
// Sparse then gets its holes allocated (allocate), so only files whose
// source had holes keep any (a swap file must have none).
const holeSize = 4096

var zeroBlock [holeSize]byte

// sparseWriter writes sequentially to fd, leaving every aligned all-zero
// holeSize block as a hole, so sparse files stay sparse and zeros cost no
// blocks. finish sets the final size (a trailing hole).
type sparseWriter struct {
	fd      int
	off     int64
	written int64 // bytes actually written
	// dense writes every block, zeros too, into a file whose blocks were
	// allocated beforehand (see Deterministic placement).
	dense bool
	// allocRuns allocates each run of data just before writing it (see
	// Deterministic placement). The runs are found in aligned windows of
	// allocWindow bytes, so that where they start and end, and so what is
	// allocated, does not depend on how the reader happened to split the
	// content.
	allocRuns bool
	window    []byte
}

// allocWindow is the span in which allocRuns finds runs of data.
const allocWindow = 1 << 20

func (w *sparseWriter) Write(p []byte) (int, error) {
	if w.dense {
		if err := w.flush(p, w.off); err != nil {
			return 0, err
		}
		w.off += int64(len(p))
		return len(p), nil
	}
	if !w.allocRuns {
		return w.writeRuns(p)
	}
	n := len(p)
	for len(p) > 0 {
		if w.window == nil {
			w.window = make([]byte, 0, allocWindow)
		}
		k := min(len(p), allocWindow-len(w.window))
		w.window = append(w.window, p[:k]...)
		p = p[k:]
		if len(w.window) == allocWindow {
			if _, err := w.writeRuns(w.window); err != nil {
				return n - len(p), err
			}
			w.window = w.window[:0]
		}
	}
	return n, nil
}

// writeRuns writes p at the current offset, leaving aligned zero blocks out.
func (w *sparseWriter) writeRuns(p []byte) (int, error) {
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
	if w.allocRuns && len(b) > 0 {
		if err := allocateRun(w.fd, off, int64(len(b))); err != nil {
			return err
		}
	}
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
	if len(w.window) > 0 {
		if _, err := w.writeRuns(w.window); err != nil {
			return err
		}
		w.window = w.window[:0]
	}
	if err := unix.Ftruncate(w.fd, w.off); err != nil {
		return fmt.Errorf("set size %d: %w", w.off, err)
	}
	return nil
}

// allocate gives the regular file name of dirfd (of size bytes) blocks for
// all its holes, without changing its content: fallocate allocates them
// as unwritten extents (no data written, reading zeros), which is what a
// file without holes needs (swapon accepts them). File systems without
// fallocate get the holes written with zeros.
func allocate(dirfd int, name string, size int64) error {
	fd, err := openAt(dirfd, name, unix.O_WRONLY)
	if err != nil {
		return fmt.Errorf("allocate holes: open: %w", err)
	}
	defer unix.Close(fd)
	err = unix.Fallocate(fd, 0, 0, size)
	if errors.Is(err, unix.EOPNOTSUPP) {
		err = fillHoles(fd, size)
	}
	if err != nil {
		return fmt.Errorf("allocate holes: %w", err)
	}
	return nil
}

// fillHoles writes zeros into every hole of fd.
func fillHoles(fd int, size int64) error {
	for off := int64(0); off < size; {
		hole, err := unix.Seek(fd, off, unix.SEEK_HOLE)
		if err != nil || hole >= size {
			return err
		}
		data, err := unix.Seek(fd, hole, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			data = size
		} else if err != nil {
			return err
		}
		for p := hole; p < data; {
			n := min(int64(len(zeroBlock)), data-p)
			w, err := unix.Pwrite(fd, zeroBlock[:n], p)
			if err != nil {
				return err
			}
			p += int64(w)
		}
		off = data
	}
	return nil
}
