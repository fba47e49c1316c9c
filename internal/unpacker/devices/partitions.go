package devices

import (
	"context"
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

// ensureNode creates a missing block device node from the numbers in sysfs:
// devtmpfs normally does it, but not on every system without udev.
func ensureNode(path, sysDev string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	b, err := os.ReadFile(sysDev)
	if err != nil {
		return fmt.Errorf("partition %s has no device numbers: %w", path, err)
	}
	var major, minor uint32
	if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d:%d", &major, &minor); err != nil {
		return fmt.Errorf("parse device numbers %q of %s: %w", b, path, err)
	}
	if err := unix.Mknod(path, unix.S_IFBLK|0o660, int(unix.Mkdev(major, minor))); err != nil && !os.IsExist(err) {
		return fmt.Errorf("create device node %s: %w", path, err)
	}
	return nil
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
