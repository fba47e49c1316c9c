package boottest

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/bootfs"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/loopdev"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/qemuboot"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/volume"
)

// volumeSize is the from-scratch test volume: ESP, BIOS boot and a root
// that holds a revision several times over.
const volumeSize = 320 << 20

// TestFromScratchVolumeBootsAndPatches lays out an empty volume, unpacks
// revision 1, boots it under BIOS and UEFI, patches it in place to revision
// 2 (kernel command line, initramfs and GRUB modules change) and boots it
// again in both modes.
func TestFromScratchVolumeBootsAndPatches(t *testing.T) {
	loopdev.RequireRoot(t)
	trees := bootfs.MustBuild(t)
	ctx := context.Background()
	img := loopdev.NewImage(t, "vol-scratch.img", volumeSize)
	var times bootTimes
	t.Cleanup(func() { t.Logf("boot wall times: %s", times) })

	// Revision 1 on an empty volume.
	dev := loopdev.Attach(t, img)
	layout, err := volume.Create(ctx, dev.Path, volume.CreateOptions{Seed: "boot/scratch", AssumeZeroed: true})
	if err != nil {
		t.Fatal(err)
	}
	root, unmount := loopdev.Mount(t, layout.Root.Device, "ext4")
	res := unpackTree(t, root, trees.Rev1)
	rep, err := volume.MakeBootable(ctx, layout, root, volume.BootOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("revision 1: %d entries created, %d bytes written; boot: %s; wrote %v", res.Created, res.BytesWritten, rep.CommandLine, rep.Written)
	if want := "/boot/vmlinuz-" + trees.KernelVersion; len(rep.Entries) != 1 || rep.Entries[0].Kernel != want {
		t.Fatalf("boot entries %+v, want one for %s", rep.Entries, want)
	}
	if rep.ModulesFrom[volume.BIOS] != "/usr/lib/grub/i386-pc" || rep.ModulesFrom[volume.UEFI] != "/usr/lib/grub/x86_64-efi" {
		t.Errorf("revision 1 carries no GRUB, want the host's modules; got %v", rep.ModulesFrom)
	}
	unmount()
	dev.Detach()

	for _, fw := range []qemuboot.Firmware{qemuboot.BIOS, qemuboot.UEFI} {
		t.Run("rev1-"+string(fw), func(t *testing.T) {
			r := qemuboot.MustBoot(t, qemuboot.Options{Image: img, Firmware: fw})
			times.add("rev1/"+string(fw), r)
			t.Log(markerLine(t, r))
			requireConsole(t, r,
				`AUTOAMI-INITRAMFS rev=1`,
				`AUTOAMI-BOOT-OK rev=1 overlay=none root=/dev/nvme0n1p3 kernel=`+regexpQuote(trees.KernelVersion),
				`cmdline=\[[^\]]*root=LABEL=`+volume.DefaultRootLabel+` ro console=tty0 console=ttyS0,115200n8 panic=-1\]`)
		})
	}
	if t.Failed() {
		return
	}

	// Revision 2, patched in place onto the same volume.
	dev = loopdev.Attach(t, img)
	again, err := volume.Find(ctx, dev.Path, volume.FindOptions{RootLabel: volume.DefaultRootLabel})
	if err != nil {
		t.Fatal(err)
	}
	if again.Root.Number != layout.Root.Number || again.Root.UUID != layout.Root.UUID || again.ESP == nil || again.BIOSBoot == nil {
		t.Fatalf("Find after revision 1 gave root %+v ESP %v BIOS boot %v; want partition %d, UUID %s, and both boot partitions",
			again.Root, again.ESP, again.BIOSBoot, layout.Root.Number, layout.Root.UUID)
	}
	root, unmount = loopdev.Mount(t, again.Root.Device, "ext4")
	res = unpackTree(t, root, trees.Rev2)
	rep, err = volume.MakeBootable(ctx, again, root, volume.BootOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("revision 2: %d created, %d updated, %d deleted, %d bytes written; boot: %s; wrote %v",
		res.Created, res.Updated, res.Deleted, res.BytesWritten, rep.CommandLine, rep.Written)
	if want := filepath.Join(root, "usr/lib/grub/i386-pc"); rep.ModulesFrom[volume.BIOS] != want {
		t.Errorf("revision 2 carries GRUB; BIOS image built from %s, want %s", rep.ModulesFrom[volume.BIOS], want)
	}
	if want := filepath.Join(root, "usr/lib/grub/x86_64-efi"); rep.ModulesFrom[volume.UEFI] != want {
		t.Errorf("revision 2 carries GRUB; UEFI image built from %s, want %s", rep.ModulesFrom[volume.UEFI], want)
	}
	if !slices.Contains(rep.Written, "bios-boot") || !slices.Contains(rep.Written, "esp:EFI/BOOT/BOOTX64.EFI") {
		t.Errorf("the kernel command line changed but the boot images were not rewritten: %v", rep.Written)
	}
	// Idempotent: a second run over the same root writes nothing.
	if rep2, err := volume.MakeBootable(ctx, again, root, volume.BootOptions{}); err != nil || len(rep2.Written) != 0 {
		t.Errorf("MakeBootable again: wrote %v, error %v; want nothing written", rep2.Written, err)
	}
	unmount()
	dev.Detach()

	for _, fw := range []qemuboot.Firmware{qemuboot.BIOS, qemuboot.UEFI} {
		t.Run("rev2-"+string(fw), func(t *testing.T) {
			r := qemuboot.MustBoot(t, qemuboot.Options{Image: img, Firmware: fw})
			times.add("rev2/"+string(fw), r)
			t.Log(markerLine(t, r))
			requireConsole(t, r,
				`AUTOAMI-INITRAMFS rev=2`,
				`AUTOAMI-BOOT-OK rev=2 overlay=none root=/dev/nvme0n1p3`,
				`cmdline=\[[^\]]*root=LABEL=`+volume.DefaultRootLabel+` ro quiet console=tty0 console=ttyS0,115200n8 panic=-1 autoami.revision=2\]`)
		})
	}
}
