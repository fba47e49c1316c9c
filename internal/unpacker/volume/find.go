package volume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// linuxFilesystems are the filesystems a Linux root can be on.
var linuxFilesystems = map[string]bool{"ext4": true, "ext3": true, "ext2": true, "xfs": true, "btrfs": true}

// MBR partition types this package recognises.
const (
	mbrTypeESP = "EF"
)

func find(ctx context.Context, disk string, opts FindOptions) (*Layout, error) {
	log := loggerOr(opts.Logger)
	dev, size, err := openDisk(disk)
	if err != nil {
		return nil, fmt.Errorf("find root partition on %s: %w", disk, err)
	}
	log = log.With("device", dev)
	table, parts, err := readTable(ctx, log, dev)
	if errors.Is(err, errNoPartitionTable) {
		return wholeDiskLayout(ctx, log, dev, size)
	}
	if err != nil {
		return nil, fmt.Errorf("find root partition on %s: %w", dev, err)
	}
	if err := ensureNodes(ctx, log, dev, parts); err != nil {
		return nil, fmt.Errorf("find root partition on %s: %w", dev, err)
	}
	if err := probePartitions(ctx, log, parts); err != nil {
		return nil, fmt.Errorf("find root partition on %s: %w", dev, err)
	}
	l := &Layout{Disk: dev, Table: table}
	var candidates []Partition
	for i := range parts {
		p := parts[i]
		switch {
		case table == GPT && p.Type == TypeESP, table == MBR && p.Type == mbrTypeESP:
			if l.ESP == nil {
				l.ESP = &parts[i]
			}
		case table == GPT && p.Type == TypeBIOSBoot:
			if l.BIOSBoot == nil {
				l.BIOSBoot = &parts[i]
			}
		case linuxFilesystems[p.Filesystem]:
			candidates = append(candidates, p)
		}
	}
	root, why, err := chooseRoot(ctx, log, candidates, opts.RootLabel)
	if err != nil {
		return nil, fmt.Errorf("find root partition on %s (%s table; %s): %w", dev, table, describe(parts), err)
	}
	l.Root = root
	log.Info("found root partition", "root", root.Device, "number", root.Number,
		"filesystem", root.Filesystem, "label", root.Label, "reason", why, "table", string(table))
	return l, nil
}

// wholeDiskLayout is the layout of a disk with a filesystem but no
// partition table.
func wholeDiskLayout(ctx context.Context, log *slog.Logger, dev string, size int64) (*Layout, error) {
	info, err := probeFS(ctx, log, dev)
	if err != nil {
		return nil, fmt.Errorf("find root partition on %s: %w", dev, err)
	}
	if !linuxFilesystems[info.Type] {
		return nil, fmt.Errorf("find root partition on %s: no partition table and no Linux filesystem (found %q)", dev, info.Type)
	}
	log.Info("found root filesystem on the whole disk", "filesystem", info.Type, "label", info.Label)
	return &Layout{Disk: dev, Root: Partition{
		Device: dev, Size: size, Filesystem: info.Type, Label: info.Label, UUID: info.UUID,
	}}, nil
}

// chooseRoot picks the root among Linux filesystems and says why.
func chooseRoot(ctx context.Context, log *slog.Logger, candidates []Partition, label string) (Partition, string, error) {
	if len(candidates) == 0 {
		return Partition{}, "", errors.New("no partition holds a Linux filesystem")
	}
	if label != "" {
		hits := filter(candidates, func(p Partition) bool { return p.Label == label })
		if len(hits) == 1 {
			return hits[0], "label " + label, nil
		}
		if len(hits) > 1 {
			return Partition{}, "", fmt.Errorf("%d partitions carry the root label %q: %s", len(hits), label, describe(hits))
		}
		log.Warn("no partition carries the expected root label; using other hints", "label", label)
	}
	if hits := filter(candidates, func(p Partition) bool { return p.Type == TypeLinuxRootAMD64 }); len(hits) == 1 {
		return hits[0], "partition type Linux root (x86-64)", nil
	}
	if len(candidates) == 1 {
		return candidates[0], "only Linux filesystem", nil
	}
	var withOS []Partition
	for _, p := range candidates {
		ok, err := holdsOS(p)
		if err != nil {
			return Partition{}, "", err
		}
		if ok {
			withOS = append(withOS, p)
		}
	}
	if len(withOS) == 1 {
		return withOS[0], "only Linux filesystem holding etc/os-release", nil
	}
	return Partition{}, "", fmt.Errorf("cannot tell the root among %d Linux filesystems (%d hold etc/os-release): %s", len(candidates), len(withOS), describe(candidates))
}

// holdsOS mounts p read-only, without replaying a journal, and reports
// whether it holds etc/os-release or usr/lib/os-release.
func holdsOS(p Partition) (bool, error) {
	dir, err := os.MkdirTemp("", "autoami-probe-")
	if err != nil {
		return false, fmt.Errorf("probe content of %s: %w", p.Device, err)
	}
	defer os.Remove(dir)
	data := ""
	switch p.Filesystem {
	case "ext3", "ext4":
		data = "noload"
	case "xfs":
		// nouuid: the volume may be a copy of the snapshot this instance
		// booted from, whose root (same UUID) is mounted.
		data = "norecovery,nouuid"
	}
	if err := unix.Mount(p.Device, dir, p.Filesystem, unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOSUID|unix.MS_NOEXEC, data); err != nil {
		return false, fmt.Errorf("probe content of %s: mount read-only: %w", p.Device, err)
	}
	defer unix.Unmount(dir, 0)
	for _, f := range []string{"etc/os-release", "usr/lib/os-release"} {
		if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
			return true, nil
		}
	}
	return false, nil
}

func filter(ps []Partition, keep func(Partition) bool) []Partition {
	var out []Partition
	for _, p := range ps {
		if keep(p) {
			out = append(out, p)
		}
	}
	return out
}

// describe lists partitions for error messages: "1 (ext4 "root"), 15 (vfat)".
func describe(ps []Partition) string {
	var b []string
	for _, p := range ps {
		fs := p.Filesystem
		if fs == "" {
			fs = "no filesystem"
		}
		s := fmt.Sprintf("%d %s (%s", p.Number, p.Device, fs)
		if p.Label != "" {
			s += fmt.Sprintf(" %q", p.Label)
		}
		b = append(b, s+")")
	}
	if len(b) == 0 {
		return "no partitions"
	}
	return "partitions " + strings.Join(b, ", ")
}
