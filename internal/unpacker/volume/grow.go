package volume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// growSlack is how much smaller than its partition a root file system may
// be without being grown: mke2fs and resize2fs leave out a last block group
// too small to hold its own metadata (an inode table of 512 blocks and
// backups of the superblock and descriptors, a few MiB), while a volume
// grows by whole GiB.
const growSlack = 16 * mib

// gptGeometry is where a GPT says its usable space begins and ends.
type gptGeometry struct {
	firstLBA, lastLBA, sectorSize int64
}

// readGPTGeometry reads the first and last usable sectors of disk's GPT as
// its primary header records them (sfdisk).
func readGPTGeometry(ctx context.Context, log *slog.Logger, disk string) (gptGeometry, error) {
	out, err := run(ctx, log, command{device: disk, name: "sfdisk", args: []string{"--json", disk}})
	if err != nil {
		return gptGeometry{}, fmt.Errorf("read partition table of %s: %w", disk, err)
	}
	var d struct {
		PartitionTable struct {
			Label      string `json:"label"`
			FirstLBA   int64  `json:"firstlba"`
			LastLBA    int64  `json:"lastlba"`
			SectorSize int64  `json:"sectorsize"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &d); err != nil {
		return gptGeometry{}, fmt.Errorf("read partition table of %s: parse sfdisk output: %w", disk, err)
	}
	pt := d.PartitionTable
	if pt.Label != "gpt" || pt.FirstLBA <= 0 || pt.LastLBA <= pt.FirstLBA {
		return gptGeometry{}, fmt.Errorf("read partition table of %s: want a GPT with usable sectors, found %q (first %d, last %d)", disk, pt.Label, pt.FirstLBA, pt.LastLBA)
	}
	if pt.SectorSize == 0 {
		pt.SectorSize = 512
	}
	return gptGeometry{firstLBA: pt.FirstLBA, lastLBA: pt.LastLBA, sectorSize: pt.SectorSize}, nil
}

// wantLastLBA is the last usable sector of a GPT that ends where a disk of
// diskBytes does: the backup table (entries and header) mirrors the
// primary, so it takes firstLBA-1 sectors at the end.
func (g gptGeometry) wantLastLBA(diskBytes int64) int64 {
	return diskBytes/g.sectorSize - g.firstLBA
}

// growthPlan is what growing a layout's root would change.
type growthPlan struct {
	disk      string
	diskBytes int64
	geo       gptGeometry
	root      Partition
	// moveTable: the GPT (its backup and usable space) ends before the disk.
	moveTable bool
	// growRoot: the root partition ends before the table's usable space.
	growRoot bool
	// growFS: the root file system is smaller than its partition.
	growFS  bool
	fsBytes int64
}

func (p growthPlan) needed() bool { return p.moveTable || p.growRoot || p.growFS }

// describe says what the plan changes, for logs and errors.
func (p growthPlan) describe() string {
	var parts []string
	if p.moveTable {
		parts = append(parts, fmt.Sprintf("the partition table covers %d of the disk's %d bytes", (p.geo.lastLBA+p.geo.firstLBA)*p.geo.sectorSize, p.diskBytes))
	}
	if p.growRoot {
		parts = append(parts, fmt.Sprintf("root partition %d has %d bytes", p.root.Number, p.root.Size))
	}
	if p.growFS {
		parts = append(parts, fmt.Sprintf("its file system has %d bytes", p.fsBytes))
	}
	if len(parts) == 0 {
		return "the root fills the disk"
	}
	return strings.Join(parts, ", ")
}

// planGrowth looks at layout's disk and says what Grow would change, or why
// it cannot grow it (errNotGrowable).
func planGrowth(ctx context.Context, log *slog.Logger, layout *Layout) (growthPlan, error) {
	if layout == nil {
		return growthPlan{}, fmt.Errorf("grow volume: no layout")
	}
	switch {
	case layout.Table != GPT:
		return growthPlan{}, fmt.Errorf("%w: the partition table is %q, not GPT", errNotGrowable, layout.Table)
	case layout.Root.Filesystem != "ext4" && layout.Root.Filesystem != "ext3" && layout.Root.Filesystem != "ext2":
		return growthPlan{}, fmt.Errorf("%w: the root file system is %q, not ext2/3/4", errNotGrowable, layout.Root.Filesystem)
	}
	dev, size, err := openDisk(layout.Disk)
	if err != nil {
		return growthPlan{}, err
	}
	geo, err := readGPTGeometry(ctx, log, dev)
	if err != nil {
		return growthPlan{}, err
	}
	_, parts, err := readTable(ctx, log, dev)
	if err != nil {
		return growthPlan{}, err
	}
	var root *Partition
	for i := range parts {
		if parts[i].Number == layout.Root.Number {
			root = &parts[i]
		}
	}
	if root == nil {
		return growthPlan{}, fmt.Errorf("grow volume %s: the table has no partition %d (the root)", dev, layout.Root.Number)
	}
	for _, p := range parts {
		if p.Start > root.Start {
			return growthPlan{}, fmt.Errorf("%w: root partition %d is not the last (partition %d follows it)", errNotGrowable, root.Number, p.Number)
		}
	}
	root.Device, root.Filesystem, root.Label, root.UUID = layout.Root.Device, layout.Root.Filesystem, layout.Root.Label, layout.Root.UUID
	want := geo.wantLastLBA(size)
	rootEnd := (root.Start+root.Size)/geo.sectorSize - 1
	fsBytes, err := ext4Bytes(root.Device)
	if err != nil {
		return growthPlan{}, err
	}
	return growthPlan{
		disk: dev, diskBytes: size, geo: geo, root: *root, fsBytes: fsBytes,
		moveTable: geo.lastLBA < want,
		growRoot:  rootEnd < want,
		growFS:    root.Size-fsBytes >= growSlack,
	}, nil
}

// errNotGrowable says a layout is not one Grow grows.
var errNotGrowable = errors.New("the volume's layout is not grown in place")

// ext4Bytes is the size of the ext2/3/4 file system on dev, from its superblock.
func ext4Bytes(dev string) (int64, error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, fmt.Errorf("size of the file system on %s: %w", dev, err)
	}
	defer f.Close()
	raw := make([]byte, sbSize)
	if _, err := f.ReadAt(raw, sbOffset); err != nil {
		return 0, fmt.Errorf("size of the file system on %s: read superblock: %w", dev, err)
	}
	sb, err := parseSuperblock(raw)
	if err != nil {
		return 0, fmt.Errorf("size of the file system on %s: %w", dev, err)
	}
	blocks := uint64(le32(raw, sbBlocksCountLo))
	if le32(raw, sbFeatureIncompt)&incompat64Bit != 0 {
		blocks |= uint64(le32(raw, sbBlocksCountHi)) << 32
	}
	return int64(blocks) * sb.blockSize, nil
}

func growthNeeded(ctx context.Context, layout *Layout, opts GrowOptions) (bool, string, error) {
	plan, err := planGrowth(ctx, loggerOr(opts.Logger), layout)
	if errors.Is(err, errNotGrowable) {
		return false, err.Error(), nil
	}
	if err != nil {
		return false, "", err
	}
	return plan.needed(), plan.describe(), nil
}

func grow(ctx context.Context, layout *Layout, opts GrowOptions) (*Layout, *GrowReport, error) {
	log := loggerOr(opts.Logger)
	plan, err := planGrowth(ctx, log, layout)
	if err != nil {
		return nil, nil, fmt.Errorf("grow volume %s: %w", layout.Disk, err)
	}
	dev := plan.disk
	log = log.With("device", dev)
	rep := &GrowReport{DiskBytes: plan.diskBytes, RootBefore: plan.root.Size, RootAfter: plan.root.Size,
		FilesystemBefore: plan.fsBytes, FilesystemAfter: plan.fsBytes}
	if !plan.needed() {
		l := *layout
		return &l, rep, nil
	}
	// Nothing may hold the root: resize2fs would resize a mounted file
	// system through the kernel (online, which needs CAP_SYS_RESOURCE and
	// leaves the new groups' inode tables to a background thread).
	if err := checkUnmounted(plan.root.Device); err != nil {
		return nil, nil, fmt.Errorf("grow volume %s: %w", dev, err)
	}
	log.Info("growing volume", "why", plan.describe())
	if plan.moveTable || plan.growRoot {
		if plan.moveTable {
			// The old backup table lies inside the grown root partition:
			// zero it first, so that no stale GPT header stays behind in
			// the file system's free space (and the bytes are the same
			// whether or not an earlier attempt got further).
			if err := zeroSectors(dev, plan.geo.lastLBA+1, plan.geo.firstLBA-1, plan.geo.sectorSize); err != nil {
				return nil, nil, fmt.Errorf("grow volume %s: clear the old backup partition table: %w", dev, err)
			}
		}
		// sfdisk moves the backup table to the disk's end, fixes the
		// protective MBR's size and gives the root all the usable space
		// after its start; the start, type, GUID, name and attributes of
		// every partition stay, and so does the MBR's boot code. The
		// kernel is told below (partx), as the disk may be in use.
		if _, err := run(ctx, log, command{device: dev, name: "sfdisk",
			args:  []string{"--no-reread", "--no-tell-kernel", "--wipe", "never", "--wipe-partitions", "never", "-q", "-N", strconv.Itoa(plan.root.Number), dev},
			stdin: []byte(", +\n")}); err != nil {
			return nil, nil, fmt.Errorf("grow volume %s: grow root partition %d: %w", dev, plan.root.Number, err)
		}
	}
	_, parts, err := readTable(ctx, log, dev)
	if err != nil {
		return nil, nil, fmt.Errorf("grow volume %s: %w", dev, err)
	}
	if err := ensureNodes(ctx, log, dev, parts); err != nil {
		return nil, nil, fmt.Errorf("grow volume %s: %w", dev, err)
	}
	var root *Partition
	for i := range parts {
		if parts[i].Number == plan.root.Number {
			root = &parts[i]
		}
	}
	if root == nil {
		return nil, nil, fmt.Errorf("grow volume %s: root partition %d is gone from the table", dev, plan.root.Number)
	}
	if root.Start != plan.root.Start {
		return nil, nil, fmt.Errorf("grow volume %s: root partition %d moved from byte %d to %d", dev, root.Number, plan.root.Start, root.Start)
	}
	if got, err := kernelPartitionBytes(root.Device); err != nil {
		return nil, nil, fmt.Errorf("grow volume %s: %w", dev, err)
	} else if got != root.Size {
		return nil, nil, fmt.Errorf("grow volume %s: the kernel sees root partition %s with %d bytes, the table says %d", dev, root.Device, got, root.Size)
	}
	rep.RootAfter = root.Size
	if root.Size-plan.fsBytes >= growSlack {
		if err := resizeExt4(ctx, log, root.Device); err != nil {
			return nil, nil, fmt.Errorf("grow volume %s: %w", dev, err)
		}
	}
	if rep.FilesystemAfter, err = ext4Bytes(root.Device); err != nil {
		return nil, nil, fmt.Errorf("grow volume %s: %w", dev, err)
	}
	l := *layout
	l.Root.Size, l.Root.Device = root.Size, root.Device
	log.Info("grew volume", "disk_bytes", rep.DiskBytes, "root_partition", root.Device,
		"root_bytes_before", rep.RootBefore, "root_bytes_after", rep.RootAfter,
		"filesystem_bytes_before", rep.FilesystemBefore, "filesystem_bytes_after", rep.FilesystemAfter)
	return &l, rep, nil
}

// resizeExt4 checks the unmounted file system on dev (e2fsck -f -p: a
// resize of a damaged file system damages it further) and grows it to fill
// its partition, with FixedTime for every time e2fsprogs records.
//
// The new block groups' inode tables are zeroed now and marked so. Where
// the kernel offers lazy inode table initialisation
// (/sys/fs/ext4/features/lazy_itable_init) resize2fs leaves them to it,
// and the kernel's background thread would then write them after the next
// mount, at a moment no one controls: blocks changing between two
// snapshots, and group descriptors that differ between targets. resize2fs
// runs in a private mount namespace in which that directory is an empty
// tmpfs, so it zeroes them itself.
func resizeExt4(ctx context.Context, log *slog.Logger, dev string) error {
	if _, err := run(ctx, log, command{device: dev, name: "e2fsck", args: []string{"-f", "-p", dev}, env: fixedTimeEnv()}); err != nil {
		// Exit status 1: errors were corrected.
		var ee interface{ ExitCode() int }
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			return fmt.Errorf("check the root file system before growing it: %w", err)
		}
	}
	// -f: the check just ran; resize2fs would otherwise want a check more
	// recent than the last mount, and FixedTime is older than any mount.
	script := `mount -t tmpfs -o ro,size=4k autoami-no-lazy-itable /sys/fs/ext4/features && exec resize2fs -f "$1"`
	if _, err := run(ctx, log, command{device: dev, name: "unshare",
		args: []string{"--mount", "--propagation", "private", "sh", "-c", script, "sh", dev}, env: fixedTimeEnv()}); err != nil {
		return fmt.Errorf("grow the root file system: %w", err)
	}
	return nil
}

// checkUnmounted fails when dev is held exclusively (mounted): O_EXCL on a
// block device fails with EBUSY then.
func checkUnmounted(dev string) error {
	f, err := os.OpenFile(dev, os.O_RDONLY|unix.O_EXCL, 0)
	if err != nil {
		return fmt.Errorf("the root %s must be unmounted to grow: %w", dev, err)
	}
	return f.Close()
}

// zeroSectors writes n zero sectors at sector first of dev, durably.
func zeroSectors(dev string, first, n, sectorSize int64) error {
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, n*sectorSize), first*sectorSize); err != nil {
		return err
	}
	return f.Sync()
}

// kernelPartitionBytes is the size the kernel gives partition node dev.
func kernelPartitionBytes(dev string) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/sys/class/block", filepath.Base(dev), "size"))
	if err != nil {
		return 0, fmt.Errorf("size of %s in sysfs: %w", dev, err)
	}
	sectors, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size of %s in sysfs: %w", dev, err)
	}
	return sectors * 512, nil // sysfs counts 512-byte sectors whatever the device's
}
