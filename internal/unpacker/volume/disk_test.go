package volume

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/loopdev"
	"golang.org/x/sys/unix"
)

func runT(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// fakeRoot is a root filesystem with what MakeBootable reads: a kernel, an
// initramfs, os-release and a kernel command line.
var fakeRoot = map[string]string{
	"boot/vmlinuz-6.1.0-28-amd64":    "kernel",
	"boot/initrd.img-6.1.0-28-amd64": "initrd",
	"etc/os-release":                 "PRETTY_NAME=\"Test OS\"\n",
	"etc/kernel/cmdline":             "ro quiet\n",
}

// TestCreateAndMakeBootable inspects a from-scratch volume: partition types
// and names, the labelled ext4 root, the FAT32 ESP holding
// EFI/BOOT/BOOTX64.EFI with the generated menu, and GRUB's boot sector and
// core image in the BIOS boot partition.
func TestCreateAndMakeBootable(t *testing.T) {
	loopdev.RequireRoot(t)
	ctx := context.Background()
	img := loopdev.NewImage(t, "disk.img", 300<<20)
	dev := loopdev.Attach(t, img)
	l, err := Create(ctx, dev.Path, CreateOptions{Seed: "web/debian", AssumeZeroed: true})
	if err != nil {
		t.Fatal(err)
	}

	var dump sfdiskDump
	if err := json.Unmarshal([]byte(runT(t, "sfdisk", "--json", dev.Path)), &dump); err != nil {
		t.Fatal(err)
	}
	pt := dump.PartitionTable
	if pt.Label != "gpt" || len(pt.Partitions) != 3 {
		t.Fatalf("partition table %q with %d partitions, want gpt with 3", pt.Label, len(pt.Partitions))
	}
	wantTypes := []string{TypeBIOSBoot, TypeESP, TypeLinuxRootAMD64}
	wantNames := []string{"BIOS boot partition", "EFI system partition", DefaultRootLabel}
	for i, p := range pt.Partitions {
		if !strings.EqualFold(p.Type, wantTypes[i]) || p.Name != wantNames[i] {
			t.Errorf("partition %d: type %s name %q, want %s %q", i+1, p.Type, p.Name, wantTypes[i], wantNames[i])
		}
	}
	if pt.Partitions[0].Start != 2048 || pt.Partitions[0].Size != 2048 || pt.Partitions[1].Size != 204800 {
		t.Errorf("partition geometry: %+v", pt.Partitions)
	}
	if l.Root.Device != dev.Path+"p3" || l.ESP.Device != dev.Path+"p2" || l.BIOSBoot.Device != dev.Path+"p1" {
		t.Errorf("layout devices: root %s ESP %s BIOS boot %s", l.Root.Device, l.ESP.Device, l.BIOSBoot.Device)
	}
	rootInfo := runT(t, "blkid", "-p", "-o", "export", l.Root.Device)
	for _, want := range []string{"TYPE=ext4", "LABEL=" + DefaultRootLabel, "UUID=" + l.Root.UUID} {
		if !strings.Contains(rootInfo, want+"\n") {
			t.Errorf("root filesystem lacks %s:\n%s", want, rootInfo)
		}
	}
	if out := runT(t, "dumpe2fs", "-h", l.Root.Device); !regexp.MustCompile(`(?m)^Block size:\s+4096$`).MatchString(out) {
		t.Errorf("root block size is not 4096")
	}
	if espInfo := runT(t, "blkid", "-p", "-o", "export", l.ESP.Device); !strings.Contains(espInfo, "VERSION=FAT32") {
		t.Errorf("ESP is not FAT32:\n%s", espInfo)
	}
	// The same seed gives the same identifiers: the disk GUID is derived.
	ids, _ := newIdentifiers("web/debian")
	if !strings.EqualFold(runT(t, "sgdisk", "--print", dev.Path), runT(t, "sgdisk", "--print", dev.Path)) ||
		!strings.Contains(strings.ToLower(runT(t, "sgdisk", "--print", dev.Path)), ids.disk) {
		t.Errorf("disk GUID is not the one derived from the seed (%s)", ids.disk)
	}
	if l.Root.UUID != ids.rootFS {
		t.Errorf("root UUID %s, want %s from the seed", l.Root.UUID, ids.rootFS)
	}

	// A disk with a layout is not laid out again without Overwrite.
	if _, err := Create(ctx, dev.Path, CreateOptions{}); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Errorf("Create on a used disk: %v", err)
	}
	if _, err := Create(ctx, l.Root.Device, CreateOptions{Overwrite: true}); err == nil || !strings.Contains(err.Error(), "is a partition") {
		t.Errorf("Create on a partition: %v", err)
	}

	root, unmount := loopdev.Mount(t, l.Root.Device, "ext4")
	writeFiles(t, root, fakeRoot)
	rep, err := MakeBootable(ctx, l, root, BootOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.CommandLine != "root=LABEL="+DefaultRootLabel+" ro quiet console=tty0 console=ttyS0,115200n8" {
		t.Errorf("command line %q", rep.CommandLine)
	}
	if want := []string{"bios-boot", "mbr", "esp:" + espBootPath}; !slices.Equal(rep.Written, want) {
		t.Errorf("written %v, want %v", rep.Written, want)
	}
	// Nothing was written into the root filesystem.
	var names []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if rel, _ := filepath.Rel(root, p); rel != "." && !strings.HasPrefix(rel, "lost+found") && !d.IsDir() {
			names = append(names, rel)
		}
		return nil
	})
	if len(names) != len(fakeRoot) {
		t.Errorf("root holds %v after MakeBootable; want only the files put there", names)
	}
	unmount()

	// The ESP, read back with mtools.
	efi, err := exec.Command("mtype", "-i", l.ESP.Device, "::/EFI/BOOT/BOOTX64.EFI").Output()
	if err != nil {
		t.Fatalf("EFI/BOOT/BOOTX64.EFI not on the ESP: %v", err)
	}
	if !bytes.HasPrefix(efi, []byte("MZ")) || !bytes.Contains(efi, []byte("PE\x00\x00")) {
		t.Error("BOOTX64.EFI is not a PE image")
	}
	for _, want := range []string{"search --no-floppy --label --set=root autoami-root", "linux /boot/vmlinuz-6.1.0-28-amd64 root=LABEL=autoami-root ro quiet"} {
		if !bytes.Contains(efi, []byte(want)) {
			t.Errorf("BOOTX64.EFI's embedded menu lacks %q", want)
		}
	}

	// The boot sector and the core image.
	disk, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	bootImg, _ := os.ReadFile("/usr/lib/grub/i386-pc/boot.img")
	diskboot, _ := os.ReadFile("/usr/lib/grub/i386-pc/diskboot.img")
	mbr := disk[:512]
	if !bytes.Equal(mbr[0x68:0x1b8], bootImg[0x68:0x1b8]) || mbr[510] != 0x55 || mbr[511] != 0xAA {
		t.Error("sector 0 does not hold GRUB's boot.img")
	}
	if mbr[0x1be+4] != 0xEE {
		t.Errorf("protective MBR partition type %#x, want 0xEE", mbr[0x1be+4])
	}
	if got := binary.LittleEndian.Uint64(mbr[0x5c:]); got != 2048 {
		t.Errorf("boot.img points at sector %d, want 2048 (the BIOS boot partition)", got)
	}
	core := disk[2048*512 : 4096*512]
	if !bytes.Equal(core[:0x1f0], diskboot[:0x1f0]) {
		t.Error("the BIOS boot partition does not start with GRUB's diskboot.img")
	}
	if start, n := binary.LittleEndian.Uint64(core[500:]), binary.LittleEndian.Uint16(core[508:]); start != 2049 || n == 0 {
		t.Errorf("core.img block list: start %d, %d sectors", start, n)
	}

	// Idempotent: the same root again writes nothing.
	root, unmount = loopdev.Mount(t, l.Root.Device, "ext4")
	rep, err = MakeBootable(ctx, l, root, BootOptions{})
	if err != nil || len(rep.Written) != 0 {
		t.Errorf("second MakeBootable wrote %v (error %v), want nothing", rep.Written, err)
	}
	// A new kernel command line rewrites both images, but not the MBR.
	writeFiles(t, root, map[string]string{"etc/kernel/cmdline.new": "x"})
	if err := os.WriteFile(filepath.Join(root, "etc/kernel/cmdline"), []byte("ro nomodeset\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err = MakeBootable(ctx, l, root, BootOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"bios-boot", "esp:" + espBootPath}; !slices.Equal(rep.Written, want) {
		t.Errorf("after a command line change wrote %v, want %v", rep.Written, want)
	}
	unmount()
}

