package moto

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/loopdev"
)

// GAP: a volume is a row in a table and a snapshot holds no bytes. Bytes
// written to a volume (through a loop device, as an unpacker writes them)
// survive volume -> snapshot -> volume; the snapshot is the volume as it was at
// CreateSnapshot; copies are sparse.
func TestBlocksSurviveVolumeSnapshotVolume(t *testing.T) {
	loopdev.RequireRoot(t)
	ctx := fresh(t)
	c := ec2As(t, ctx, DefaultAccountID, region)

	volumeID := newVolume(t, ctx, c, 2, "")
	volume := VolumeFile(world.DataDir, DefaultAccountID, region, volumeID)
	wantFileSize(t, volume, 2*gibibyte)
	if n := allocatedBytes(t, volume); n != 0 {
		t.Errorf("a new volume's file allocates %d bytes, want 0 (sparse)", n)
	}
	want := map[int64][]byte{0: blockPattern("first"), 600: blockPattern("middle"), 2*gibibyte/blockSize - 1: blockPattern("last")}
	dev := attachLoopAsDaemon(t, volume)
	for idx, data := range want {
		writeFileBlock(t, dev, idx, data)
	}
	if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
		t.Fatalf("losetup -d %s: %v: %s", dev, err, out)
	}

	snapshotID := newSnapshot(t, ctx, c, volumeID)
	snapshot := SnapshotFile(world.DataDir, DefaultAccountID, region, snapshotID)
	// The volume changes after the snapshot; the snapshot does not.
	writeFileBlock(t, volume, 0, blockPattern("after the snapshot"))
	wantFileSize(t, snapshot, 2*gibibyte)
	wantFileBlocks(t, snapshot, want)

	restoredID := newVolumeFrom(t, ctx, c, snapshotID, 3)
	restored := VolumeFile(world.DataDir, DefaultAccountID, region, restoredID)
	wantFileSize(t, restored, 3*gibibyte)
	wantFileBlocks(t, restored, want)
	if a, s := allocatedBytes(t, restored), allocatedBytes(t, snapshot); a > s || s > 4*blockSize {
		t.Errorf("restored volume allocates %d bytes, its snapshot %d: want a sparse copy of 3 blocks", a, s)
	}
	if v := volumeByID(t, ctx, c, restoredID); aws.ToString(v.SnapshotId) != snapshotID || aws.ToInt32(v.Size) != 3 {
		t.Errorf("restored volume: snapshot %s, size %d", aws.ToString(v.SnapshotId), aws.ToInt32(v.Size))
	}
	_, err := c.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(region + "a"), SnapshotId: aws.String(snapshotID), Size: aws.Int32(1)})
	wantCode(t, err, "InvalidParameterValue") // below the snapshot's 2 GiB

	// ModifyVolume grows the file, never shrinks it.
	if _, err := c.ModifyVolume(ctx, &ec2.ModifyVolumeInput{VolumeId: aws.String(volumeID), Size: aws.Int32(4)}); err != nil {
		t.Fatal(err)
	}
	wantFileSize(t, volume, 4*gibibyte)
	_, err = c.ModifyVolume(ctx, &ec2.ModifyVolumeInput{VolumeId: aws.String(volumeID), Size: aws.Int32(3)})
	wantCode(t, err, "InvalidParameterValue")
	// The snapshot keeps its size when its volume grows.
	snaps, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{snapshotID}})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToInt32(snaps.Snapshots[0].VolumeSize); got != 2 {
		t.Errorf("snapshot size after its volume grew: %d GiB, want 2", got)
	}

	for _, id := range []string{volumeID, restoredID} {
		if _, err := c.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: aws.String(id)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(snapshotID)}); err != nil {
		t.Fatal(err)
	}
	wantNoFile(t, volume)
	wantNoFile(t, restored)
	wantNoFile(t, snapshot)
	noLoopDevicesLeft(t)
}

