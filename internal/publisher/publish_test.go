package publisher

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/autoami/terraform-provider-autoami/internal/testworld"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/bootfs"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/qemuboot"
)

// testPublication is a from-scratch tree stream's publication with every
// attribute set, shared with the consumer account and the organization.
func testPublication(id, stream, revision string) Publication {
	return Publication{
		ID: id, Stream: stream, Revision: revision,
		NameTemplate: "{stream}-{revision}-{date}", Date: time.Date(2026, 11, 30, 12, 34, 0, 0, time.UTC),
		Description:  "autoami test image",
		Architecture: "x86_64", BootMode: "uefi-preferred", ENASupport: true, IMDSSupport: "v2.0", VolumeType: "gp3",
		LaunchPermission: LaunchPermission{AccountIDs: []string{consumer}, OrganizationARNs: []string{orgARN}},
		SSMParameter:     &SSMParameter{Name: "/autoami/" + stream + "/image-id"},
		DeprecateAt:      time.Now().Add(30 * 24 * time.Hour),
		Tags:             map[string]string{"team": "web"},
	}
}

// Two accounts × two regions, a from-scratch tree stream from the boot
// fixture: every AMI exists with the asked attributes, encrypted with its
// target's default key, shared as asked, its SSM parameter holding its ID;
// every target's root file system holds exactly the revision's files and
// identical boot partitions, and one target's AMI boots under BIOS and
// UEFI. Revision 2 changes one file: each unpacker fetches only that
// object, each new snapshot differs from the previous one in at most 16
// blocks of 512 KiB, and it boots. Delete leaves nothing of the
// publication.
func TestPublishTreeToFourTargets(t *testing.T) {
	e := newEnv(t)
	trees := bootfs.MustBuild(t)
	if err := world.Moto.SetPending(e.ctx, moto.Pending{Image: 300 * time.Millisecond, Snapshot: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	targets := e.targets(accountA, accountB)
	const stream = "web/boot"
	rev1 := e.upload(stream, trees.Rev1)
	pub := testPublication("pub-four", stream, rev1)
	pub.DeregistrationProtection = true
	p := e.publisher()

	start := time.Now()
	out := p.Publish(e.ctx, pub, targets)
	took := since(start)
	if err := out.Error(); err != nil {
		t.Fatal(err)
	}
	t.Logf("revision 1 published to %d targets in %s", len(targets), took)

	name := "web/boot-" + rev1[:12] + "-20261130-1234"
	disks := map[string]disk{}
	for _, r := range out.Results {
		tg, rec := r.Target, r.Record
		if !rec.Published() || rec.Name != name || rec.Revision != rev1 || rec.CreatedAt.IsZero() || rec.VolumeID == "" {
			t.Errorf("%s: record %+v, want published %s", tg, rec, name)
			continue
		}
		img := e.image(tg.AccountID, tg.Region, rec.ImageID)
		checkImage(t, img, pub, rec)
		snap := e.snapshot(tg.AccountID, tg.Region, rec.SnapshotID)
		if !aws.ToBool(snap.Encrypted) || aws.ToString(snap.KmsKeyId) != e.keys[tg.Key()] {
			t.Errorf("%s: snapshot %s encrypted %v with %s, want the target's default key %s", tg, rec.SnapshotID,
				aws.ToBool(snap.Encrypted), aws.ToString(snap.KmsKeyId), e.keys[tg.Key()])
		}
		if tags := tagsOf(snap.Tags); tags[TagRevision] != rev1 || tags[TagPublication] != pub.ID || tags["team"] != "web" {
			t.Errorf("%s: snapshot tags %v", tg, tags)
		}
		// Shared: the consumer sees the image and may create volumes from the snapshot.
		if shared := e.image(consumer, tg.Region, rec.ImageID); aws.ToString(shared.OwnerId) != tg.AccountID {
			t.Errorf("%s: the consumer sees owner %s", tg, aws.ToString(shared.OwnerId))
		}
		perms, err := e.ec2In(tg.AccountID, tg.Region).DescribeSnapshotAttribute(e.ctx, &ec2.DescribeSnapshotAttributeInput{
			SnapshotId: aws.String(rec.SnapshotID), Attribute: ec2types.SnapshotAttributeNameCreateVolumePermission})
		if err != nil || len(perms.CreateVolumePermissions) != 1 || aws.ToString(perms.CreateVolumePermissions[0].UserId) != consumer {
			t.Errorf("%s: createVolumePermission %+v, %v; want the consumer only", tg, perms, err)
		}
		if got, want := e.launchGrantsOf(tg, rec.ImageID), []grant{grant("account:" + consumer), grant("organization:" + orgARN)}; !slices.Equal(got, want) {
			t.Errorf("%s: launch permissions %v, want %v", tg, got, want)
		}
		if v, ok := e.parameter(tg.AccountID, tg.Region, pub.SSMParameter.Name); !ok || v != rec.ImageID {
			t.Errorf("%s: SSM parameter %s = %q (exists %v), want %s", tg, pub.SSMParameter.Name, v, ok, rec.ImageID)
		}
		disks[tg.Key()] = e.readDisk(tg.AccountID, tg.Region, rec.SnapshotID)
	}
	// Every root file system holds exactly the revision's files, the boot
	// partitions (GRUB's core.img, the ESP) are the same bytes in every
	// target, and so are the whole snapshots: the root's metadata is
	// normalized and the unpacker allocates inodes and blocks in manifest
	// order, whatever order the objects arrive in (patch: Deterministic
	// placement).
	first := disks[targets[0].Key()]
	same := 0
	for _, k := range sortedKeys(disks) {
		d := disks[k]
		if d.rootDigest != rev1 {
			t.Errorf("%s: the root file system's manifest is %s, want revision %s", k, d.rootDigest, rev1)
		}
		if d.bootHashes != first.bootHashes {
			t.Errorf("%s: boot partitions differ from %s's: %v vs %v", k, targets[0].Key(), d.bootHashes, first.bootHashes)
		}
		if d.imageHash == first.imageHash {
			same++
		} else {
			t.Errorf("%s: the snapshot differs from %s's (sha256 %s vs %s)", k, targets[0].Key(), d.imageHash, first.imageHash)
		}
	}
	t.Logf("%d of %d root snapshots are byte-identical to %s's", same, len(disks), targets[0].Key())
	e.wantOnePerTarget(pub, targets, 1)
	if t.Failed() {
		t.FailNow()
	}

	// One target's AMI boots both ways; the others hold the same files and
	// boot partitions, so they boot alike.
	bootStart := time.Now()
	booted, err := world.BootImage(e.ctx, targets[0].Region, targets[0].AccountID, out.Results[0].Record.ImageID, testworld.BootOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(booted.Boots) != 2 || booted.Boots[qemuboot.BIOS] == nil || booted.Boots[qemuboot.UEFI] == nil {
		t.Fatalf("booted %v, want BIOS and UEFI", slices.Collect(func(yield func(qemuboot.Firmware) bool) {
			for fw := range booted.Boots {
				yield(fw)
			}
		}))
	}
	t.Logf("revision 1 booted under BIOS and UEFI in %s", since(bootStart))

	// Revision 2: one file changed.
	dir2 := filepath.Join(t.TempDir(), "rev2")
	if out, err := exec.Command("cp", "-a", trees.Rev1, dir2).CombinedOutput(); err != nil {
		t.Fatalf("copy the tree: %v: %s", err, out)
	}
	changed := []byte("web-rev2\n")
	if err := os.WriteFile(filepath.Join(dir2, "etc", "hostname"), changed, 0o644); err != nil {
		t.Fatal(err)
	}
	rev2 := e.upload(stream, dir2)
	pub2 := pub
	pub2.Revision = rev2
	gets := world.Faults.Stat("s3:GetObject").Calls
	start = time.Now()
	out2 := p.Publish(e.ctx, pub2, targets)
	if err := out2.Error(); err != nil {
		t.Fatal(err)
	}
	t.Logf("revision 2 published to %d targets in %s", len(targets), since(start))
	// The publisher reads the manifest once; each unpacker its manifest and the one object.
	if got, want := world.Faults.Stat("s3:GetObject").Calls-gets, 1+2*len(targets); got != want {
		t.Errorf("revision 2 made %d S3 GETs, want %d (one manifest for the publisher, a manifest and one object per target)", got, want)
	}
	for i, r := range out2.Results {
		tg, rec := r.Target, r.Record
		st, err := mustDial(t, tg).Status(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Streams) != 1 || st.Streams[0].Progress == nil || st.Streams[0].Progress.ObjectsTotal != 1 ||
			st.Streams[0].Progress.BytesTotal != int64(len(changed)) {
			t.Errorf("%s: the unpacker's last unpack %+v, want one object of %d bytes fetched", tg, st.Streams, len(changed))
		}
		before := out.Results[i].Record
		if rec.VolumeID != before.VolumeID || rec.ImageID == before.ImageID {
			t.Errorf("%s: revision 2 record %+v after %+v: want the same stream volume and a new image", tg, rec, before)
		}
		if n := e.changedBlocks(tg.AccountID, tg.Region, before.SnapshotID, rec.SnapshotID); n > 16 || n == 0 {
			t.Errorf("%s: revision 2's snapshot differs from revision 1's in %d blocks of 512 KiB, want 1 to 16", tg, n)
		} else {
			t.Logf("%s: revision 2's snapshot differs in %d blocks of 512 KiB", tg, n)
		}
		if v, _ := e.parameter(tg.AccountID, tg.Region, pub.SSMParameter.Name); v != rec.ImageID {
			t.Errorf("%s: SSM parameter holds %s, want revision 2's %s", tg, v, rec.ImageID)
		}
		// The previous AMI stays registered (retention removes it later).
		if old := e.image(tg.AccountID, tg.Region, before.ImageID); old.State != ec2types.ImageStateAvailable {
			t.Errorf("%s: revision 1's image is %s", tg, old.State)
		}
	}
	d2 := e.readDisk(targets[1].AccountID, targets[1].Region, out2.Results[1].Record.SnapshotID)
	if d2.rootDigest != rev2 {
		t.Errorf("revision 2's root file system has manifest %s, want %s", d2.rootDigest, rev2)
	}
	e.wantOnePerTarget(pub2, targets, 2)
	bootStart = time.Now()
	if _, err := world.BootImage(e.ctx, targets[1].Region, targets[1].AccountID, out2.Results[1].Record.ImageID,
		testworld.BootOptions{Firmware: qemuboot.UEFI}); err != nil {
		t.Fatal(err)
	}
	t.Logf("revision 2 booted under UEFI in %s", since(bootStart))

	// Delete: nothing of the publication is left, protection lifted first.
	if err := p.Delete(e.ctx, pub2, targets); err != nil {
		t.Fatal(err)
	}
	if left := e.leftovers(pub.ID); len(left) > 0 {
		t.Errorf("left after Delete: %v", left)
	}
	for _, tg := range targets {
		if v, ok := e.parameter(tg.AccountID, tg.Region, pub.SSMParameter.Name); ok {
			t.Errorf("%s: SSM parameter still holds %s after Delete", tg, v)
		}
	}
}

// checkImage compares an image with what the publication asked for.
func checkImage(t *testing.T, img ec2types.Image, pub Publication, rec Record) {
	t.Helper()
	var problems []string
	want := func(what string, got, want any) {
		if got != want {
			problems = append(problems, what+": "+strings.TrimSpace(strings.ReplaceAll(fmtAny(got), "\n", " "))+", want "+fmtAny(want))
		}
	}
	want("name", aws.ToString(img.Name), rec.Name)
	want("state", img.State, ec2types.ImageStateAvailable)
	want("description", aws.ToString(img.Description), pub.Description)
	want("architecture", string(img.Architecture), pub.Architecture)
	want("boot mode", string(img.BootMode), pub.BootMode)
	want("ENA", aws.ToBool(img.EnaSupport), pub.ENASupport)
	want("IMDS", string(img.ImdsSupport), pub.IMDSSupport)
	want("virtualization", string(img.VirtualizationType), "hvm")
	want("root device", aws.ToString(img.RootDeviceName), rootDeviceName)
	want("protection", protectionEnabled(img), pub.DeregistrationProtection)
	want("deprecation", aws.ToString(img.DeprecationTime), ceilMinute(pub.DeprecateAt).Format("2006-01-02T15:04:05.000Z"))
	if len(img.BlockDeviceMappings) != 1 || img.BlockDeviceMappings[0].Ebs == nil {
		problems = append(problems, "block devices: want one EBS root")
	} else {
		ebs := img.BlockDeviceMappings[0].Ebs
		want("root snapshot", aws.ToString(ebs.SnapshotId), rec.SnapshotID)
		want("root encrypted", aws.ToBool(ebs.Encrypted), true)
		want("root volume type", string(ebs.VolumeType), pub.VolumeType)
		want("root delete on termination", aws.ToBool(ebs.DeleteOnTermination), true)
	}
	tags := tagsOf(img.Tags)
	for k, v := range map[string]string{TagStream: pub.Stream, TagRevision: rec.Revision, TagPublication: pub.ID, TagTarget: rec.Target, "team": "web", "Name": rec.Name} {
		want("tag "+k, tags[k], v)
	}
	if len(problems) > 0 {
		t.Errorf("%s: image %s:\n  %s", rec.Target, aws.ToString(img.ImageId), strings.Join(problems, "\n  "))
	}
}
