package volume

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
)

// espBootPath is the removable-media path UEFI firmware boots without any
// NVRAM boot entry: the only path that works for an AMI.
const espBootPath = "EFI/BOOT/BOOTX64.EFI"

// mtoolsEnv makes mtools accept any FAT geometry, ignore ~/.mtoolsrc and
// date the entries it makes FixedTime (SOURCE_DATE_EPOCH), so that the
// EFI system partition's bytes do not depend on when it was written.
var mtoolsEnv = append([]string{"MTOOLS_SKIP_CHECK=1", "MTOOLSRC=/dev/null"}, fixedTimeEnv()...)

// writeESPFile makes the FAT filesystem on esp hold data at name (a path
// like "EFI/BOOT/BOOTX64.EFI"), creating directories as needed, with mtools:
// no vfat mount, which this kernel (and many containers) cannot do. It
// reports whether it wrote anything: a file already holding data is left
// alone so its blocks stay unchanged.
func writeESPFile(ctx context.Context, log *slog.Logger, esp, name string, data []byte) (bool, error) {
	target := "::/" + name
	old, err := run(ctx, log, command{device: esp, name: "mtype", args: []string{"-i", esp, target}, env: mtoolsEnv})
	if err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	// Create the parent directories that are missing.
	dir := filepath.Dir(name)
	var parents []string
	for d := dir; d != "." && d != "/"; d = filepath.Dir(d) {
		parents = append([]string{d}, parents...)
	}
	for _, d := range parents {
		if _, err := run(ctx, log, command{device: esp, name: "mdir", args: []string{"-b", "-i", esp, "::/" + d}, env: mtoolsEnv}); err == nil {
			continue
		}
		if _, err := run(ctx, log, command{device: esp, name: "mmd", args: []string{"-i", esp, "::/" + d}, env: mtoolsEnv}); err != nil {
			return false, fmt.Errorf("create %s on the EFI system partition: %w", d, err)
		}
	}
	tmp, err := os.CreateTemp("", "autoami-esp-")
	if err != nil {
		return false, fmt.Errorf("write %s to the EFI system partition: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return false, fmt.Errorf("write %s to the EFI system partition: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("write %s to the EFI system partition: %w", name, err)
	}
	if _, err := run(ctx, log, command{device: esp, name: "mcopy", args: []string{"-o", "-i", esp, tmp.Name(), target}, env: mtoolsEnv}); err != nil {
		return false, fmt.Errorf("write %s to the EFI system partition: %w", name, err)
	}
	return true, nil
}
