package boottest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/bootfs"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/loopdev"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/qemuboot"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/volume"
)

// TestBrokenBootChainFails shows that the boot check can fail, and fails
// fast: a volume whose initramfs is damaged after the boot loader was made
// panics in the kernel (panic=-1 reboots, qemu's -no-reboot ends the run),
// and the error carries the console's last lines.
func TestBrokenBootChainFails(t *testing.T) {
	loopdev.RequireRoot(t)
	trees := bootfs.MustBuild(t)
	ctx := context.Background()
	img := loopdev.NewImage(t, "vol-broken.img", volumeSize)
	dev := loopdev.Attach(t, img)
	layout, err := volume.Create(ctx, dev.Path, volume.CreateOptions{AssumeZeroed: true})
	if err != nil {
		t.Fatal(err)
	}
	root, unmount := loopdev.Mount(t, layout.Root.Device, "ext4")
	unpackTree(t, root, trees.Rev1)
	if _, err := volume.MakeBootable(ctx, layout, root, volume.BootOptions{Firmware: []volume.Firmware{volume.BIOS}}); err != nil {
		t.Fatal(err)
	}
	initrd := filepath.Join(root, "boot", "initrd.img-"+trees.KernelVersion)
	if err := os.WriteFile(initrd, []byte("not an initramfs"), 0o644); err != nil {
		t.Fatal(err)
	}
	unmount()
	dev.Detach()

	start := time.Now()
	_, err = qemuboot.Boot(ctx, qemuboot.Options{Image: img, Firmware: qemuboot.BIOS, Timeout: 3 * time.Minute})
	if err == nil {
		t.Fatal("a volume with a damaged initramfs booted")
	}
	t.Logf("failed as it should after %s: %v", time.Since(start).Round(time.Second), err)
	for _, want := range []string{"qemu stopped", "Kernel panic", "last console lines"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("boot error lacks %q", want)
		}
	}
}
