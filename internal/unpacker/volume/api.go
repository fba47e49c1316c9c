// Package volume lays out, finds and boots the block devices the unpacker
// patches: the persistent volume of an image stream.
//
// A from-scratch volume gets a fixed GPT layout (Create): partition 1 a BIOS
// boot partition, 2 an EFI system partition (FAT32), 3 an ext4 root with a
// label and the "Linux root (x86-64)" type. A volume made from a base AMI's
// snapshot keeps the layout it came with; Find locates its root partition
// (GPT or MBR; by type, label and content).
//
// MakeBootable writes GRUB for BIOS (core.img embedded in the BIOS boot
// partition, boot.img in the MBR) and for UEFI (EFI/BOOT/BOOTX64.EFI on the
// ESP, written with mtools: no vfat mount needed). The GRUB menu is generated
// from the kernels found in the root's /boot and embedded in those images, so
// the root filesystem holds exactly the revision's content, and booting
// depends only on the root's label. The daemon calls MakeBootable after every
// unpack, when preparing the volume for a snapshot: kernels, initramfs and
// the kernel command line (/etc/kernel/cmdline) may change between revisions.
// It prefers the image's own GRUB modules (/usr/lib/grub/i386-pc and
// x86_64-efi in the root) to the host's, and never executes image content.
//
// Every external command's error names the device it ran against.
package volume

import (
	"context"
	"log/slog"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
)

// DefaultRootLabel is the ext4 label of a from-scratch root filesystem; the
// kernel command line finds the root by it (root=LABEL=autoami-root).
const DefaultRootLabel = "autoami-root"

// Table is the kind of partition table on a disk.
type Table string

const (
	// GPT is a GUID partition table (with a protective MBR).
	GPT Table = "gpt"
	// MBR is a DOS partition table.
	MBR Table = "dos"
)

// Firmware is a boot firmware mode an image is made bootable for.
type Firmware string

const (
	// BIOS is legacy BIOS boot (SeaBIOS; EC2 boot mode "legacy-bios").
	BIOS Firmware = "bios"
	// UEFI is UEFI boot (OVMF; EC2 boot mode "uefi").
	UEFI Firmware = "uefi"
)

// GPT partition type GUIDs used and recognised by this package.
const (
	TypeBIOSBoot       = "21686148-6449-6E6F-744E-656564454649"
	TypeESP            = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	TypeLinuxRootAMD64 = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
	TypeLinuxData      = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
)

// Partition is one partition of a disk, as probed.
type Partition struct {
	// Number is the partition number (1-based, as in /dev/loop0p3).
	Number int
	// Device is the partition's block device node, e.g. /dev/loop0p3.
	Device string
	// Start and Size are in bytes.
	Start, Size int64
	// Type is the GPT type GUID (upper case) or, on MBR, the type byte in
	// hex ("83").
	Type string
	// Filesystem is the filesystem type blkid reports ("ext4", "vfat"), or
	// "" when none was found.
	Filesystem string
	// Label and UUID are the filesystem's label and UUID, when it has them.
	Label, UUID string
}

// Layout is a disk's partitioning as far as the unpacker cares.
type Layout struct {
	// Disk is the whole-disk block device (symlinks resolved).
	Disk string
	// Table is the partition table kind.
	Table Table
	// Root is the partition holding the root filesystem the unpacker patches.
	Root Partition
	// ESP is the EFI system partition, nil when the disk has none.
	ESP *Partition
	// BIOSBoot is the GPT BIOS boot partition, nil when the disk has none.
	BIOSBoot *Partition
}

// CreateOptions configure Create.
type CreateOptions struct {
	// RootLabel is the ext4 label of the root; empty means DefaultRootLabel.
	// At most 16 bytes.
	RootLabel string
	// ESPSize is the EFI system partition's size in bytes; 0 means 100 MiB.
	ESPSize int64
	// Seed, when set, derives the disk and partition GUIDs and the
	// filesystem UUIDs from it (e.g. the stream name), so that the same
	// stream gets the same identifiers everywhere; empty means random.
	Seed string
	// AssumeZeroed says the device reads as zeros (a new EBS volume, a new
	// sparse file): mkfs then neither zeroes inode tables nor leaves that
	// to a background thread that would dirty blocks between snapshots.
	// When false, mkfs initialises them fully up front.
	AssumeZeroed bool
	// Overwrite allows Create on a disk that already carries a partition
	// table or a filesystem; without it Create refuses such a disk.
	Overwrite bool
	// Logger receives progress; nil means slog.Default().
	Logger *slog.Logger
}

