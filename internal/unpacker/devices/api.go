// Package devices finds the block device that holds a volume, named by its
// EBS volume ID. On EC2 a volume the provider attached shows up as an NVMe
// namespace whose serial is the volume ID (udev links it as
// /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol…), or on older
// instance types under the xvd/sd name given to AttachVolume. In local mode
// (--local-devices DIR) a volume ID names a sparse file DIR/<id>.img attached
// as a loop device, so the same daemon code runs on a laptop, in CI and in
// the demo.
package devices

import (
	"context"
	"errors"
	"time"
)

// Device is the block device of one volume.
type Device struct {
	VolumeID string
	// Path is the whole-volume block device, e.g. /dev/nvme1n1 or /dev/loop3.
	Path      string
	SizeBytes int64
	// BackingFile is the sparse file behind a loop device (local mode only).
	BackingFile string
}

// AttachRequest asks for the device of a volume.
type AttachRequest struct {
	VolumeID string
	// DeviceName is the name given to AttachVolume (e.g. /dev/sdf), used when
	// no NVMe device carries the volume ID.
	DeviceName string
	// SizeBytes sizes a new sparse file (local mode only).
	SizeBytes int64
}

// Finder finds (or, in local mode, makes) the block devices of volumes.
type Finder interface {
	// Attach returns the device of a volume, waiting until it appears or ctx
	// ends. In local mode it creates the sparse file when missing and
	// attaches it to a loop device unless one is attached already.
	Attach(ctx context.Context, req AttachRequest) (Device, error)
	// Lookup returns the device of a volume attached before (after a daemon
	// restart, say) without waiting; ErrNotFound when it is not visible. In
	// local mode it re-attaches an existing file that lost its loop device.
	Lookup(ctx context.Context, volumeID string) (Device, error)
	// Detach lets go of a device: in local mode it detaches the loop device
	// (the file, like an EBS volume, stays); on EC2 it does nothing, as the
	// caller detaches the volume through AWS.
	Detach(ctx context.Context, volumeID string) error
	// Local reports whether volumes are local sparse files.
	Local() bool
}

// ErrNotFound is returned (wrapped) when a volume has no visible device.
var ErrNotFound = errors.New("no block device for volume")

// EBSOptions configure NewEBS. The zero value is right for an EC2 instance.
type EBSOptions struct {
	// DevDir and SysDir default to /dev and /sys (tests point them elsewhere).
	DevDir, SysDir string
	// PollInterval is how often Attach looks for the device (default 250ms).
	PollInterval time.Duration
}

// NewEBS returns the Finder for an EC2 instance.
func NewEBS(opts EBSOptions) Finder { return newEBS(opts) }

// NewLocal returns the local-mode Finder backing volumes by sparse files in dir.
func NewLocal(dir string) (Finder, error) { return newLocal(dir) }

// PartitionPath is the device node of partition n of a whole-disk device:
// /dev/loop3 → /dev/loop3p1, /dev/nvme1n1 → /dev/nvme1n1p1, /dev/xvdf → /dev/xvdf1.
func PartitionPath(device string, n int) string { return partitionPath(device, n) }

// EnsurePartitionNodes makes the kernel and /dev agree with a device's
// partition table (partx, as there may be no udev) and returns the partition
// device nodes in table order; none when the device has no partition table.
func EnsurePartitionNodes(ctx context.Context, device string) ([]string, error) {
	return ensurePartitionNodes(ctx, device, "/sys")
}

// SizeOf returns the size in bytes of a block device or file.
func SizeOf(path string) (int64, error) { return sizeOf(path) }

// LoopsOf lists the loop devices attached to file (tests use it to clean up).
func LoopsOf(ctx context.Context, file string) ([]string, error) { return loopsOf(ctx, file) }
