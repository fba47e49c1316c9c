package volume

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/loopdev"
)

// growImage grows an attached image file to size bytes and has its loop
// device see the new size, as an NVMe device sees an EBS volume grow.
func growImage(t *testing.T, img, loop string, size int64) {
	t.Helper()
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	runT(t, "losetup", "--set-capacity", loop)
}

// TestGrow grows a normalized from-scratch volume whose disk grew from 300
// to 600 MiB: the backup GPT moves to the end, the root partition keeps its
// start, type, GUID and name and fills the disk, the boot code and the other
// partitions are untouched, the file system fills the partition, checks
// clean and holds its files; a second Grow changes nothing; and a copy of
// the volume grown the same way holds the same bytes.
func TestGrow(t *testing.T) {
	loopdev.RequireRoot(t)
	ctx := context.Background()
	imgA, la, _ := buildVolume(t, "a.img")
	if err := Normalize(ctx, la, NormalizeOptions{}); err != nil {
		t.Fatal(err)
	}
	imgB := filepath.Join(t.TempDir(), "b.img")
	runT(t, "cp", "--sparse=always", imgA, imgB)
	before := readImage(t, imgA)
	tableBefore := runT(t, "sfdisk", "--json", la.Disk)

	if needed, why, err := GrowthNeeded(ctx, la, GrowOptions{}); err != nil || needed {
		t.Fatalf("growth needed on a new volume: %v (%s), %v", needed, why, err)
	}
	const newSize = 600 << 20
	growImage(t, imgA, la.Disk, newSize)
	needed, why, err := GrowthNeeded(ctx, la, GrowOptions{})
	if err != nil || !needed {
		t.Fatalf("growth needed after the disk grew: %v (%s), %v", needed, why, err)
	}
	t.Logf("before growing: %s", why)

	// A mounted root is refused (and left as it was).
	_, unmount := loopdev.Mount(t, la.Root.Device, "ext4")
	if _, _, err := Grow(ctx, la, GrowOptions{}); err == nil || !strings.Contains(err.Error(), "unmounted") {
		t.Errorf("Grow of a mounted root: %v", err)
	}
	unmount()
	if err := Normalize(ctx, la, NormalizeOptions{}); err != nil { // undo the mount's traces
		t.Fatal(err)
	}

	grown, rep, err := Grow(ctx, la, GrowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("grew: %+v", *rep)
	if rep.DiskBytes != newSize || rep.RootAfter <= rep.RootBefore || rep.FilesystemAfter <= rep.FilesystemBefore ||
		rep.RootAfter-rep.FilesystemAfter >= growSlack || grown.Root.Size != rep.RootAfter {
		t.Errorf("report %+v, layout root size %d", *rep, grown.Root.Size)
	}
	// No inode table is left for the kernel to zero after a mount.
	groups := 0
	for _, line := range strings.Split(runT(t, "dumpe2fs", grown.Root.Device), "\n") {
		if strings.HasPrefix(line, "Group ") && strings.Contains(line, "(Blocks ") {
			groups++
			if !strings.Contains(line, "ITABLE_ZEROED") {
				t.Errorf("a block group's inode table is not initialised: %s", line)
			}
		}
	}
	if groups < 3 {
		t.Errorf("dumpe2fs lists %d block groups", groups)
	}
	if out := runT(t, "sgdisk", "--verify", la.Disk); !strings.Contains(out, "No problems found") {
		t.Errorf("sgdisk --verify after growing:\n%s", out)
	}
	var was, is sfdiskDump
	if err := json.Unmarshal([]byte(tableBefore), &was); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(runT(t, "sfdisk", "--json", la.Disk)), &is); err != nil {
		t.Fatal(err)
	}
	for i, p := range is.PartitionTable.Partitions {
		w := was.PartitionTable.Partitions[i]
		if p.Start != w.Start || p.Type != w.Type || p.Name != w.Name || (i < 2 && p.Size != w.Size) {
			t.Errorf("partition %d was %+v, is %+v", i+1, w, p)
		}
	}
	after := readImage(t, imgA)
	espEnd := la.ESP.Start + la.ESP.Size
	if !bytes.Equal(before[:440], after[:440]) || !bytes.Equal(before[la.BIOSBoot.Start:espEnd], after[la.BIOSBoot.Start:espEnd]) {
		t.Error("growing changed the MBR's boot code, the BIOS boot partition or the ESP")
	}
	if uuid := runT(t, "sgdisk", "--info=3", la.Disk); !strings.Contains(strings.ToLower(uuid), strings.ToLower(mustIDs(t).root)) {
		t.Errorf("root partition GUID changed:\n%s", uuid)
	}
	if needed, why, err := GrowthNeeded(ctx, grown, GrowOptions{}); err != nil || needed {
		t.Errorf("growth needed after Grow: %v (%s), %v", needed, why, err)
	}
	if _, _, err := Grow(ctx, grown, GrowOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := diffRegions(after, readImage(t, imgA)); d != "" {
		t.Errorf("a second Grow changed the volume: %s", d)
	}

	// The same volume grown the same way elsewhere: the same bytes.
	devB := loopdev.Attach(t, imgB)
	growImage(t, imgB, devB.Path, newSize)
	lb, err := Find(ctx, devB.Path, FindOptions{RootLabel: la.Root.Label})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Grow(ctx, lb, GrowOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := diffRegions(after, readImage(t, imgB)); d != "" {
		t.Errorf("two copies of a volume grown to the same size differ: %s", d)
	}

	if out, err := runE("e2fsck", "-f", "-n", grown.Root.Device); err != nil {
		t.Fatalf("e2fsck -fn of the grown root: %v\n%s", err, out)
	}
	root, unmount := loopdev.Mount(t, grown.Root.Device, "ext4")
	defer unmount()
	if ents, err := os.ReadDir(filepath.Join(root, "usr/share/many")); err != nil || len(ents) != 300 {
		t.Fatalf("the grown root lists %d entries (%v), want 300", len(ents), err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "usr/share/fragmented")); err != nil || len(b) != 127*4096 {
		t.Fatalf("read the fragmented file: %d bytes, %v", len(b), err)
	}
	// The new space is usable: a file larger than the old file system.
	big := filepath.Join(root, "big")
	if err := os.WriteFile(big, bytes.Repeat([]byte{7}, 220<<20), 0o644); err != nil {
		t.Fatalf("write 220 MiB on the grown root: %v", err)
	}
}

func mustIDs(t *testing.T) identifiers {
	t.Helper()
	ids, err := newIdentifiers("web/debian")
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func runE(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