// Create partitions disk from scratch (GPT: BIOS boot, ESP, ext4 root),
// makes sure the partition nodes exist, formats the ESP (FAT32) and the root
// (ext4 with the label) and returns the new layout. The volume is not
// bootable until MakeBootable ran on a root holding a kernel.
func Create(ctx context.Context, disk string, opts CreateOptions) (*Layout, error) {
	return create(ctx, disk, opts)
}

// FindOptions configure Find.
type FindOptions struct {
	// RootLabel, when set, is the filesystem label the root is expected to
	// carry; a partition with it wins over every other hint.
	RootLabel string
	// Logger receives the reasons for the choice; nil means slog.Default().
	Logger *slog.Logger
}

// Find reads disk's partition table (GPT or MBR), makes sure the partition
// nodes exist, and picks the Linux root partition: the one labelled
// opts.RootLabel; else the only partition of GPT type "Linux root (x86-64)";
// else the only Linux filesystem; else the one whose content (mounted
// read-only, without journal replay) holds /etc/os-release. Ambiguity is an
// error naming the candidates. A disk without a partition table but with a
// filesystem is returned as a layout whose root is the whole disk.
func Find(ctx context.Context, disk string, opts FindOptions) (*Layout, error) {
	return find(ctx, disk, opts)
}

// BootOptions configure MakeBootable.
type BootOptions struct {
	// Firmware lists the firmware modes to install for; empty means both.
	Firmware []Firmware
	// RootLabel is put in root=LABEL=… and used by GRUB to find the root;
	// empty means the layout's root filesystem label.
	RootLabel string
	// DefaultArgs are the kernel arguments used when the root has no
	// /etc/kernel/cmdline; nil means "ro console=tty0 console=ttyS0,115200n8".
	// When the file exists its content is used instead, and the console
	// arguments are added when it names no console.
	DefaultArgs []string
	// Timeout is GRUB's menu timeout in seconds (0: boot the default entry
	// at once; the serial console can still interrupt with Esc).
	Timeout int
	// HostGRUBDir is the directory holding the host's GRUB platform
	// directories (i386-pc, x86_64-efi); empty means /usr/lib/grub.
	HostGRUBDir string
	// Logger receives what was chosen and written; nil means slog.Default().
	Logger *slog.Logger
}

// CheckBootable reports, naming what is missing, whether a revision (a tree
// manifest) holds what MakeBootable needs of a root: a kernel
// (boot/vmlinuz-VERSION, a regular file; boot may be a relative symlink
// inside the root) and, when present, a valid etc/kernel/cmdline. The
// daemon calls it before it changes a volume, so a revision that cannot be
// made bootable never leaves a stream dirty.
func CheckBootable(m *manifest.Manifest) error { return checkBootable(m) }

// BootEntry is one GRUB menu entry MakeBootable generated.
type BootEntry struct {
	// Title is the menu title.
	Title string
	// Kernel and Initrd are paths inside the root filesystem ("/boot/…");
	// Initrd is "" when the kernel has none.
	Kernel, Initrd string
	// Version is the kernel version taken from the file name ("6.1.0-28-amd64").
	Version string
}

// BootReport says what MakeBootable did.
type BootReport struct {
	// Entries are the menu entries, the default one first.
	Entries []BootEntry
	// CommandLine is the kernel command line every entry uses.
	CommandLine string
	// ModulesFrom maps each firmware to the GRUB module directory its image
	// was built from (the image's own, or the host's).
	ModulesFrom map[Firmware]string
	// Written lists what was rewritten ("mbr", "bios-boot", "esp:EFI/BOOT/BOOTX64.EFI");
	// parts already holding the same bytes are left alone, so unchanged
	// blocks stay unchanged for incremental snapshots.
	Written []string
}

