package volume

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Sizes of a from-scratch layout.
const (
	mib            = 1 << 20
	defaultESPSize = 100 * mib
	biosBootSize   = 1 * mib
	// minRootSize is the smallest root partition Create makes.
	minRootSize = 64 * mib
)

// Partition numbers of a from-scratch layout.
const (
	partBIOSBoot = 1
	partESP      = 2
	partRoot     = 3
)

// labelPattern is what a root label may look like: it goes onto the kernel
// command line and into GRUB's configuration unquoted.
var labelPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,15}$`)

func checkLabel(label string) error {
	if !labelPattern.MatchString(label) {
		return fmt.Errorf("root label %q: want 1 to 16 characters of A-Z a-z 0-9 . _ - (starting with a letter or digit)", label)
	}
	return nil
}

func create(ctx context.Context, disk string, opts CreateOptions) (*Layout, error) {
	log := loggerOr(opts.Logger)
	label := opts.RootLabel
	if label == "" {
		label = DefaultRootLabel
	}
	if err := checkLabel(label); err != nil {
		return nil, fmt.Errorf("create volume layout on %s: %w", disk, err)
	}
	espSize := opts.ESPSize
	if espSize == 0 {
		espSize = defaultESPSize
	}
	// FAT32 needs at least 65525 clusters; mkfs.fat uses 512-byte clusters
	// for small volumes, so 33 MiB is the floor.
	if espSize < 33*mib || espSize%mib != 0 {
		return nil, fmt.Errorf("create volume layout on %s: ESP size %d: want a whole number of MiB, at least 33 MiB", disk, espSize)
	}
	dev, size, err := openDisk(disk)
	if err != nil {
		return nil, fmt.Errorf("create volume layout on %s: %w", disk, err)
	}
	if need := int64(mib + biosBootSize + espSize + minRootSize + mib); size < need {
		return nil, fmt.Errorf("create volume layout on %s: device has %d bytes, a from-scratch layout needs at least %d", dev, size, need)
	}
	if !opts.Overwrite {
		info, err := probeDisk(ctx, log, dev)
		if err != nil {
			return nil, fmt.Errorf("create volume layout on %s: %w", dev, err)
		}
		if info != "" {
			return nil, fmt.Errorf("create volume layout on %s: device already holds %s; refusing to overwrite it (set Overwrite)", dev, info)
		}
	}
	ids, err := newIdentifiers(opts.Seed)
	if err != nil {
		return nil, fmt.Errorf("create volume layout on %s: %w", dev, err)
	}
	log = log.With("device", dev)
	log.Info("creating volume layout", "size", size, "root_label", label, "esp_size", espSize)

	if _, err := run(ctx, log, command{device: dev, name: "sgdisk", args: []string{"--zap-all", dev}}); err != nil {
		return nil, fmt.Errorf("create volume layout on %s: clear old tables: %w", dev, err)
	}
	args := []string{
		"--disk-guid=" + ids.disk,
		fmt.Sprintf("--new=%d:%d:+%dK", partBIOSBoot, mib/512, biosBootSize/1024),
		fmt.Sprintf("--typecode=%d:%s", partBIOSBoot, TypeBIOSBoot),
		fmt.Sprintf("--change-name=%d:BIOS boot partition", partBIOSBoot),
		fmt.Sprintf("--partition-guid=%d:%s", partBIOSBoot, ids.biosBoot),
		fmt.Sprintf("--new=%d:0:+%dK", partESP, espSize/1024),
		fmt.Sprintf("--typecode=%d:%s", partESP, TypeESP),
		fmt.Sprintf("--change-name=%d:EFI system partition", partESP),
		fmt.Sprintf("--partition-guid=%d:%s", partESP, ids.esp),
		fmt.Sprintf("--new=%d:0:0", partRoot),
		fmt.Sprintf("--typecode=%d:%s", partRoot, TypeLinuxRootAMD64),
		fmt.Sprintf("--change-name=%d:%s", partRoot, label),
		fmt.Sprintf("--partition-guid=%d:%s", partRoot, ids.root),
		dev,
	}
	if _, err := run(ctx, log, command{device: dev, name: "sgdisk", args: args}); err != nil {
		return nil, fmt.Errorf("create volume layout on %s: partition: %w", dev, err)
	}
	table, parts, err := readTable(ctx, log, dev)
	if err != nil {
		return nil, fmt.Errorf("create volume layout on %s: %w", dev, err)
	}
	if table != GPT || len(parts) != 3 {
		return nil, fmt.Errorf("create volume layout on %s: after partitioning found a %s table with %d partitions, want gpt with 3", dev, table, len(parts))
	}
	if err := ensureNodes(ctx, log, dev, parts); err != nil {
		return nil, fmt.Errorf("create volume layout on %s: %w", dev, err)
	}
	byNumber := map[int]*Partition{}
	for i := range parts {
		byNumber[parts[i].Number] = &parts[i]
	}
	esp, root, bios := byNumber[partESP], byNumber[partRoot], byNumber[partBIOSBoot]
	if esp == nil || root == nil || bios == nil {
		return nil, fmt.Errorf("create volume layout on %s: partitions 1-3 not all present after partitioning", dev)
	}
	// --invariant: the boot sector and FAT get no time stamps; -i gives
	// the derived serial (it wins over --invariant's constant one).
	if _, err := run(ctx, log, command{device: esp.Device, name: "mkfs.vfat",
		args: []string{"--invariant", "-F", "32", "-n", "ESP", "-i", ids.espVolumeID, esp.Device}}); err != nil {
		return nil, fmt.Errorf("create volume layout on %s: format EFI system partition: %w", dev, err)
	}
	ext := ext4Options(ctx, ids, opts.AssumeZeroed)
	mkfsArgs := append([]string{"-F", "-q", "-t", "ext4", "-b", "4096", "-L", label, "-U", ids.rootFS, "-E", ext}, root.Device)
	// Every time mke2fs records (creation, last write and check, the times
	// of the root and lost+found) is FixedTime: with the derived UUID and
	// hash seed the new file system's bytes depend only on the seed.
	if _, err := run(ctx, log, command{device: root.Device, name: "mke2fs", args: mkfsArgs, env: fixedTimeEnv()}); err != nil {
		return nil, fmt.Errorf("create volume layout on %s: format root: %w", dev, err)
	}
	if err := probePartitions(ctx, log, parts); err != nil {
		return nil, fmt.Errorf("create volume layout on %s: %w", dev, err)
	}
	if root.Filesystem != "ext4" || root.Label != label || esp.Filesystem != "vfat" {
		return nil, fmt.Errorf("create volume layout on %s: formatted partitions probe as root %q label %q, ESP %q", dev, root.Filesystem, root.Label, esp.Filesystem)
	}
	l := &Layout{Disk: dev, Table: GPT, Root: *root, ESP: esp, BIOSBoot: bios}
	log.Info("created volume layout", "root", root.Device, "root_uuid", root.UUID, "esp", esp.Device, "bios_boot", bios.Device)
	return l, nil
}

// ext4Options returns mke2fs's -E argument. A device known to read as zeros
// needs no zeroing; any other gets its inode tables and journal initialised
// now, so that no background thread dirties blocks after the first snapshot.
func ext4Options(ctx context.Context, ids identifiers, zeroed bool) string {
	opts := []string{"hash_seed=" + ids.rootHashSeed, "nodiscard"}
	if zeroed && mke2fsAtLeast(ctx, 1, 47) {
		opts = append(opts, "assume_storage_prezeroed=1")
	} else {
		opts = append(opts, "lazy_itable_init=0", "lazy_journal_init=0")
	}
	return strings.Join(opts, ",")
}

// mke2fsAtLeast reports whether the installed mke2fs is at least major.minor.
func mke2fsAtLeast(ctx context.Context, major, minor int) bool {
	// "mke2fs 1.47.0 (5-Feb-2023)" on stderr.
	out, _ := exec.CommandContext(ctx, "mke2fs", "-V").CombinedOutput()
	f := strings.Fields(string(out))
	if len(f) < 2 {
		return false
	}
	v := strings.Split(f[1], ".")
	if len(v) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(v[0])
	mi, err2 := strconv.Atoi(v[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// probeDisk describes what a whole disk already holds ("a gpt partition
// table", "an ext4 filesystem"), or "" when blkid finds nothing.
func probeDisk(ctx context.Context, log *slog.Logger, dev string) (string, error) {
	out, err := run(ctx, log, command{device: dev, name: "blkid", args: []string{"-p", "-o", "export", dev}})
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 2 {
			return "", nil
		}
		return "", fmt.Errorf("probe device: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "PTTYPE="); ok {
			return "a " + v + " partition table", nil
		}
		if v, ok := strings.CutPrefix(line, "TYPE="); ok {
			return "a " + v + " filesystem", nil
		}
	}
	return "", nil
}

// openDisk resolves disk's symlinks, checks that it is a whole-disk block
// device and returns its path and size in bytes.
func openDisk(disk string) (string, int64, error) {
	dev, err := filepath.EvalSymlinks(disk)
	if err != nil {
		return "", 0, fmt.Errorf("resolve device: %w", err)
	}
	f, err := os.Open(dev)
	if err != nil {
		return "", 0, fmt.Errorf("open device: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", 0, fmt.Errorf("stat device: %w", err)
	}
	if st.Mode()&os.ModeDevice == 0 || st.Mode()&os.ModeCharDevice != 0 {
		return "", 0, fmt.Errorf("%s is not a block device", dev)
	}
	if _, err := os.Stat(filepath.Join("/sys/class/block", filepath.Base(dev), "partition")); err == nil {
		return "", 0, fmt.Errorf("%s is a partition, not a whole disk", dev)
	}
	// A block device's size is where seeking to its end lands.
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return "", 0, fmt.Errorf("size of %s: %w", dev, err)
	}
	return dev, size, nil
}
