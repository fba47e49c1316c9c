package boottest

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/bootfs"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/loopdev"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/qemuboot"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/devices"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/patch"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/volume"
)

// baseRootLabel is the stand-in base image's root label (Ubuntu's cloud
// images use it); nothing in autoami knows it.
const baseRootLabel = "cloudimg-rootfs"

// TestLayeredVolumeBoots stands a disk image in for a base AMI's snapshot
// (MBR, root on partition 1 next to a data partition, booted by extlinux
// with root=UUID: nothing of autoami's own layout or boot loader), finds its
// root partition, unpacks base-plus-overlay onto it with the patch engine,
// and boots it.
func TestLayeredVolumeBoots(t *testing.T) {
	loopdev.RequireRoot(t)
	for _, tool := range []string{"extlinux", "sfdisk", "mke2fs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s missing: install scripts/test-deps.txt", tool)
		}
	}
	trees := bootfs.MustBuild(t)
	ctx := context.Background()
	base := makeBaseImage(t, trees)

	// The volume created from the base snapshot: a copy of the image.
	img := loopdev.NewImage(t, "vol-layered.img", 0)
	copyFile(t, base, img)
	dev := loopdev.Attach(t, img)
	layout, err := volume.Find(ctx, dev.Path, volume.FindOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if layout.Table != volume.MBR || layout.Root.Number != 1 || layout.Root.Label != baseRootLabel || layout.ESP != nil || layout.BIOSBoot != nil {
		t.Fatalf("Find on the base image: %s table, root %+v, ESP %v, BIOS boot %v; want dos, partition 1 labelled %s, no boot partitions",
			layout.Table, layout.Root, layout.ESP, layout.BIOSBoot, baseRootLabel)
	}
	root, unmount := loopdev.Mount(t, layout.Root.Device, layout.Root.Filesystem)

	// Base plus overlay, as the provider would build it from the base
	// snapshot's root and the stream's overlay.
	merged := filepath.Join(t.TempDir(), "merged")
	run(t, "cp", "-a", root+"/.", merged)
	run(t, "cp", "-a", trees.Overlay+"/.", merged)
	m, err := manifest.FromDirectory(ctx, merged, manifest.DirOptions{Exclude: []string{"lost+found"}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := patch.Apply(ctx, root, m, manifest.DirectorySource(merged, m), patch.Options{})
	if err != nil {
		t.Fatalf("unpack overlay onto the base root: %v", err)
	}
	requireExactly(t, root, m)
	t.Logf("overlay: %d created, %d updated, %d unchanged, %d bytes written", res.Created, res.Updated, res.Unchanged, res.BytesWritten)
	// usr/local, usr/local/bin, usr/local/bin/hello, etc/autoami-overlay;
	// the rest of the base, boot loader files included, stays untouched.
	if res.Created != 4 || res.Deleted != 0 {
		t.Errorf("overlay created %d and deleted %d entries, want 4 and 0", res.Created, res.Deleted)
	}
	unmount()
	dev.Detach()

	r := qemuboot.MustBoot(t, qemuboot.Options{Image: img, Firmware: qemuboot.BIOS})
	t.Logf("boot wall time: layered/bios %.1fs (%s)", r.Elapsed.Seconds(), r.Accel)
	t.Log(markerLine(t, r))
	requireConsole(t, r,
		`AUTOAMI-BOOT-OK rev=1 overlay=layered root=/dev/nvme0n1p1`,
		`cmdline=\[[^\]]*root=UUID=`+layout.Root.UUID)
}

// makeBaseImage builds the stand-in for a base AMI's snapshot from
// revision 1: an MBR disk, partition 1 the root (ext4 without the 64bit
// and metadata_csum features, as older images have them), partition 2 a data
// filesystem, extlinux in the MBR and on the root, booting root=UUID.
func makeBaseImage(t *testing.T, trees bootfs.Trees) string {
	t.Helper()
	img := loopdev.NewImage(t, "base.img", 192<<20)
	run(t, "sfdisk", "--quiet", img, "<", "label: dos\nstart=2048, size=300000, type=83, bootable\ntype=83\n")
	dev := loopdev.Attach(t, img)
	nodes, err := devices.EnsurePartitionNodes(context.Background(), dev.Path)
	if err != nil || len(nodes) != 2 {
		t.Fatalf("partition nodes of %s: %v %v", dev.Path, nodes, err)
	}
	p1, p2 := nodes[0], nodes[1]
	run(t, "mke2fs", "-q", "-F", "-t", "ext4", "-O", "^64bit,^metadata_csum", "-L", baseRootLabel, p1)
	run(t, "mke2fs", "-q", "-F", "-t", "ext4", "-L", "scratch", p2)
	root, unmount := loopdev.Mount(t, p1, "ext4")
	run(t, "cp", "-a", trees.Rev1+"/.", root)
	uuid := strings.TrimSpace(run(t, "blkid", "-p", "-s", "UUID", "-o", "value", p1))
	if err := os.MkdirAll(filepath.Join(root, "boot/extlinux"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("DEFAULT linux\nPROMPT 0\nTIMEOUT 1\nSERIAL 0 115200\nLABEL linux\n  LINUX /boot/vmlinuz-%[1]s\n  INITRD /boot/initrd.img-%[1]s\n  APPEND root=UUID=%[2]s ro console=ttyS0,115200n8 panic=-1\n",
		trees.KernelVersion, uuid)
	if err := os.WriteFile(filepath.Join(root, "boot/extlinux/extlinux.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "extlinux", "--install", filepath.Join(root, "boot/extlinux"))
	unmount()
	run(t, "dd", "if=/usr/lib/syslinux/mbr/mbr.bin", "of="+dev.Path, "bs=440", "count=1", "conv=notrunc,fsync", "status=none")
	dev.Detach()
	return img
}

// run runs a command (a trailing "<", input pair feeds input) and returns
// its output, failing t on error.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	var stdin string
	if n := len(args); n >= 2 && args[n-2] == "<" {
		stdin, args = args[n-1], args[:n-2]
	}
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
