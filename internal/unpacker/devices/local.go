package devices

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

type localFinder struct {
	dir string
	mu  sync.Mutex // serialises losetup calls: two attaches of one file must not race
}

func newLocal(dir string) (*localFinder, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("local devices directory %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("create local devices directory: %w", err)
	}
	return &localFinder{dir: abs}, nil
}

func (f *localFinder) Local() bool { return true }

// file is the sparse file standing in for a volume.
func (f *localFinder) file(volumeID string) string {
	return filepath.Join(f.dir, volumeID+".img")
}

func (f *localFinder) Attach(ctx context.Context, req AttachRequest) (Device, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	file := f.file(req.VolumeID)
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
		if req.SizeBytes <= 0 {
			return Device{}, fmt.Errorf("local volume %s does not exist at %s and no size was given to create it", req.VolumeID, file)
		}
		if err := createSparse(file, req.SizeBytes); err != nil {
			return Device{}, fmt.Errorf("create local volume %s: %w", req.VolumeID, err)
		}
	} else if err != nil {
		return Device{}, fmt.Errorf("local volume %s: %w", req.VolumeID, err)
	}
	return f.attachLocked(ctx, req.VolumeID, file)
}

func (f *localFinder) Lookup(ctx context.Context, volumeID string) (Device, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	file := f.file(volumeID)
	if _, err := os.Stat(file); err != nil {
		return Device{}, fmt.Errorf("volume %s (file %s): %w: %w", volumeID, file, ErrNotFound, err)
	}
	return f.attachLocked(ctx, volumeID, file)
}

func (f *localFinder) Detach(ctx context.Context, volumeID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	loops, err := loopsOf(ctx, f.file(volumeID))
	if err != nil {
		return err
	}
	for _, loop := range loops {
		if _, err := run(ctx, "losetup", "-d", loop); err != nil {
			return fmt.Errorf("detach local volume %s: %w", volumeID, err)
		}
	}
	return nil
}

func (f *localFinder) attachLocked(ctx context.Context, volumeID, file string) (Device, error) {
	loops, err := loopsOf(ctx, file)
	if err != nil {
		return Device{}, err
	}
	var loop string
	if len(loops) > 0 {
		loop = loops[0]
	} else {
		out, err := run(ctx, "losetup", "--find", "--show", "--partscan", file)
		if err != nil {
			return Device{}, fmt.Errorf("attach local volume %s: %w", volumeID, err)
		}
		loop = strings.TrimSpace(out)
	}
	// A file partitioned before (an earlier run) needs its partition nodes.
	if _, err := ensurePartitionNodes(ctx, loop, "/sys"); err != nil {
		return Device{}, fmt.Errorf("local volume %s on %s: %w", volumeID, loop, err)
	}
	size, err := sizeOf(loop)
	if err != nil {
		return Device{}, err
	}
	return Device{VolumeID: volumeID, Path: loop, SizeBytes: size, BackingFile: file}, nil
}

func loopsOf(ctx context.Context, file string) ([]string, error) {
	out, err := run(ctx, "losetup", "--associated", file, "--output", "NAME", "--noheadings")
	if err != nil {
		return nil, fmt.Errorf("find loop devices of %s: %w", file, err)
	}
	return strings.Fields(out), nil
}

func createSparse(path string, size int64) error {
	tmp := path + ".tmp"
	fh, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if err := fh.Truncate(size); err != nil {
		fh.Close()
		os.Remove(tmp)
		return err
	}
	if err := fh.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
