package publisher

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// createSnapshot snapshots the stream volume the daemon holds unmounted at
// the revision. The snapshot is tagged in the same call, so an interruption
// right after it leaves a snapshot the next run finds.
func (a *actor) createSnapshot(ctx context.Context) error {
	if !a.prepared {
		return fmt.Errorf("stream %q is not held ready for a snapshot", a.pub.Stream)
	}
	out, err := a.aws.EC2.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{
		VolumeId:          aws.String(a.rec.VolumeID),
		Description:       aws.String(fmt.Sprintf("autoami stream %s revision %s", a.pub.Stream, a.pub.Revision)),
		TagSpecifications: tagSpec(ec2types.ResourceTypeSnapshot, a.allTags(roleRootSnapshot, true, a.name)),
	})
	if err != nil {
		return fmt.Errorf("CreateSnapshot of volume %s: %w", a.rec.VolumeID, err)
	}
	a.rec.SnapshotID = aws.ToString(out.SnapshotId)
	a.snapshot = &ec2types.Snapshot{SnapshotId: out.SnapshotId, State: out.State, VolumeSize: out.VolumeSize}
	a.info(StepCreateSnapshot, "snapshot %s of volume %s started", a.rec.SnapshotID, a.rec.VolumeID)
	return nil
}

// waitSnapshot waits, with the SDK's waiter, until the snapshot is
// completed. A snapshot that fails is deleted, so the next run makes a new one.
func (a *actor) waitSnapshot(ctx context.Context) error {
	id := a.rec.SnapshotID
	timeout := a.p.cfg.Timeouts.Snapshot
	a.announceWait(StepWaitSnapshot, "snapshot "+id+" to complete", timeout)
	w := ec2.NewSnapshotCompletedWaiter(a.aws.EC2, func(o *ec2.SnapshotCompletedWaiterOptions) {
		o.MinDelay, o.MaxDelay = a.p.cfg.Polling.MinDelay, a.p.cfg.Polling.MaxDelay
	})
	out, err := w.WaitForOutput(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}}, timeout)
	if err != nil {
		if d, derr := a.aws.EC2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}}); derr == nil &&
			len(d.Snapshots) == 1 && d.Snapshots[0].State == ec2types.SnapshotStateError {
			msg := aws.ToString(d.Snapshots[0].StateMessage)
			if derr := deleteSnapshot(ctx, a.aws.EC2, id); derr != nil {
				return fmt.Errorf("snapshot %s failed (%s), and deleting it failed too: %w", id, msg, derr)
			}
			return fmt.Errorf("snapshot %s failed (%s); deleted it, the next run makes a new one", id, msg)
		}
		return fmt.Errorf("snapshot %s completed: %w", id, err)
	}
	if len(out.Snapshots) != 1 {
		return fmt.Errorf("snapshot %s: DescribeSnapshots answered %d snapshots", id, len(out.Snapshots))
	}
	a.snapshot = &out.Snapshots[0]
	if !aws.ToBool(a.snapshot.Encrypted) {
		return fmt.Errorf("snapshot %s is not encrypted", id)
	}
	return nil
}
