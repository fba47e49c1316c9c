package devices

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

func partitionPath(device string, n int) string {
	if device != "" && device[len(device)-1] >= '0' && device[len(device)-1] <= '9' {
		return fmt.Sprintf("%sp%d", device, n)
	}
	return fmt.Sprintf("%s%d", device, n)
}

func ensurePartitionNodes(ctx context.Context, device, sysDir string) ([]string, error) {
	// partx -g -o NR lists the partitions of the on-disk table; it fails on a
	// device without one, which is not an error here.
	out, err := run(ctx, "partx", "-g", "-o", "NR", device)
	if err != nil {
		if strings.Contains(err.Error(), "failed to read partition table") {
			return nil, nil
		}
		return nil, fmt.Errorf("list partitions of %s: %w", device, err)
	}
	var numbers []int
	for _, f := range strings.Fields(out) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("list partitions of %s: partx printed %q", device, f)
		}
		numbers = append(numbers, n)
	}
	if len(numbers) == 0 {
		return nil, nil
	}
	// Tell the kernel about the table: -u updates known partitions and adds
	// new ones; on kernels or versions where it does not add, -a does.
	if _, err := run(ctx, "partx", "-u", device); err != nil {
		return nil, fmt.Errorf("update kernel partitions of %s: %w", device, err)
	}
	base := filepath.Base(device)
	var paths []string
	for _, n := range numbers {
		path := partitionPath(device, n)
		sys := filepath.Join(sysDir, "block", base, filepath.Base(path), "dev")
		if _, err := os.Stat(sys); err != nil {
			if _, err := run(ctx, "partx", "-a", "-n", strconv.Itoa(n), device); err != nil {
				return nil, fmt.Errorf("add partition %d of %s: %w", n, device, err)
			}
		}
		if err := ensureNode(path, sys); err != nil {
			return nil, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// ensureNode makes sure path is the block device whose numbers sysfs gives
// (sysDev), creating a missing node: devtmpfs normally does it, but not on
// every system without udev. An existing node with other numbers, or not a
// block device, is an error: the daemon would otherwise format or patch
// whatever device it names.
func ensureNode(path, sysDev string) error {
	b, err := os.ReadFile(sysDev)
	if err != nil {
		return fmt.Errorf("partition %s has no device numbers: %w", path, err)
	}
	var major, minor uint32
	if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d:%d", &major, &minor); err != nil {
		return fmt.Errorf("parse device numbers %q of %s: %w", b, path, err)
	}
	want := unix.Mkdev(major, minor)
	for range 2 {
		var st unix.Stat_t
		err := unix.Stat(path, &st)
		if err == nil {
			if st.Mode&unix.S_IFMT != unix.S_IFBLK || st.Rdev != want {
				return fmt.Errorf("%s is not block device %d:%d (the kernel's partition in %s): refusing to use it", path, major, minor, sysDev)
			}
			return nil
		}
		if !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("stat %s: %w", path, err)
		}
		if err := unix.Mknod(path, unix.S_IFBLK|0o660, int(want)); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create device node %s: %w", path, err)
		}
		// Created (or someone else did meanwhile): check it.
	}
	return fmt.Errorf("device node %s keeps disappearing", path)
}

func sizeOf(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", path, err)
	}
	defer f.Close()
	n, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", path, err)
	}
	return n, nil
}
