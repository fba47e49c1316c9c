// Package loopdev attaches image files as loop devices for tests that need a
// real block device (tests run as root), and mounts their filesystems. Every
// attach and mount is undone by its own name in t.Cleanup, also when the
// test fails: loop devices are a shared, finite resource.
package loopdev

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// RequireRoot skips t when not running as root (block devices, mounts).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: loop devices and mounts (make test runs as root)")
	}
}

// NewImage creates a sparse file of size bytes in a test directory.
func NewImage(t testing.TB, name string, size int64) string {
	t.Helper()
	p := t.TempDir() + "/" + name
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// Device is an attached loop device.
type Device struct {
	// Path is the loop device, e.g. /dev/loop3.
	Path string
	// File is the attached image file.
	File string
	t    testing.TB
	done bool
}

// Attach attaches file with partition scanning (losetup -P) and detaches it
// in t.Cleanup unless Detach ran first.
func Attach(t testing.TB, file string) *Device {
	t.Helper()
	out, err := exec.Command("losetup", "--find", "--show", "--partscan", file).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup %s: %v: %s", file, err, out)
	}
	d := &Device{Path: strings.TrimSpace(string(out)), File: file, t: t}
	t.Cleanup(func() { d.detach() })
	return d
}

// Detach flushes and detaches the device now (before booting its file, say).
func (d *Device) Detach() {
	d.t.Helper()
	if err := d.detach(); err != nil {
		d.t.Fatal(err)
	}
}

func (d *Device) detach() error {
	if d.done {
		return nil
	}
	if f, err := os.OpenFile(d.Path, os.O_RDWR, 0); err == nil {
		_ = f.Sync()
		f.Close()
	}
	if out, err := exec.Command("losetup", "-d", d.Path).CombinedOutput(); err != nil {
		return &detachError{dev: d.Path, out: string(out), err: err}
	}
	d.done = true
	return nil
}

type detachError struct {
	dev, out string
	err      error
}

func (e *detachError) Error() string {
	return "losetup -d " + e.dev + ": " + e.err.Error() + ": " + strings.TrimSpace(e.out)
}

// Mount mounts the filesystem on dev at a new test directory and unmounts
// it in t.Cleanup unless the returned unmount ran first.
func Mount(t testing.TB, dev, fstype string) (dir string, unmount func()) {
	t.Helper()
	dir = t.TempDir()
	if err := unix.Mount(dev, dir, fstype, 0, ""); err != nil {
		t.Fatalf("mount %s (%s) on %s: %v", dev, fstype, dir, err)
	}
	mounted := true
	unmount = func() {
		t.Helper()
		if !mounted {
			return
		}
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
			return
		}
		mounted = false
	}
	t.Cleanup(unmount)
	return dir, unmount
}