// GAP: shared and copied snapshots hold no bytes. A volume made in account B
// from a snapshot account A shares holds A's bytes; CopySnapshot and CopyImage
// copy the bytes into another region and account.
func TestBlocksCrossAccountAndRegion(t *testing.T) {
	ctx := fresh(t)
	const otherRegion = "eu-west-1"
	owner := ec2As(t, ctx, otherAccount, region)
	volumeID := newVolume(t, ctx, owner, 1, "")
	want := map[int64][]byte{3: blockPattern("shared 3"), 1000: blockPattern("shared 1000")}
	for idx, data := range want {
		writeFileBlock(t, VolumeFile(world.DataDir, otherAccount, region, volumeID), idx, data)
	}
	snapshotID := newSnapshot(t, ctx, owner, volumeID)

	t.Run("volume from a shared snapshot", func(t *testing.T) {
		if _, err := owner.ModifySnapshotAttribute(ctx, &ec2.ModifySnapshotAttributeInput{SnapshotId: aws.String(snapshotID),
			CreateVolumePermission: &types.CreateVolumePermissionModifications{Add: []types.CreateVolumePermission{{UserId: aws.String(thirdAccount)}}}}); err != nil {
			t.Fatal(err)
		}
		third := ec2As(t, ctx, thirdAccount, region)
		out, err := third.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(region + "a"), SnapshotId: aws.String(snapshotID)})
		if err != nil {
			t.Fatal(err)
		}
		file := VolumeFile(world.DataDir, thirdAccount, region, aws.ToString(out.VolumeId))
		wantFileSize(t, file, gibibyte)
		wantFileBlocks(t, file, want)
	})

	t.Run("CopySnapshot into another region", func(t *testing.T) {
		ownerThere := ec2As(t, ctx, otherAccount, otherRegion)
		out, err := ownerThere.CopySnapshot(ctx, &ec2.CopySnapshotInput{SourceSnapshotId: aws.String(snapshotID), SourceRegion: aws.String(region)})
		if err != nil {
			t.Fatal(err)
		}
		file := SnapshotFile(world.DataDir, otherAccount, otherRegion, aws.ToString(out.SnapshotId))
		wantFileSize(t, file, gibibyte)
		wantFileBlocks(t, file, want)
	})

	t.Run("CopyImage into another account and region", func(t *testing.T) {
		imageID := register(t, ctx, owner, "bytes-to-copy", snapshotID)
		if _, err := owner.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(imageID),
			LaunchPermission: &types.LaunchPermissionModifications{Add: []types.LaunchPermission{{UserId: aws.String(thirdAccount)}}}}); err != nil {
			t.Fatal(err)
		}
		thirdThere := ec2As(t, ctx, thirdAccount, otherRegion)
		out, err := thirdThere.CopyImage(ctx, &ec2.CopyImageInput{Name: aws.String("copied bytes"), SourceImageId: aws.String(imageID), SourceRegion: aws.String(region)})
		if err != nil {
			t.Fatal(err)
		}
		image := describeImage(t, ctx, thirdThere, aws.ToString(out.ImageId))
		copied := aws.ToString(image.BlockDeviceMappings[0].Ebs.SnapshotId)
		if copied == snapshotID || copied == "" {
			t.Fatalf("copied image maps snapshot %q", copied)
		}
		file := SnapshotFile(world.DataDir, thirdAccount, otherRegion, copied)
		wantFileSize(t, file, gibibyte)
		wantFileBlocks(t, file, want)

		// Deregistering with DeleteAssociatedSnapshots removes the copy's bytes.
		if _, err := thirdThere.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: out.ImageId, DeleteAssociatedSnapshots: aws.Bool(true)}); err != nil {
			t.Fatal(err)
		}
		wantNoFile(t, file)
	})
}

// Reset removes every file of the world and detaches loop devices left on
// them (a daemon killed mid-unpack leaves its volume attached).
func TestBlocksResetRemovesFilesAndLoopDevices(t *testing.T) {
	loopdev.RequireRoot(t)
	ctx := fresh(t)
	c := ec2As(t, ctx, DefaultAccountID, region)
	volumeID := newVolume(t, ctx, c, 1, "")
	volume := VolumeFile(world.DataDir, DefaultAccountID, region, volumeID)
	newSnapshot(t, ctx, c, volumeID)
	attachLoopAsDaemon(t, volume)

	if err := world.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(world.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("after Reset the data directory holds %d entries, first %s", len(entries), filepath.Join(world.DataDir, entries[0].Name()))
	}
	noLoopDevicesLeft(t)
}
