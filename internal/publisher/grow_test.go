package publisher

import (
	"encoding/binary"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/bootfs"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
)

// treeBytes is the sum of the sizes of dir's regular files (what a
// revision's volume is sized by).
func treeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		n += info.Size()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// checkRootFillsDisk checks a disk image of size bytes: its GPT ends at
// the disk's end, the root (last) partition at the end of the usable space,
// and the ext4 file system fills the root partition.
func checkRootFillsDisk(t *testing.T, img string, size int64) {
	t.Helper()
	if st, err := os.Stat(img); err != nil || st.Size() != size {
		t.Fatalf("disk image %s: %v, %v; want %d bytes", img, st, err, size)
	}
	out, err := exec.Command("sfdisk", "--json", img).Output()
	if err != nil {
		t.Fatalf("sfdisk --json %s: %v", img, err)
	}
	var d struct {
		PartitionTable struct {
			LastLBA    int64 `json:"lastlba"`
			Partitions []struct {
				Start, Size int64
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &d); err != nil || len(d.PartitionTable.Partitions) != 3 {
		t.Fatalf("partition table of %s: %v: %s", img, err, out)
	}
	pt := d.PartitionTable
	root := pt.Partitions[2]
	if pt.LastLBA != size/512-34 || root.Start+root.Size-1 != pt.LastLBA {
		t.Errorf("the GPT ends its usable space at sector %d and the root at %d, want both at %d", pt.LastLBA, root.Start+root.Size-1, size/512-34)
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sb := make([]byte, 1024)
	if _, err := f.ReadAt(sb, root.Start*512+1024); err != nil {
		t.Fatal(err)
	}
	blocks := int64(binary.LittleEndian.Uint32(sb[0x04:]))
	if binary.LittleEndian.Uint32(sb[0x60:])&0x80 != 0 { // 64bit
		blocks |= int64(binary.LittleEndian.Uint32(sb[0x150:])) << 32
	}
	fsBytes := blocks * (1024 << binary.LittleEndian.Uint32(sb[0x18:]))
	if rootBytes := root.Size * 512; fsBytes > rootBytes || rootBytes-fsBytes > 16<<20 {
		t.Errorf("the root file system has %d bytes, its partition %d", fsBytes, rootBytes)
	}
	t.Logf("root partition %d bytes, file system %d bytes, disk %d bytes", root.Size*512, fsBytes, size)
}

// A revision that outgrows the stream volume grows it in place: the same
// volume, larger (ModifyVolume), its root grown by the unpacker; only the
// new object is fetched, and the snapshot's root holds the revision.
func TestOutgrownVolumeIsGrownInPlace(t *testing.T) {
	e := newEnv(t)
	trees := bootfs.MustBuild(t)
	tg, err := e.launch(accountA, regions[0])
	if err != nil {
		t.Fatal(err)
	}
	targets := []Target{tg}
	const stream = "web/grow"
	rev1 := e.upload(stream, trees.Rev1)
	pub := testPublication("pub-grow", stream, rev1)
	p := e.publisher()
	out := p.Publish(e.ctx, pub, targets)
	if err := out.Error(); err != nil {
		t.Fatal(err)
	}
	rec1 := out.Results[0].Record
	sizeOf := func(id string) int32 {
		t.Helper()
		d, err := e.ec2In(tg.AccountID, tg.Region).DescribeVolumes(e.ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{id}})
		if err != nil || len(d.Volumes) != 1 {
			t.Fatalf("DescribeVolumes %s: %v", id, err)
		}
		return aws.ToInt32(d.Volumes[0].Size)
	}
	size1 := sizeOf(rec1.VolumeID)

	// Revision 2: one big file, so that the content needs 1 GiB more.
	dir2 := filepath.Join(t.TempDir(), "rev2")
	if out, err := exec.Command("cp", "-a", trees.Rev1, dir2).CombinedOutput(); err != nil {
		t.Fatalf("copy the tree: %v: %s", err, out)
	}
	base := treeBytes(t, trees.Rev1)
	big := int64(size1)*gib*4/5 - volumeOverhead*4/5 - base + 8<<20
	if streamVolumeGiB(base+big) != size1+1 {
		t.Fatalf("a file of %d bytes sizes the volume at %d GiB, want %d", big, streamVolumeGiB(base+big), size1+1)
	}
	f, err := os.Create(filepath.Join(dir2, "srv", "big"))
	if err != nil {
		if err := os.MkdirAll(filepath.Join(dir2, "srv"), 0o755); err != nil {
			t.Fatal(err)
		}
		if f, err = os.Create(filepath.Join(dir2, "srv", "big")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.Write([]byte(strings.Repeat("autoami grows volumes in place\n", int(big)/31+1)[:big])); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	pub2 := pub
	pub2.Revision = e.upload(stream, dir2)
	out2 := p.Publish(e.ctx, pub2, targets)
	if err := out2.Error(); err != nil {
		t.Fatal(err)
	}
	rec2 := out2.Results[0].Record
	if rec2.VolumeID != rec1.VolumeID {
		t.Fatalf("revision 2 is on volume %s, revision 1 was on %s: want the volume grown in place", rec2.VolumeID, rec1.VolumeID)
	}
	if got := sizeOf(rec2.VolumeID); got != size1+1 {
		t.Errorf("the stream volume has %d GiB, want %d", got, size1+1)
	}
	st, err := mustDial(t, tg).Status(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Streams) != 1 || st.Streams[0].Progress == nil || st.Streams[0].Progress.ObjectsTotal != 1 {
		t.Errorf("the unpacker's last unpack %+v, want the one new object fetched", st.Streams)
	}
	if d := e.readDisk(tg.AccountID, tg.Region, rec2.SnapshotID); d.rootDigest != pub2.Revision {
		t.Errorf("revision 2's root file system has manifest %s, want %s", d.rootDigest, pub2.Revision)
	}
	checkRootFillsDisk(t, moto.SnapshotFile(world.Moto.DataDir, tg.AccountID, tg.Region, rec2.SnapshotID), int64(size1+1)*gib)
	e.wantOnePerTarget(pub2, targets, 2)
}
