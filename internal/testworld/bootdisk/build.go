package bootdisk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/bootfs"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/patch"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/volume"
)

// seed derives the disk's GUIDs and filesystem UUIDs, so every build of one
// tree gives the same identifiers.
const seed = "testworld/bootdisk"

func build(ctx context.Context, opts Options) (*Disk, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	trees, err := bootfs.Build(ctx)
	if err != nil {
		return nil, fmt.Errorf("boot disk: %w", err)
	}
	m, err := manifest.FromDirectory(ctx, trees.Rev1, manifest.DirOptions{})
	if err != nil {
		return nil, fmt.Errorf("boot disk: manifest of %s: %w", trees.Rev1, err)
	}
	digest, err := m.Digest()
	if err != nil {
		return nil, fmt.Errorf("boot disk: digest of %s: %w", trees.Rev1, err)
	}
	disk := &Disk{
		Path:          filepath.Join(trees.Dir, "disks", digest.String()[:16]+".img"),
		Marker:        "AUTOAMI-BOOT-OK rev=1",
		KernelVersion: trees.KernelVersion,
	}
	if st, err := os.Stat(disk.Path); err == nil && st.Size() == Size {
		return disk, nil
	}
	if err := os.MkdirAll(filepath.Dir(disk.Path), 0o755); err != nil {
		return nil, fmt.Errorf("boot disk: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(disk.Path), ".building-*.img")
	if err != nil {
		return nil, fmt.Errorf("boot disk: %w", err)
	}
	tmpPath := tmp.Name()
	defer os.Remove(tmpPath) // after a successful rename this finds nothing
	if err := tmp.Truncate(Size); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("boot disk: size %s: %w", tmpPath, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("boot disk: %w", err)
	}
	log.Info("building the test world's boot disk", "tree", trees.Rev1, "disk", disk.Path)
	if err := writeDisk(ctx, tmpPath, trees.Rev1, m, log); err != nil {
		return nil, fmt.Errorf("boot disk from %s: %w", trees.Rev1, err)
	}
	if err := os.Rename(tmpPath, disk.Path); err != nil {
		return nil, fmt.Errorf("boot disk: %w", err)
	}
	return disk, nil
}

// writeDisk lays out, fills and makes bootable the disk image at path.
func writeDisk(ctx context.Context, path, tree string, m *manifest.Manifest, log *slog.Logger) (err error) {
	out, err := exec.CommandContext(ctx, "losetup", "--find", "--show", "--partscan", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("losetup %s: %w: %s", path, err, strings.TrimSpace(string(out)))
	}
	dev := strings.TrimSpace(string(out))
	defer func() {
		if out, derr := exec.Command("losetup", "-d", dev).CombinedOutput(); derr != nil {
			err = errors.Join(err, fmt.Errorf("losetup -d %s: %w: %s", dev, derr, strings.TrimSpace(string(out))))
		}
	}()
	layout, err := volume.Create(ctx, dev, volume.CreateOptions{Seed: seed, AssumeZeroed: true, Logger: log})
	if err != nil {
		return err
	}
	mnt, err := os.MkdirTemp("", "autoami-bootdisk-")
	if err != nil {
		return err
	}
	defer os.Remove(mnt)
	if err := unix.Mount(layout.Root.Device, mnt, "ext4", 0, ""); err != nil {
		return fmt.Errorf("mount %s on %s: %w", layout.Root.Device, mnt, err)
	}
	mounted := true
	defer func() {
		if mounted {
			err = errors.Join(err, unix.Unmount(mnt, 0))
		}
	}()
	if _, err := patch.Apply(ctx, mnt, m, manifest.DirectorySource(tree, m), patch.Options{}); err != nil {
		return fmt.Errorf("unpack %s: %w", tree, err)
	}
	if _, err := volume.MakeBootable(ctx, layout, mnt, volume.BootOptions{Logger: log}); err != nil {
		return err
	}
	mounted = false
	if err := unix.Unmount(mnt, 0); err != nil {
		return fmt.Errorf("unmount %s: %w", mnt, err)
	}
	if f, err := os.OpenFile(dev, os.O_RDWR, 0); err == nil {
		_ = f.Sync()
		f.Close()
	}
	return nil
}
