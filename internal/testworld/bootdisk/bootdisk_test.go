package bootdisk_test

import (
	"context"
	"os"
	"regexp"
	"testing"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/bootdisk"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/loopdev"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/qemuboot"
)

// TestBootDiskBootsBothWays builds (or takes from the cache) the world's
// boot disk and boots it under SeaBIOS and OVMF to the fixture's marker.
func TestBootDiskBootsBothWays(t *testing.T) {
	loopdev.RequireRoot(t)
	disk, err := bootdisk.Build(context.Background(), bootdisk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(disk.Path)
	if err != nil || st.Size() != bootdisk.Size {
		t.Fatalf("disk %s: %v, size %v, want %d", disk.Path, err, st, bootdisk.Size)
	}
	again, err := bootdisk.Build(context.Background(), bootdisk.Options{})
	if err != nil || again.Path != disk.Path {
		t.Fatalf("second Build gave %v, %v; want the cached %s", again, err, disk.Path)
	}
	for _, fw := range []qemuboot.Firmware{qemuboot.BIOS, qemuboot.UEFI} {
		t.Run(string(fw), func(t *testing.T) {
			qemuboot.MustBoot(t, qemuboot.Options{Image: disk.Path, Firmware: fw, Ready: regexp.MustCompile(regexp.QuoteMeta(disk.Marker))})
		})
	}
}
