package devices

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop devices (make test runs as root)")
	}
}

// detachAll detaches every loop device of the local volume files in dir,
// by name, also when the test failed half-way.
func detachAll(t *testing.T, dir string) {
	t.Cleanup(func() {
		files, _ := filepath.Glob(filepath.Join(dir, "*.img"))
		for _, file := range files {
			loops, _ := LoopsOf(context.Background(), file)
			for _, loop := range loops {
				if out, err := exec.Command("losetup", "-d", loop).CombinedOutput(); err != nil {
					t.Errorf("cleanup: losetup -d %s: %v: %s", loop, err, out)
				}
			}
		}
	})
}

func TestLocalFinder(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	detachAll(t, dir)
	f, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const vol = "vol-0123456789abcdef0"

	if _, err := f.Attach(ctx, AttachRequest{VolumeID: vol}); err == nil {
		t.Fatal("attach of a missing local volume without a size succeeded")
	}
	if _, err := f.Lookup(ctx, vol); err == nil {
		t.Fatal("lookup of a missing local volume succeeded")
	}

	dev, err := f.Attach(ctx, AttachRequest{VolumeID: vol, SizeBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if dev.SizeBytes != 64<<20 || dev.BackingFile != filepath.Join(dir, vol+".img") {
		t.Fatalf("got %+v", dev)
	}
	var st syscallStat
	if err := statBlocks(dev.BackingFile, &st); err != nil {
		t.Fatal(err)
	}
	if st.allocated > 1<<20 {
		t.Errorf("new local volume allocates %d bytes, want a sparse file", st.allocated)
	}
	again, err := f.Attach(ctx, AttachRequest{VolumeID: vol, SizeBytes: 128 << 20})
	if err != nil || again.Path != dev.Path || again.SizeBytes != 64<<20 {
		t.Fatalf("second attach: %+v, %v; want the same loop device %s, size unchanged", again, err, dev.Path)
	}

	// Partition it; the partition nodes must appear without udev.
	if out, err := exec.Command("sgdisk", "-n", "1:2048:+8M", "-n", "2:0:0", dev.Path).CombinedOutput(); err != nil {
		t.Fatalf("sgdisk: %v: %s", err, out)
	}
	parts, err := EnsurePartitionNodes(ctx, dev.Path)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 || parts[0] != dev.Path+"p1" || parts[1] != dev.Path+"p2" {
		t.Fatalf("partitions %v, want %sp1 and %sp2", parts, dev.Path, dev.Path)
	}
	for _, p := range parts {
		if fi, err := os.Stat(p); err != nil || fi.Mode()&os.ModeDevice == 0 {
			t.Errorf("partition node %s: %v %v", p, fi, err)
		}
	}

	// A restart after the loop device went away (a reboot) re-attaches the file.
	if err := f.Detach(ctx, vol); err != nil {
		t.Fatal(err)
	}
	if loops, _ := LoopsOf(ctx, dev.BackingFile); len(loops) != 0 {
		t.Fatalf("loops %v still attached after Detach", loops)
	}
	back, err := f.Lookup(ctx, vol)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(back.Path + "p2"); err != nil {
		t.Errorf("partition node after re-attach: %v", err)
	}
}