// MakeBootable makes the volume laid out as layout bootable for the
// requested firmware modes, with a GRUB menu generated from the kernels in
// rootDir (the root partition, mounted). It needs the layout's BIOS boot
// partition for BIOS and its ESP for UEFI. It is idempotent and is meant to
// run after every unpack, before the volume is synced and snapshotted; it
// writes nothing into rootDir.
func MakeBootable(ctx context.Context, layout *Layout, rootDir string, opts BootOptions) (*BootReport, error) {
	return makeBootable(ctx, layout, rootDir, opts)
}

// NormalizeOptions configure Normalize.
type NormalizeOptions struct {
	// Logger receives what was changed; nil means slog.Default().
	Logger *slog.Logger
}

// Normalize makes the unmounted ext2/3/4 root of layout hold bytes that
// depend only on its content, as the promise of an image identical in every
// target needs: the kernel stamps what it writes with the clock, draws inode
// generations at random and leaves its last transactions in the journal.
// Every inode in use (but the reserved ones) gets its modification time as
// access, change and creation time, generation 0 and change counter 0 (with
// its checksum, and e2fsck rewriting the directory and extent block
// checksums seeded by a changed generation); the journal is emptied to
// zeros with its next transaction 1; the superblock reads as never mounted,
// made, written and checked at FixedTime. With Create's derived identifiers
// and MakeBootable's deterministic images, two volumes of the same stream
// patched to the same content in the same order are then byte-identical.
//
// It refuses a mounted root (it opens the device exclusively), one not
// cleanly unmounted, with recorded errors or a journal holding
// transactions, and one whose inode checksums it does not reproduce. It is
// idempotent, rewrites only what differs, and is meant to run after the
// root's last unmount before a snapshot; the next mount changes the
// superblock again.
func Normalize(ctx context.Context, layout *Layout, opts NormalizeOptions) error {
	return normalize(ctx, layout, opts)
}

// GrowOptions configure Grow and GrowthNeeded.
type GrowOptions struct {
	// Logger receives what was found and changed; nil means slog.Default().
	Logger *slog.Logger
}

// GrowReport says what Grow changed; sizes are in bytes.
type GrowReport struct {
	// DiskBytes is the size of the disk.
	DiskBytes int64
	// RootBefore and RootAfter are the root partition's sizes.
	RootBefore, RootAfter int64
	// FilesystemBefore and FilesystemAfter are the root file system's sizes.
	FilesystemBefore, FilesystemAfter int64
}

// GrowthNeeded reports whether Grow would change layout's disk: its GPT
// ends before the disk does (the volume grew), its root partition ends
// before the table's usable space, or its file system is smaller than the
// partition. why describes what it found. A layout Grow does not grow (not
// GPT, a root that is not the last partition or not ext2/3/4) is not an
// error: needed is false and why says so. It reads the disk and changes
// nothing; the root may be mounted.
func GrowthNeeded(ctx context.Context, layout *Layout, opts GrowOptions) (needed bool, why string, err error) {
	return growthNeeded(ctx, layout, opts)
}

// Grow makes the root of layout fill its disk after the disk grew (an EBS
// volume after ModifyVolume): it moves the GPT's backup to the disk's end,
// extends the root partition (the last one) to the end of the usable
// space, keeping its start, type, GUID, name and attributes, has the
// kernel re-read its size (partx, as the disk may be in use), then checks
// and grows the ext2/3/4 root file system with resize2fs. The root must be
// unmounted. Every step is skipped when already done, so a Grow
// interrupted half-way is finished by the next one. No clock and no
// random numbers are involved (e2fsprogs record FixedTime): the same
// volume grown to the same size holds the same bytes anywhere. It returns
// the new layout.
func Grow(ctx context.Context, layout *Layout, opts GrowOptions) (*Layout, *GrowReport, error) {
	return grow(ctx, layout, opts)
}
