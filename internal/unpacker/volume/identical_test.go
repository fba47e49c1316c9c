package volume

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/loopdev"
	"golang.org/x/sys/unix"
)

// identicalTree is written into a root in one fixed order: a bootable root
// (fakeRoot), a directory big enough for an htree index, a file fragmented
// enough for an extent tree with blocks of its own, and a symlink.
func writeIdenticalTree(t *testing.T, root string) {
	t.Helper()
	files := map[string]string{"usr/bin/sh": "->busybox"}
	for k, v := range fakeRoot {
		files[k] = v
	}
	for i := range 300 {
		files[fmt.Sprintf("usr/share/many/entry-with-a-long-name-%03d", i)] = strings.Repeat("x", i)
	}
	names := make([]string, 0, len(files))
	for p := range files {
		names = append(names, p)
	}
	slices.Sort(names)
	mtime := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	for _, p := range names {
		writeFiles(t, root, map[string]string{p: files[p]})
	}
	// Every other 4 KiB block of a file written backwards: many extents.
	frag, err := os.Create(filepath.Join(root, "usr/share/fragmented"))
	if err != nil {
		t.Fatal(err)
	}
	block := bytes.Repeat([]byte{0xA5}, 4096)
	for i := 63; i >= 0; i-- {
		if _, err := frag.WriteAt(block, int64(2*i)*4096); err != nil {
			t.Fatal(err)
		}
		if err := frag.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	frag.Close()
	// Directory mtimes last, as the patch engine sets them.
	ts := []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	err = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// buildVolume lays out a from-scratch volume of stream "web/debian" in a new
// image, writes identicalTree, makes it bootable, unmounts it and returns
// the image file, the layout and the root's bytes before Normalize.
func buildVolume(t *testing.T, name string) (string, *Layout, []byte) {
	t.Helper()
	ctx := context.Background()
	img := loopdev.NewImage(t, name, 300<<20)
	dev := loopdev.Attach(t, img)
	l, err := Create(ctx, dev.Path, CreateOptions{Seed: "web/debian", RootLabel: "autoami-5eed0001", AssumeZeroed: true})
	if err != nil {
		t.Fatal(err)
	}
	root, unmount := mountForIdenticalWrites(t, l.Root.Device)
	writeIdenticalTree(t, root)
	if _, err := MakeBootable(ctx, l, root, BootOptions{}); err != nil {
		t.Fatal(err)
	}
	unmount()
	before, err := os.ReadFile(l.Root.Device)
	if err != nil {
		t.Fatal(err)
	}
	return img, l, before
}

// TestSameStreamVolumesAreIdentical builds the same stream's volume twice,
// on two loop devices at two different times (the kernel's clock stamps
// ctimes, its random generator the inode generations), normalizes both roots
// for a snapshot and compares every byte of the two disks. The roots
// differ before Normalize, so the comparison can fail.
func TestSameStreamVolumesAreIdentical(t *testing.T) {
	loopdev.RequireRoot(t)
	ctx := context.Background()
	imgA, la, beforeA := buildVolume(t, "a.img")
	imgB, lb, beforeB := buildVolume(t, "b.img")
	if bytes.Equal(beforeA, beforeB) {
		t.Fatal("the two roots are identical before Normalize: the test proves nothing")
	}
	for _, l := range []*Layout{la, lb} {
		if err := Normalize(ctx, l, NormalizeOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	a, b := readImage(t, imgA), readImage(t, imgB)
	if d := diffRegions(a, b); d != "" {
		t.Fatalf("the two volumes differ after Normalize: %s", d)
	}

	// The normalized root is a clean file system (e2fsck finds nothing),
	// mounts, and holds what was written.
	if out, err := exec.Command("e2fsck", "-f", "-n", la.Root.Device).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn of a normalized root: %v\n%s", err, out)
	}
	root, unmount := loopdev.Mount(t, la.Root.Device, "ext4")
	ents, err := os.ReadDir(filepath.Join(root, "usr/share/many"))
	if err != nil || len(ents) != 300 {
		t.Fatalf("a normalized directory lists %d entries (%v), want 300", len(ents), err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "usr/share/fragmented")); err != nil || len(b) != 127*4096 {
		t.Fatalf("read the fragmented file: %d bytes, %v", len(b), err)
	}
	var st os.FileInfo
	if st, err = os.Stat(filepath.Join(root, "etc/os-release")); err != nil || !st.ModTime().Equal(time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)) {
		t.Fatalf("mtime after Normalize: %v %v", st, err)
	}
	unmount()

	// Normalize again: idempotent (after the mount above only the
	// superblock and the journal changed, and it puts them back).
	if err := Normalize(ctx, la, NormalizeOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := diffRegions(readImage(t, imgA), b); d != "" {
		t.Fatalf("a read-only use and a second Normalize changed the volume: %s", d)
	}

	// A mounted root is refused.
	_, unmount = loopdev.Mount(t, lb.Root.Device, "ext4")
	if err := Normalize(ctx, lb, NormalizeOptions{}); err == nil || !strings.Contains(err.Error(), "busy") {
		t.Errorf("Normalize of a mounted root: %v", err)
	}
	unmount()
}

func readImage(t *testing.T, img string) []byte {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// diffRegions describes where a and b differ ("" when they are equal): the
// number of differing bytes and the first regions as offset+length.
func diffRegions(a, b []byte) string {
	if bytes.Equal(a, b) {
		return ""
	}
	if len(a) != len(b) {
		return fmt.Sprintf("sizes %d and %d", len(a), len(b))
	}
	var regions []string
	n := 0
	for i := 0; i < len(a); i++ {
		if a[i] == b[i] {
			continue
		}
		j := i
		for j < len(a) && a[j] != b[j] {
			j++
		}
		n += j - i
		if len(regions) < 40 {
			regions = append(regions, fmt.Sprintf("%d+%d", i, j-i))
		}
		i = j
	}
	return fmt.Sprintf("%d bytes differ, at %s", n, strings.Join(regions, " "))
}

// mountForIdenticalWrites mounts an ext4 root so that where the kernel puts
// blocks depends only on the order of the writes: without delayed
// allocation (blocks are chosen at write(), not by whichever flusher runs
// later) and without the per-CPU group preallocations of small files
// (mb_group_prealloc 0; a goroutine may move between CPUs). Normalize does
// not change block placement; a writer that wants identical volumes must
// write in a fixed order on such a mount.
func mountForIdenticalWrites(t *testing.T, dev string) (string, func()) {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount(dev, dir, "ext4", unix.MS_NOATIME, "nodelalloc"); err != nil {
		t.Fatalf("mount %s: %v", dev, err)
	}
	mounted := true
	unmount := func() {
		if mounted {
			if err := unix.Unmount(dir, 0); err != nil {
				t.Errorf("unmount %s: %v", dir, err)
				return
			}
			mounted = false
		}
	}
	t.Cleanup(unmount)
	knob := filepath.Join("/sys/fs/ext4", filepath.Base(dev), "mb_group_prealloc")
	if err := os.WriteFile(knob, []byte("0"), 0o644); err != nil {
		t.Fatalf("turn off group preallocation: %v", err)
	}
	return dir, unmount
}
