package devices

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"
)

// fakeMachine lays out a /dev and /sys the way an EC2 instance shows its
// volumes; regular files stand in for device nodes (sizeOf seeks to the end).
type fakeMachine struct{ dev, sys string }

func newFakeMachine(t *testing.T) fakeMachine {
	t.Helper()
	root := t.TempDir()
	m := fakeMachine{dev: filepath.Join(root, "dev"), sys: filepath.Join(root, "sys")}
	for _, d := range []string{m.dev + "/disk/by-id", m.sys + "/block"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func (m fakeMachine) node(t *testing.T, name string, size int64) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(m.dev, name), make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (m fakeMachine) nvme(t *testing.T, name, serial string, link bool) {
	t.Helper()
	m.node(t, name, 4096)
	dir := filepath.Join(m.sys, "block", name, "device")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "serial"), []byte(serial+"          \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if link {
		if err := os.Symlink("../../"+name, filepath.Join(m.dev, "disk/by-id", ebsPrefix+serial)); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../../"+name+"p1", filepath.Join(m.dev, "disk/by-id", ebsPrefix+serial+"-part1")); err != nil {
			t.Fatal(err)
		}
	}
}

func TestEBSFinder(t *testing.T) {
	m := newFakeMachine(t)
	m.nvme(t, "nvme0n1", "vol0aaaaaaaaaaaaaaaa", true)   // root volume
	m.nvme(t, "nvme1n1", "vol0123456789abcdef0", true)   // udev link
	m.nvme(t, "nvme2n1", "vol0123456789abcdef01", false) // longer ID sharing a prefix, sysfs only
	m.nvme(t, "nvme3n1", "vol0fedcba9876543210", false)  // no udev: serial only
	m.node(t, "xvdf", 8192)                              // Xen instance
	f := newEBS(EBSOptions{DevDir: m.dev, SysDir: m.sys, PollInterval: 10 * time.Millisecond})
	ctx := context.Background()
	cases := []struct {
		name, volume, deviceName, want string
		size                           int64
	}{
		{"udev link", "vol-0123456789abcdef0", "", "nvme1n1", 4096},
		{"prefix of a longer id is not a match", "vol-0123456789abcdef01", "", "nvme2n1", 4096},
		{"nvme serial without udev", "vol-0fedcba9876543210", "/dev/sdg", "nvme3n1", 4096},
		{"sd name shown as xvd", "vol-0999999999999999a", "/dev/sdf", "xvdf", 8192},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dev, err := f.Attach(ctx, AttachRequest{VolumeID: c.volume, DeviceName: c.deviceName})
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(m.dev, c.want); dev.Path != want || dev.SizeBytes != c.size || dev.VolumeID != c.volume {
				t.Errorf("got %+v, want path %s size %d", dev, want, c.size)
			}
		})
	}
	// The waits run in synctest bubbles: the finder's polls and the
	// deadlines are fake time, so each wait ends at an exact instant.
	t.Run("missing volume times out with ErrNotFound", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := f.Attach(ctx, AttachRequest{VolumeID: "vol-0000000000000000b", DeviceName: "/dev/sdz"})
			if !errors.Is(err, ErrNotFound) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("got %v, want ErrNotFound and a deadline", err)
			}
			if el := time.Since(start); el != 50*time.Millisecond {
				t.Errorf("gave up after %s, want the deadline's 50ms", el)
			}
		})
	})
	t.Run("device appearing while waiting", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			go func() {
				time.Sleep(35 * time.Millisecond) // fake time (synctest)
				m.nvme(t, "nvme4n1", "vol0bbbbbbbbbbbbbbbb", true)
			}()
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			dev, err := f.Attach(ctx, AttachRequest{VolumeID: "vol-0bbbbbbbbbbbbbbbb"})
			if err != nil || dev.Path != filepath.Join(m.dev, "nvme4n1") {
				t.Fatalf("got %+v, %v", dev, err)
			}
			if el := time.Since(start); el != 40*time.Millisecond {
				t.Errorf("found the device after %s, want the first poll (every 10ms) after it appeared at 35ms", el)
			}
		})
	})
	t.Run("lookup does not wait", func(t *testing.T) {
		if _, err := f.Lookup(ctx, "vol-0cccccccccccccccc"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
	})
}

func TestPartitionPath(t *testing.T) {
	for dev, want := range map[string]string{
		"/dev/loop3":   "/dev/loop3p2",
		"/dev/nvme1n1": "/dev/nvme1n1p2",
		"/dev/xvdf":    "/dev/xvdf2",
		"/dev/sda":     "/dev/sda2",
	} {
		if got := PartitionPath(dev, 2); got != want {
			t.Errorf("PartitionPath(%s, 2) = %s, want %s", dev, got, want)
		}
	}
}