func TestMakeBootableErrors(t *testing.T) {
	loopdev.RequireRoot(t)
	ctx := context.Background()
	img := loopdev.NewImage(t, "disk.img", 300<<20)
	dev := loopdev.Attach(t, img)
	l, err := Create(ctx, dev.Path, CreateOptions{AssumeZeroed: true})
	if err != nil {
		t.Fatal(err)
	}
	root, _ := loopdev.Mount(t, l.Root.Device, "ext4")
	if _, err := MakeBootable(ctx, l, root, BootOptions{}); err == nil || !strings.Contains(err.Error(), "no kernel") {
		t.Errorf("MakeBootable without a kernel: %v", err)
	}
	writeFiles(t, root, fakeRoot)
	noBIOS := *l
	noBIOS.BIOSBoot = nil
	if _, err := MakeBootable(ctx, &noBIOS, root, BootOptions{}); err == nil || !strings.Contains(err.Error(), "BIOS boot partition") {
		t.Errorf("MakeBootable for BIOS without a BIOS boot partition: %v", err)
	}
	if rep, err := MakeBootable(ctx, &noBIOS, root, BootOptions{Firmware: []Firmware{UEFI}}); err != nil || !slices.Equal(rep.Written, []string{"esp:" + espBootPath}) {
		t.Errorf("MakeBootable for UEFI only: %v %v", rep, err)
	}
	if _, err := MakeBootable(ctx, l, root, BootOptions{RootLabel: "bad label"}); err == nil {
		t.Error("MakeBootable accepted a root label with a space")
	}
	// An incomplete GRUB in the image: the host's modules are used.
	writeFiles(t, root, map[string]string{"usr/lib/grub/i386-pc/moddep.lst": "", "usr/lib/grub/x86_64-efi/kernel.img": "junk"})
	rep, err := MakeBootable(ctx, l, root, BootOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ModulesFrom[BIOS] != "/usr/lib/grub/i386-pc" || rep.ModulesFrom[UEFI] != "/usr/lib/grub/x86_64-efi" {
		t.Errorf("incomplete image GRUB: modules from %v, want the host's", rep.ModulesFrom)
	}
}

// makeMBRDisk partitions a new loop device with sfdisk and formats each
// partition: fs is "" (none) or "ext4:LABEL"; withOS puts etc/os-release in it.
func makeMBRDisk(t *testing.T, parts []string, withOS []bool) *loopdev.Device {
	t.Helper()
	img := loopdev.NewImage(t, "mbr.img", 200<<20)
	script := "label: dos\n"
	for range parts {
		script += "size=60MiB, type=83\n"
	}
	cmd := exec.Command("sfdisk", "--quiet", img)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v: %s", err, out)
	}
	dev := loopdev.Attach(t, img)
	_, ps, err := readTable(context.Background(), loggerOr(nil), dev.Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := ensureNodes(context.Background(), loggerOr(nil), dev.Path, ps); err != nil {
		t.Fatal(err)
	}
	for i, fs := range parts {
		label, ok := strings.CutPrefix(fs, "ext4:")
		if !ok {
			continue
		}
		runT(t, "mke2fs", "-q", "-F", "-t", "ext4", "-L", label, ps[i].Device)
		if withOS[i] {
			dir := t.TempDir()
			if err := unix.Mount(ps[i].Device, dir, "ext4", 0, ""); err != nil {
				t.Fatal(err)
			}
			writeFiles(t, dir, map[string]string{"etc/os-release": "ID=test\n"})
			if err := unix.Unmount(dir, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dev
}

func TestFind(t *testing.T) {
	loopdev.RequireRoot(t)
	ctx := context.Background()

	t.Run("from-scratch layout by label", func(t *testing.T) {
		dev := loopdev.Attach(t, loopdev.NewImage(t, "disk.img", 300<<20))
		made, err := Create(ctx, dev.Path, CreateOptions{RootLabel: "autoami-x1", AssumeZeroed: true})
		if err != nil {
			t.Fatal(err)
		}
		l, err := Find(ctx, dev.Path, FindOptions{RootLabel: "autoami-x1"})
		if err != nil {
			t.Fatal(err)
		}
		if l.Table != GPT || l.Root != made.Root || l.ESP == nil || *l.ESP != *made.ESP || l.BIOSBoot == nil || l.BIOSBoot.Number != 1 {
			t.Errorf("Find: %+v, want %+v", l, made)
		}
		// Without the label the partition type decides.
		if l, err := Find(ctx, dev.Path, FindOptions{RootLabel: "other"}); err != nil || l.Root.Number != 3 {
			t.Errorf("Find with a label no partition has: %+v %v", l, err)
		}
	})
	t.Run("MBR, root by content", func(t *testing.T) {
		dev := makeMBRDisk(t, []string{"ext4:data", "", "ext4:rootfs"}, []bool{false, false, true})
		l, err := Find(ctx, dev.Path, FindOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if l.Table != MBR || l.Root.Number != 3 || l.Root.Label != "rootfs" || l.Root.Device != dev.Path+"p3" || l.Root.Type != "83" {
			t.Errorf("Find: root %+v in a %s table, want partition 3 (rootfs)", l.Root, l.Table)
		}
	})
	t.Run("MBR, single Linux filesystem", func(t *testing.T) {
		dev := makeMBRDisk(t, []string{"", "ext4:only"}, []bool{false, false})
		l, err := Find(ctx, dev.Path, FindOptions{})
		if err != nil || l.Root.Number != 2 {
			t.Errorf("Find: %+v %v, want partition 2", l, err)
		}
	})
	t.Run("ambiguous", func(t *testing.T) {
		dev := makeMBRDisk(t, []string{"ext4:a", "ext4:b"}, []bool{true, true})
		_, err := Find(ctx, dev.Path, FindOptions{})
		if err == nil || !strings.Contains(err.Error(), "cannot tell the root") || !strings.Contains(err.Error(), `"a"`) || !strings.Contains(err.Error(), `"b"`) {
			t.Errorf("Find on two OS partitions: %v", err)
		}
	})
	t.Run("no Linux filesystem", func(t *testing.T) {
		dev := makeMBRDisk(t, []string{"", ""}, []bool{false, false})
		if _, err := Find(ctx, dev.Path, FindOptions{}); err == nil || !strings.Contains(err.Error(), "no partition holds a Linux filesystem") {
			t.Errorf("Find without filesystems: %v", err)
		}
	})
	t.Run("whole-disk filesystem", func(t *testing.T) {
		dev := loopdev.Attach(t, loopdev.NewImage(t, "fs.img", 64<<20))
		runT(t, "mke2fs", "-q", "-F", "-t", "ext4", "-L", "whole", dev.Path)
		l, err := Find(ctx, dev.Path, FindOptions{})
		if err != nil || l.Root.Device != dev.Path || l.Root.Label != "whole" || l.Table != "" {
			t.Errorf("Find on a whole-disk filesystem: %+v %v", l, err)
		}
	})
	t.Run("empty disk", func(t *testing.T) {
		dev := loopdev.Attach(t, loopdev.NewImage(t, "empty.img", 64<<20))
		if _, err := Find(ctx, dev.Path, FindOptions{}); err == nil || !strings.Contains(err.Error(), "no partition table and no Linux filesystem") {
			t.Errorf("Find on an empty disk: %v", err)
		}
	})
	t.Run("not a block device", func(t *testing.T) {
		if _, err := Find(ctx, loopdev.NewImage(t, "file.img", 1<<20), FindOptions{}); err == nil || !strings.Contains(err.Error(), "not a block device") {
			t.Errorf("Find on a regular file: %v", err)
		}
	})
}
