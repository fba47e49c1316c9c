package daemon

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop devices and mounts (make test runs as root)")
	}
}

// loopImage makes a file system with mkfs (argv) on a sparse file and
// attaches it to a loop device, detached by the test's cleanup. copyOf, when
// set, makes the file a copy of another image (same UUID) instead.
func loopImage(t *testing.T, copyOf string, mkfs ...string) (file, dev string) {
	t.Helper()
	file = filepath.Join(t.TempDir(), "fs.img")
	if copyOf != "" {
		if out, err := exec.Command("cp", "--sparse=always", copyOf, file).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v: %s", err, out)
		}
	} else {
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(file, 320<<20); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(mkfs[0], append(mkfs[1:], file)...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", mkfs[0], err, out)
		}
	}
	out, err := exec.Command("losetup", "--find", "--show", file).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup: %v: %s", err, out)
	}
	dev = strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	return file, dev
}

// mountFor mounts dev with mountRoot at a fresh directory, unmounted by the
// test's cleanup.
func mountFor(t *testing.T, dev, fstype string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := mountRoot(dev, fstype, dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// mountInfo returns the per-mount options (with the super block's options
// appended) and the optional (propagation) fields of the mount at dir.
func mountInfo(t *testing.T, dir string) (opts, optional []string) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 7 || unescapeMountPath(f[4]) != dir {
			continue
		}
		i := 6
		for ; i < len(f) && f[i] != "-"; i++ {
			optional = append(optional, f[i])
		}
		opts = strings.Split(f[5], ",")
		if i+3 < len(f) {
			opts = append(opts, strings.Split(f[i+3], ",")...)
		}
		return opts, optional
	}
	t.Fatalf("%s is not in the mount table", dir)
	return nil, nil
}

// TestMountRootFlags: a volume is mounted nosuid, nodev, noexec and noatime
// with private propagation; the engine can still create device nodes on it.
func TestMountRootFlags(t *testing.T) {
	requireRoot(t)
	_, dev := loopImage(t, "", "mkfs.ext4", "-q", "-F")
	dir := mountFor(t, dev, "ext4")
	opts, optional := mountInfo(t, dir)
	for _, want := range []string{"nosuid", "nodev", "noexec", "noatime", "noauto_da_alloc"} {
		if !strings.Contains(","+strings.Join(opts, ",")+",", ","+want+",") {
			t.Errorf("volume mounted with %v, want %s", opts, want)
		}
	}
	for _, o := range optional {
		if strings.HasPrefix(o, "shared:") || strings.HasPrefix(o, "master:") {
			t.Errorf("volume mount propagation %v, want private", optional)
		}
	}
	if err := unix.Mknod(filepath.Join(dir, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Errorf("mknod on the nodev volume: %v", err)
	}
}

// TestMountRootXFSSameUUID: two XFS volumes with the same UUID (copies of
// one snapshot) mount side by side.
func TestMountRootXFSSameUUID(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("mkfs.xfs"); err != nil {
		t.Fatalf("mkfs.xfs is needed (xfsprogs, scripts/test-deps.txt): %v", err)
	}
	file, devA := loopImage(t, "", "mkfs.xfs", "-q", "-f")
	_, devB := loopImage(t, file, "")
	mountFor(t, devA, "xfs")
	dirB := mountFor(t, devB, "xfs")
	if opts, _ := mountInfo(t, dirB); !strings.Contains(strings.Join(opts, ","), "noatime") {
		t.Errorf("xfs volume mounted with %v", opts)
	}
}

// TestNestedMountsRefused: a mount inside a volume is named by the check
// the daemon runs before patching.
func TestNestedMountsRefused(t *testing.T) {
	requireRoot(t)
	_, dev := loopImage(t, "", "mkfs.ext4", "-q", "-F")
	dir := mountFor(t, dev, "ext4")
	if err := checkNoNestedMounts(dir); err != nil {
		t.Fatalf("fresh volume: %v", err)
	}
	inner := filepath.Join(dir, "tmp")
	if err := os.Mkdir(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(t.TempDir(), inner, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(inner, 0); err != nil {
			t.Errorf("unmount %s: %v", inner, err)
		}
	})
	err := checkNoNestedMounts(dir)
	if err == nil || !strings.Contains(err.Error(), inner) || !isCodeConflict(err) {
		t.Fatalf("check with %s mounted inside: %v, want a conflict naming it", inner, err)
	}
}
