package volume

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestVersionLess(t *testing.T) {
	ordered := []string{"5.10.0-9-amd64", "5.10.0-28-amd64", "6.1.0-1-amd64", "6.1.0-9-amd64", "6.1.0-10-amd64", "6.1.0-28-amd64", "6.10.0-1-amd64"}
	for i := range ordered {
		for j := range ordered {
			if got, want := versionLess(ordered[i], ordered[j]), i < j; got != want {
				t.Errorf("versionLess(%q, %q) = %v, want %v", ordered[i], ordered[j], got, want)
			}
		}
	}
}

func TestGrubQuote(t *testing.T) {
	for in, want := range map[string]string{
		"console=ttyS0,115200n8":  "console=ttyS0,115200n8",
		"root=LABEL=autoami-root": "root=LABEL=autoami-root",
		"a b":                     "'a b'",
		"$x;reboot":               "'$x;reboot'",
		"it's":                    `'it'\''s'`,
		"":                        "''",
	} {
		if got := grubQuote(in); got != want {
			t.Errorf("grubQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestCheckLabel(t *testing.T) {
	for _, ok := range []string{"autoami-root", "a", "root_1.x", "0123456789abcdef"} {
		if err := checkLabel(ok); err != nil {
			t.Errorf("checkLabel(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "0123456789abcdefg", "-root", "my root", "a'b", "é"} {
		if err := checkLabel(bad); err == nil {
			t.Errorf("checkLabel(%q) accepted a bad label", bad)
		}
	}
}

func TestIdentifiers(t *testing.T) {
	a, err := newIdentifiers("web/al2023")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newIdentifiers("web/al2023")
	c, _ := newIdentifiers("web/debian")
	if a != b {
		t.Errorf("same seed, different identifiers: %+v %+v", a, b)
	}
	if a.disk == c.disk || a.rootFS == c.rootFS {
		t.Errorf("different seeds share identifiers: %+v %+v", a, c)
	}
	all := []string{a.disk, a.biosBoot, a.esp, a.root, a.rootFS, a.rootHashSeed}
	for i, id := range all {
		if len(id) != 36 || id[14] != '8' || !strings.ContainsRune("89ab", rune(id[19])) {
			t.Errorf("identifier %q is not an RFC 9562 version 8 UUID", id)
		}
		if slices.Contains(all[i+1:], id) {
			t.Errorf("identifier %q used twice", id)
		}
	}
	if len(a.espVolumeID) != 8 || strings.ToUpper(a.espVolumeID) != a.espVolumeID {
		t.Errorf("ESP volume ID %q: want 8 upper-case hex digits", a.espVolumeID)
	}
	r1, _ := newIdentifiers("")
	r2, _ := newIdentifiers("")
	if r1.disk == r2.disk || r1.disk[14] != '4' {
		t.Errorf("random identifiers: %s %s", r1.disk, r2.disk)
	}
}

// writeFiles creates files (path → content; content "->x" makes a symlink to x).
func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(c, "->"); ok {
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFindKernels(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"boot/vmlinuz-6.1.0-9-amd64":        "k",
		"boot/initrd.img-6.1.0-9-amd64":     "i",
		"boot/vmlinuz-6.1.0-28-amd64":       "k",
		"boot/initrd.img-6.1.0-28-amd64":    "i",
		"boot/vmlinuz-6.1.0-10-amd64":       "k",
		"boot/initramfs-6.1.0-10-amd64.img": "i",
		"boot/vmlinuz-5.10.0-1-amd64.old":   "backup",
		"boot/vmlinuz-7.0.0-1-amd64":        "->/etc/passwd", // symlinks are not kernels
		"boot/config-6.1.0-28-amd64":        "c",
	})
	got, err := findKernels(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []BootEntry{
		{Version: "6.1.0-28-amd64", Kernel: "/boot/vmlinuz-6.1.0-28-amd64", Initrd: "/boot/initrd.img-6.1.0-28-amd64"},
		{Version: "6.1.0-10-amd64", Kernel: "/boot/vmlinuz-6.1.0-10-amd64", Initrd: "/boot/initramfs-6.1.0-10-amd64.img"},
		{Version: "6.1.0-9-amd64", Kernel: "/boot/vmlinuz-6.1.0-9-amd64", Initrd: "/boot/initrd.img-6.1.0-9-amd64"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("findKernels:\n got %+v\nwant %+v", got, want)
	}

	// The distribution's /vmlinuz symlink names the default kernel.
	writeFiles(t, root, map[string]string{"vmlinuz": "->boot/vmlinuz-6.1.0-9-amd64"})
	got, err = findKernels(root)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Version != "6.1.0-9-amd64" || got[1].Version != "6.1.0-28-amd64" || got[2].Version != "6.1.0-10-amd64" {
		t.Errorf("with /vmlinuz -> 6.1.0-9: order %v %v %v", got[0].Version, got[1].Version, got[2].Version)
	}

	if _, err := findKernels(t.TempDir()); err == nil {
		t.Error("findKernels on a root without /boot succeeded")
	}
	empty := t.TempDir()
	writeFiles(t, empty, map[string]string{"boot/grub/grub.cfg": "x"})
	if _, err := findKernels(empty); err == nil || !strings.Contains(err.Error(), "no kernel") {
		t.Errorf("findKernels without kernels: %v", err)
	}
}

func TestFindKernelsRefusesEscapingBoot(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	writeFiles(t, outside, map[string]string{"vmlinuz-1.0": "host kernel"})
	writeFiles(t, root, map[string]string{"boot": "->" + outside})
	if _, err := findKernels(root); err == nil || !strings.Contains(err.Error(), "outside the root") {
		t.Errorf("findKernels followed /boot out of the root: %v", err)
	}
}

func TestKernelArgs(t *testing.T) {
	root := t.TempDir()
	args, dropped, err := kernelArgs(root, nil)
	if err != nil || strings.Join(args, " ") != "ro console=tty0 console=ttyS0,115200n8" || dropped != nil {
		t.Errorf("no cmdline file: %v %v %v", args, dropped, err)
	}
	args, _, _ = kernelArgs(root, []string{"rw", "quiet"})
	if strings.Join(args, " ") != "rw quiet" {
		t.Errorf("DefaultArgs: %v", args)
	}
	writeFiles(t, root, map[string]string{"etc/kernel/cmdline": "# comment\nroot=/dev/sda1 ro  quiet\n  nvme_core.io_timeout=4294967295 BOOT_IMAGE=x\n"})
	args, dropped, err = kernelArgs(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(args, " "); got != "ro quiet nvme_core.io_timeout=4294967295 console=tty0 console=ttyS0,115200n8" {
		t.Errorf("args from the file: %q", got)
	}
	if strings.Join(dropped, " ") != "root=/dev/sda1 BOOT_IMAGE=x" {
		t.Errorf("dropped: %v", dropped)
	}
	writeFiles(t, root, map[string]string{"etc/kernel/cmdline2": "x"})
	if err := os.WriteFile(filepath.Join(root, "etc/kernel/cmdline"), []byte("ro console=ttyS1"), 0o644); err != nil {
		t.Fatal(err)
	}
	args, _, _ = kernelArgs(root, nil)
	if strings.Join(args, " ") != "ro console=ttyS1" {
		t.Errorf("a file naming a console gets no other: %v", args)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/kernel/cmdline"), bytes.Repeat([]byte("a"), 3000), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := kernelArgs(root, nil); err == nil {
		t.Error("a 3000-byte command line was accepted")
	}
}

func TestGrubConfigRender(t *testing.T) {
	c := grubConfig{
		rootLabel: "autoami-root", osName: "Debian GNU/Linux 12 (bookworm)", timeout: 2,
		args: []string{"ro", "console=ttyS0,115200n8", "x='y z'"},
		entries: []BootEntry{
			{Version: "6.1.0-28-amd64", Kernel: "/boot/vmlinuz-6.1.0-28-amd64", Initrd: "/boot/initrd.img-6.1.0-28-amd64"},
			{Version: "6.1.0-9-amd64", Kernel: "/boot/vmlinuz-6.1.0-9-amd64"},
		},
	}
	cfg := c.render()
	for _, want := range []string{
		"set timeout=2\n",
		"search --no-floppy --label --set=root autoami-root",
		"serial --unit=0 --speed=115200",
		"menuentry 'Debian GNU/Linux 12 (bookworm), Linux 6.1.0-28-amd64 (default)' --id linux-6.1.0-28-amd64 {",
		"  linux /boot/vmlinuz-6.1.0-28-amd64 root=LABEL=autoami-root ro console=ttyS0,115200n8 'x='\\''y z'\\'''\n  initrd /boot/initrd.img-6.1.0-28-amd64\n",
		"menuentry 'Debian GNU/Linux 12 (bookworm), Linux 6.1.0-9-amd64' --id linux-6.1.0-9-amd64 {",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("grub.cfg lacks %q:\n%s", want, cfg)
		}
	}
	if strings.Count(cfg, "initrd ") != 1 {
		t.Errorf("an entry without initramfs got an initrd line:\n%s", cfg)
	}
	if c.commandLine() != "root=LABEL=autoami-root ro console=ttyS0,115200n8 x='y z'" {
		t.Errorf("commandLine() = %q", c.commandLine())
	}
}

func TestMemdiskTarIsDeterministic(t *testing.T) {
	a, err := memdiskTar("set timeout=0\n")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := memdiskTar("set timeout=0\n")
	c, _ := memdiskTar("set timeout=1\n")
	if !bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Error("memdisk tarball is not a function of the config")
	}
	if !bytes.Contains(a, []byte("boot/grub/grub.cfg")) {
		t.Error("memdisk lacks boot/grub/grub.cfg")
	}
}

func TestEmbedCore(t *testing.T) {
	dir := "/usr/lib/grub/i386-pc"
	boot, err := os.ReadFile(filepath.Join(dir, "boot.img"))
	if err != nil {
		t.Fatalf("GRUB's BIOS modules (grub-pc-bin) are needed: %v", err)
	}
	diskboot, err := os.ReadFile(filepath.Join(dir, "diskboot.img"))
	if err != nil {
		t.Fatal(err)
	}
	core := append(append([]byte(nil), diskboot...), bytes.Repeat([]byte{0xAB}, 3000)...) // 6.x sectors
	old := make([]byte, 512)
	for i := range old {
		old[i] = byte(i * 7)
	}
	old[510], old[511] = 0x55, 0xAA
	part := &Partition{Number: 1, Start: 2048 * 512, Size: 1 << 20}
	imgs, err := embedCore(dir, core, old, part)
	if err != nil {
		t.Fatal(err)
	}
	mbr := imgs.mbr
	if !bytes.Equal(mbr[:3], boot[:3]) || !bytes.Equal(mbr[0x68:0x1b8], boot[0x68:0x1b8]) {
		t.Error("boot.img code not copied into the MBR")
	}
	if !bytes.Equal(mbr[3:0x5a], old[3:0x5a]) || !bytes.Equal(mbr[0x1b8:], old[0x1b8:]) {
		t.Error("the disk's BPB or partition table was not kept")
	}
	if got := binary.LittleEndian.Uint64(mbr[0x5c:]); got != 2048 {
		t.Errorf("kernel sector %d, want 2048", got)
	}
	if mbr[0x66] != 0x90 || mbr[0x67] != 0x90 {
		t.Error("boot drive check not disabled")
	}
	c := imgs.core
	if len(c) != 7*512 || !bytes.Equal(c[512:512+3000], core[512:]) {
		t.Fatalf("core image: %d bytes", len(c))
	}
	bl := c[500:512]
	if start, n, seg := binary.LittleEndian.Uint64(bl), binary.LittleEndian.Uint16(bl[8:]), binary.LittleEndian.Uint16(bl[10:]); start != 2049 || n != 6 || seg != 0x820 {
		t.Errorf("block list start %d count %d segment %#x, want 2049 6 0x820", start, n, seg)
	}

	if _, err := embedCore(dir, core, make([]byte, 512), part); err == nil {
		t.Error("embedCore accepted a sector 0 without MBR signature")
	}
	if _, err := embedCore(dir, bytes.Repeat([]byte{1}, 2<<20), old, part); err == nil || !strings.Contains(err.Error(), "does not fit") {
		t.Errorf("embedCore of a core larger than the partition: %v", err)
	}
}

func TestPartitionNumber(t *testing.T) {
	for node, want := range map[string]int{"/dev/loop0p3": 3, "/dev/nvme1n1p15": 15, "/dev/xvdf1": 1} {
		if got, err := partitionNumber(node); err != nil || got != want {
			t.Errorf("partitionNumber(%q) = %d, %v; want %d", node, got, err, want)
		}
	}
	if _, err := partitionNumber("/dev/loop0p"); err == nil {
		t.Error("partitionNumber accepted a node without number")
	}
}
