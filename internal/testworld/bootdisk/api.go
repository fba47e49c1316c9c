// Package bootdisk gives the test world a real bootable root disk: the boot
// tests' revision-1 tree (internal/testworld/bootfs) unpacked by the unpacker's
// own engine onto a GPT disk (BIOS boot partition, EFI system partition, ext4
// root) made bootable for BIOS and UEFI by the unpacker's volume package. The
// local AWS puts it into the root snapshots of the images it seeds (vendor
// images, Debian's), so layered streams start from a disk that boots, and
// booting a published AMI proves something.
//
// The disk is built once per tree and cached beside the trees (a sparse file
// of a few hundred MiB holding some tens of MiB); callers must treat the
// returned file as read-only and copy it (sparsely) before writing.
package bootdisk

import (
	"context"
	"log/slog"
)

// Size is the disk's size in bytes: the size of the images' root volumes
// (1 GiB, so a volume created from it is a whole number of GiB).
const Size = 1 << 30

// Disk is a built, cached bootable disk.
type Disk struct {
	// Path is the raw disk image (sparse); read-only for callers.
	Path string
	// Marker is what the image prints on its serial console when it has
	// booted, before the login prompt ("AUTOAMI-BOOT-OK rev=1").
	Marker string
	// KernelVersion is the kernel on the disk.
	KernelVersion string
}

// Options configure Build.
type Options struct {
	// Logger receives progress; nil means slog.Default().
	Logger *slog.Logger
}

// Build returns the cached disk, building it (needs root: loop devices,
// mkfs, mount) when the cache lacks it for the current tree. Concurrent
// builders in several processes are safe: the disk is written to a temporary
// file and renamed into place.
func Build(ctx context.Context, opts Options) (*Disk, error) { return build(ctx, opts) }
