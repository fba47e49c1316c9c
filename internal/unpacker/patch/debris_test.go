package patch

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// mksock makes a unix socket inode at p (as a daemon of the image would
// have left it).
func mksock(t *testing.T, p string) {
	t.Helper()
	if err := unix.Mknod(p, unix.S_IFSOCK|0o755, 0); err != nil {
		t.Fatalf("make socket %s: %v", p, err)
	}
}

// TestSocketsAreDebris: sockets are no content (manifests skip them), so a
// patch deletes every socket it finds: at the root, and inside a directory
// the new revision removes (which could not be removed otherwise).
func TestSocketsAreDebris(t *testing.T) {
	fs := newLoopFS(t, 64)
	srcA, mA := source(t, buildA)
	srcB, mB := source(t, buildB)
	apply(t, fs.mnt, srcA, mA, Options{})
	socks := []string{"s.sock", "to-delete/deep/daemon.sock", "tmp/.X11-unix"}
	for _, s := range socks {
		mksock(t, filepath.Join(fs.mnt, s))
	}
	res := apply(t, fs.mnt, srcB, mB, Options{})
	fs.remount(t)
	requireSameTree(t, scan(t, fs.mnt), mB)
	for _, s := range socks {
		if _, err := os.Lstat(filepath.Join(fs.mnt, s)); !os.IsNotExist(err) {
			t.Errorf("socket %s survived the patch (%v)", s, err)
		}
	}
	if res.Deleted < len(socks) {
		t.Errorf("result %+v counts fewer deletions than the %d sockets", res, len(socks))
	}
}

// setFlags sets inode flags (FS_IOC_SETFLAGS) on p, as chattr does.
func setFlags(t *testing.T, p string, add uint32) {
	t.Helper()
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	cur, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(cur|add)); err != nil {
		t.Fatalf("chattr %s: %v", p, err)
	}
}

func flagsOf(t *testing.T, p string) uint32 {
	t.Helper()
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	f, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestImmutableAndAppendOnlyEntriesArePatched: entries with chattr +i or +a
// (a file the revision changes, one it deletes, a directory whose entries
// change, the root, an unchanged file) do not stop the patch; the result is
// exactly the revision, without the flags, which manifests do not carry.
func TestImmutableAndAppendOnlyEntriesArePatched(t *testing.T) {
	fs := newLoopFS(t, 64)
	srcA, mA := source(t, buildA)
	srcB, mB := source(t, buildB)
	apply(t, fs.mnt, srcA, mA, Options{})
	flagged := map[string]uint32{
		"bin/ping":            fsImmutableFL, // content changes
		"to-delete/deep/file": fsImmutableFL, // deleted
		"to-delete/deep":      fsAppendFL,    // directory removed, entry removed
		"usr/lib":             fsImmutableFL, // gains an entry
		"etc/mode-only":       fsAppendFL,    // metadata changes
		"etc/passwd":          fsImmutableFL, // unchanged
		"":                    fsAppendFL,    // the root gains and loses entries
	}
	for p, f := range flagged {
		setFlags(t, filepath.Join(fs.mnt, p), f)
	}
	apply(t, fs.mnt, srcB, mB, Options{})
	fs.remount(t)
	requireSameTree(t, scan(t, fs.mnt), mB)
	for p := range flagged {
		full := filepath.Join(fs.mnt, p)
		if _, err := os.Lstat(full); err != nil {
			continue // deleted
		}
		if f := flagsOf(t, full); f&(fsImmutableFL|fsAppendFL) != 0 {
			t.Errorf("%q still has inode flags %#x", p, f)
		}
	}
}
