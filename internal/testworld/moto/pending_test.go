package moto

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// pendingFor is long enough that the call right after a create sees the
// resource pending even on a loaded machine, short enough for a fast test.
const pendingFor = 1500 * time.Millisecond

// GAP: in moto everything is available/completed at once.
func TestPendingStatesAndWaiters(t *testing.T) {
	ctx := fresh(t)
	if err := world.SetPending(ctx, Pending{Image: pendingFor, ImageCopy: pendingFor, Snapshot: pendingFor, SnapshotCopy: pendingFor}); err != nil {
		t.Fatal(err)
	}
	c := ec2As(t, ctx, DefaultAccountID, region)
	vol, err := c.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(region + "a"), Size: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: vol.VolumeId})
	if err != nil {
		t.Fatal(err)
	}
	snapID := aws.ToString(snap.SnapshotId)
	out, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{snapID}})
	if err != nil {
		t.Fatal(err)
	}
	if s := out.Snapshots[0]; s.State != types.SnapshotStatePending || aws.ToString(s.Progress) == "100%" {
		t.Fatalf("new snapshot: state %s progress %s, want pending", s.State, aws.ToString(s.Progress))
	}
	// A pending snapshot cannot back an image yet.
	_, err = c.RegisterImage(ctx, &ec2.RegisterImageInput{Name: aws.String("too-early"), RootDeviceName: aws.String("/dev/xvda"),
		BlockDeviceMappings: []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/xvda"), Ebs: &types.EbsBlockDevice{SnapshotId: aws.String(snapID)}}}})
	wantCode(t, err, "IncorrectState")

	fast := func(o *ec2.SnapshotCompletedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, 200*time.Millisecond
	}
	if err := ec2.NewSnapshotCompletedWaiter(c, fast).Wait(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{snapID}}, 30*time.Second); err != nil {
		t.Fatalf("snapshot completed waiter: %v", err)
	}

	image := register(t, ctx, c, "pending-image", snapID)
	if st := describeImage(t, ctx, c, image).State; st != types.ImageStatePending {
		t.Fatalf("new image state %s, want pending", st)
	}
	fastImage := func(o *ec2.ImageAvailableWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, 200*time.Millisecond
	}
	if err := ec2.NewImageAvailableWaiter(c, fastImage).Wait(ctx, &ec2.DescribeImagesInput{ImageIds: []string{image}}, 30*time.Second); err != nil {
		t.Fatalf("image available waiter: %v", err)
	}

	cp, err := c.CopyImage(ctx, &ec2.CopyImageInput{Name: aws.String("pending-copy"), SourceImageId: aws.String(image), SourceRegion: aws.String(region)})
	if err != nil {
		t.Fatal(err)
	}
	copied := describeImage(t, ctx, c, aws.ToString(cp.ImageId))
	copySnap, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{aws.ToString(copied.BlockDeviceMappings[0].Ebs.SnapshotId)}})
	if err != nil {
		t.Fatal(err)
	}
	if copied.State != types.ImageStatePending || copySnap.Snapshots[0].State != types.SnapshotStatePending {
		t.Fatalf("image copy %s and its snapshot %s, want both pending", copied.State, copySnap.Snapshots[0].State)
	}
	if err := ec2.NewImageAvailableWaiter(c, fastImage).Wait(ctx, &ec2.DescribeImagesInput{ImageIds: []string{aws.ToString(cp.ImageId)}}, 30*time.Second); err != nil {
		t.Fatalf("image copy waiter: %v", err)
	}

	// Reset returns to the start values: nothing pending.
	ctx = fresh(t)
	c = ec2As(t, ctx, DefaultAccountID, region)
	snap2 := snapshot(t, ctx, c, 1, false, "")
	out, err = c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{snap2}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Snapshots[0].State != types.SnapshotStateCompleted {
		t.Fatalf("after Reset a new snapshot is %s, want completed", out.Snapshots[0].State)
	}
}

// The waiter sees "failed" as failure; the harness can force that state.
func TestImageStateOverride(t *testing.T) {
	ctx := fresh(t)
	c := ec2As(t, ctx, DefaultAccountID, region)
	image := register(t, ctx, c, "doomed", snapshot(t, ctx, c, 1, false, ""))
	if err := world.SetImageState(ctx, region, image, "failed", "copy failed: test"); err != nil {
		t.Fatal(err)
	}
	im := describeImage(t, ctx, c, image)
	if im.State != types.ImageStateFailed || im.StateReason == nil || aws.ToString(im.StateReason.Message) != "copy failed: test" {
		t.Fatalf("state %s reason %+v", im.State, im.StateReason)
	}
	fast := func(o *ec2.ImageAvailableWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, 200*time.Millisecond
	}
	if err := ec2.NewImageAvailableWaiter(c, fast).Wait(ctx, &ec2.DescribeImagesInput{ImageIds: []string{image}}, 10*time.Second); err == nil {
		t.Fatal("image available waiter succeeded on a failed image")
	}
	if err := world.SetImageState(ctx, region, image, "", ""); err != nil {
		t.Fatal(err)
	}
	if st := describeImage(t, ctx, c, image).State; st != types.ImageStateAvailable {
		t.Fatalf("after clearing the override: %s", st)
	}
}
