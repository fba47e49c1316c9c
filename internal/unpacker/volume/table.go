package volume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// sfdiskDump is the part of `sfdisk --json` output this package reads.
type sfdiskDump struct {
	PartitionTable struct {
		Label      string `json:"label"`
		Device     string `json:"device"`
		SectorSize int64  `json:"sectorsize"`
		Partitions []struct {
			Node  string `json:"node"`
			Start int64  `json:"start"`
			Size  int64  `json:"size"`
			Type  string `json:"type"`
			Name  string `json:"name"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

// errNoPartitionTable says a disk carries no partition table sfdisk knows.
var errNoPartitionTable = errors.New("no partition table")

// readTable reads disk's partition table with sfdisk and returns its kind
// and partitions (Device, Filesystem, Label and UUID not yet filled in).
func readTable(ctx context.Context, log *slog.Logger, disk string) (Table, []Partition, error) {
	out, err := run(ctx, log, command{device: disk, name: "sfdisk", args: []string{"--json", disk}})
	if err != nil {
		// sfdisk exits non-zero with empty output when there is no table.
		if len(strings.TrimSpace(string(out))) == 0 && isExitError(err) {
			return "", nil, fmt.Errorf("read partition table of %s: %w (%v)", disk, errNoPartitionTable, err)
		}
		return "", nil, fmt.Errorf("read partition table of %s: %w", disk, err)
	}
	var d sfdiskDump
	if err := json.Unmarshal(out, &d); err != nil {
		return "", nil, fmt.Errorf("read partition table of %s: parse sfdisk output: %w", disk, err)
	}
	pt := d.PartitionTable
	var table Table
	switch pt.Label {
	case "gpt":
		table = GPT
	case "dos":
		table = MBR
	default:
		return "", nil, fmt.Errorf("read partition table of %s: unsupported partition table %q (want gpt or dos)", disk, pt.Label)
	}
	sector := pt.SectorSize
	if sector == 0 {
		sector = 512
	}
	parts := make([]Partition, 0, len(pt.Partitions))
	for _, p := range pt.Partitions {
		n, err := partitionNumber(p.Node)
		if err != nil {
			return "", nil, fmt.Errorf("read partition table of %s: %w", disk, err)
		}
		parts = append(parts, Partition{
			Number: n,
			Start:  p.Start * sector,
			Size:   p.Size * sector,
			Type:   strings.ToUpper(p.Type),
		})
	}
	return table, parts, nil
}

// partitionNumber takes the trailing digits of a partition node name.
func partitionNumber(node string) (int, error) {
	i := len(node)
	for i > 0 && node[i-1] >= '0' && node[i-1] <= '9' {
		i--
	}
	n, err := strconv.Atoi(node[i:])
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("partition node %q has no partition number", node)
	}
	return n, nil
}

func isExitError(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee)
}

// nodeWait is how long ensureNodes waits for udev to create a node before
// creating it itself.
const nodeWait = 3 * time.Second

// ensureNodes makes the kernel's view of disk's partitions match the table
// (partx; no udev needed) and makes sure each partition has a device node,
// filling in Partition.Device. Without udev (containers, this project's CI)
// nodes may be missing; they are then made from the numbers in sysfs.
func ensureNodes(ctx context.Context, log *slog.Logger, disk string, parts []Partition) error {
	// "partx -u" updates, adds and removes partitions as the table says.
	if _, err := run(ctx, log, command{device: disk, name: "partx", args: []string{"-u", disk}}); err != nil {
		return fmt.Errorf("update kernel partition list of %s (loop devices need partition scanning: losetup -P): %w", disk, err)
	}
	base := filepath.Base(disk)
	for i := range parts {
		name, devNum, err := sysfsPartition(base, parts[i].Number)
		if err != nil {
			return fmt.Errorf("partition %d of %s: %w", parts[i].Number, disk, err)
		}
		node := filepath.Join("/dev", name)
		if err := waitNode(ctx, node, devNum); err != nil {
			return fmt.Errorf("partition %d of %s: %w", parts[i].Number, disk, err)
		}
		parts[i].Device = node
	}
	return nil
}

// sysfsPartition finds the kernel name ("loop0p3", "nvme1n1p3", "xvdf1") and
// device number of partition n of disk.
func sysfsPartition(disk string, n int) (string, uint64, error) {
	dir := filepath.Join("/sys/class/block", disk)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", 0, fmt.Errorf("list partitions in sysfs: %w", err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "partition"))
		if err != nil {
			continue // not a partition directory
		}
		if strings.TrimSpace(string(b)) != strconv.Itoa(n) {
			continue
		}
		dev, err := os.ReadFile(filepath.Join(dir, e.Name(), "dev"))
		if err != nil {
			return "", 0, fmt.Errorf("read device number of %s: %w", e.Name(), err)
		}
		var major, minor uint32
		if _, err := fmt.Sscanf(strings.TrimSpace(string(dev)), "%d:%d", &major, &minor); err != nil {
			return "", 0, fmt.Errorf("parse device number %q of %s: %w", dev, e.Name(), err)
		}
		return e.Name(), unix.Mkdev(major, minor), nil
	}
	return "", 0, fmt.Errorf("the kernel does not know partition %d (not in %s)", n, dir)
}

// waitNode waits for node to exist as the block device devNum, and creates it
// when nothing else (udev, devtmpfs) does in time. A node with the right name
// but another device number is an error.
func waitNode(ctx context.Context, node string, devNum uint64) error {
	deadline := time.Now().Add(nodeWait)
	for {
		var st unix.Stat_t
		err := unix.Stat(node, &st)
		if err == nil {
			if st.Mode&unix.S_IFMT != unix.S_IFBLK || st.Rdev != devNum {
				return fmt.Errorf("%s is not block device %d:%d", node, unix.Major(devNum), unix.Minor(devNum))
			}
			return nil
		}
		if !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("stat %s: %w", node, err)
		}
		if time.Now().After(deadline) {
			if err := unix.Mknod(node, unix.S_IFBLK|0o660, int(devNum)); err != nil && !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("create device node %s: %w", node, err)
			}
			continue
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for device node %s: %w", node, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
