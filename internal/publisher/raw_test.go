package publisher

import (
	"crypto/rand"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/imagestream"
	"github.com/autoami/terraform-provider-autoami/internal/testworld"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/bootdisk"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/qemuboot"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
)

// uploadRaw publishes a raw disk image as the stream's next revision.
func (e *env) uploadRaw(stream, path string) string {
	e.t.Helper()
	c, err := imagestream.Load(e.ctx, imagestream.Source{Kind: imagestream.KindRawImage, RawImage: path}, imagestream.LoadOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	if _, err := imagestream.Upload(e.ctx, e.store, stream, c, time.Now(), nil); err != nil {
		e.t.Fatal(err)
	}
	return c.Revision
}

// A raw-image stream (the boot fixture's disk) is written straight into a
// snapshot with EBS direct, no unpacker involved, and the AMI boots. Its
// next revision, with four 512 KiB blocks changed, starts from the first
// snapshot and writes exactly those four blocks.
func TestPublishRawImage(t *testing.T) {
	e := newEnv(t)
	disk, err := bootdisk.Build(e.ctx, bootdisk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	targets := e.targets(accountA)[:1]
	const stream = "base/disk"
	rev1 := e.uploadRaw(stream, disk.Path)
	pub := testPublication("pub-raw", stream, rev1)
	p := e.publisher()
	start := time.Now()
	out := p.Publish(e.ctx, pub, targets)
	if err := out.Error(); err != nil {
		t.Fatal(err)
	}
	rec1 := out.Results[0].Record
	t.Logf("raw revision 1 (%d MiB) published in %s", bootdisk.Size>>20, since(start))
	steps := e.events.steps(targets[0].Key())
	if slices.Contains(steps, StepConnect) || !slices.Contains(steps, StepWriteSnapshot) {
		t.Errorf("steps %v: want EBS direct, no unpacker", steps)
	}
	tg := targets[0]
	img := e.image(tg.AccountID, tg.Region, rec1.ImageID)
	checkImage(t, img, pub, rec1)
	if snap := e.snapshot(tg.AccountID, tg.Region, rec1.SnapshotID); e.keys[tg.Key()] != *snap.KmsKeyId {
		t.Errorf("raw snapshot encrypted with %s, want the target's default key %s", *snap.KmsKeyId, e.keys[tg.Key()])
	}
	if _, err := world.BootImage(e.ctx, tg.Region, tg.AccountID, rec1.ImageID, testworld.BootOptions{Firmware: qemuboot.BIOS}); err != nil {
		t.Fatal(err)
	}

	// Revision 2: 4 blocks changed (one write straddles a block boundary).
	disk2 := filepath.Join(t.TempDir(), "disk2.img")
	if out, err := exec.Command("cp", "--sparse=always", disk.Path, disk2).CombinedOutput(); err != nil {
		t.Fatalf("copy the disk: %v: %s", err, out)
	}
	f, err := os.OpenFile(disk2, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 4096)
	for _, off := range []int64{700 << 20, 800<<20 - 2048, 900 << 20} {
		_, _ = rand.Read(junk)
		if _, err := f.WriteAt(junk, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	rev2 := e.uploadRaw(stream, disk2)
	pub2 := pub
	pub2.Revision = rev2
	puts := world.Faults.Stat("ebs:PutSnapshotBlock").Calls
	out2 := p.Publish(e.ctx, pub2, targets)
	if err := out2.Error(); err != nil {
		t.Fatal(err)
	}
	rec2 := out2.Results[0].Record
	if n := world.Faults.Stat("ebs:PutSnapshotBlock").Calls - puts; n != 4 {
		t.Errorf("revision 2 wrote %d blocks, want the 4 that changed", n)
	}
	if n := e.changedBlocks(tg.AccountID, tg.Region, rec1.SnapshotID, rec2.SnapshotID); n != 4 {
		t.Errorf("revision 2's snapshot differs from revision 1's in %d blocks, want 4", n)
	}
	// The snapshot holds revision 2's bytes exactly.
	sf, err := os.Open(moto.SnapshotFile(world.Moto.DataDir, tg.AccountID, tg.Region, rec2.SnapshotID))
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	m2, err := manifest.FromRawImage(e.ctx, sf, bootdisk.Size)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := m2.Digest(); d.String() != rev2 {
		t.Errorf("revision 2's snapshot reads as %s, want %s", d, rev2)
	}
	if got, want := countByKind(e.leftovers(pub.ID)), map[string]int{tg.Key() + " snapshot": 2, tg.Key() + " image": 2, tg.Key() + " parameter": 1}; !maps.Equal(got, want) {
		t.Errorf("resources of the raw publication: %v, want %v (no stream volume)", got, want)
	}
	if err := p.Delete(e.ctx, pub2, targets); err != nil {
		t.Fatal(err)
	}
	if left := e.leftovers(pub.ID); len(left) > 0 {
		t.Errorf("left after Delete: %v", left)
	}
}
