package publisher

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// ensureVolume finds the stream volume in the target, or makes it: one per
// stream, publication and target, in the unpacker's zone, encrypted with the
// target's key, large enough for the revision. A volume the revision
// outgrew is grown in place (ModifyVolume; the unpacker then grows its
// root partition and file system), so that it keeps its content and its
// snapshots stay incremental. A volume that no longer fits otherwise
// (another zone, another key), or that EC2 does not grow now (one
// modification per volume every few hours), is let go of and deleted, and
// a new one made, filled by a full unpack.
func (a *actor) ensureVolume(ctx context.Context) error {
	vols, err := describeStreamVolumes(ctx, a.aws.EC2, a.pub.ID, a.pub.Stream, a.t.Key())
	if err != nil {
		return err
	}
	want := a.rev.volumeGiB
	var usable []ec2types.Volume
	for _, v := range vols {
		if why := a.unfit(v); why != "" {
			a.info(StepVolume, "stream volume %s %s; replacing it", aws.ToString(v.VolumeId), why)
			if err := a.retireVolume(ctx, v); err != nil {
				return err
			}
			continue
		}
		usable = append(usable, v)
	}
	// The one attached to the unpacker wins, then the largest, then the newest.
	slices.SortFunc(usable, func(x, y ec2types.Volume) int {
		if d := boolRank(a.attachedHere(y)) - boolRank(a.attachedHere(x)); d != 0 {
			return d
		}
		if d := int(aws.ToInt32(y.Size) - aws.ToInt32(x.Size)); d != 0 {
			return d
		}
		return aws.ToTime(y.CreateTime).Compare(aws.ToTime(x.CreateTime))
	})
	for _, extra := range usable[min(1, len(usable)):] {
		a.info(StepVolume, "deleting extra stream volume %s", aws.ToString(extra.VolumeId))
		if err := a.retireVolume(ctx, extra); err != nil {
			return err
		}
	}
	if len(usable) > 0 {
		v := usable[0]
		a.volume = &v
		a.rec.VolumeID = aws.ToString(v.VolumeId)
		if v.State == ec2types.VolumeStateCreating {
			if err := a.waitVolumeAvailable(ctx, StepVolume, a.rec.VolumeID); err != nil {
				return err
			}
		}
		if aws.ToInt32(v.Size) >= want {
			return nil
		}
		grown, err := a.growVolume(ctx, v, want)
		if err != nil || grown {
			return err
		}
		if err := a.retireVolume(ctx, v); err != nil {
			return err
		}
	}
	return a.createVolume(ctx, want)
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// unfit says why v cannot be the stream volume now, or "". A volume too
// small for the revision is fit: it is grown.
func (a *actor) unfit(v ec2types.Volume) string {
	switch {
	case v.State != ec2types.VolumeStateAvailable && v.State != ec2types.VolumeStateInUse && v.State != ec2types.VolumeStateCreating:
		return fmt.Sprintf("is %s", v.State)
	case aws.ToString(v.AvailabilityZone) != a.zone:
		return fmt.Sprintf("is in %s, but the unpacker is in %s", aws.ToString(v.AvailabilityZone), a.zone)
	case !aws.ToBool(v.Encrypted) || aws.ToString(v.KmsKeyId) != a.keyARN:
		return fmt.Sprintf("is encrypted with %q, not with the key asked for now (%s)", aws.ToString(v.KmsKeyId), a.keyARN)
	}
	return ""
}

// attachedHere reports whether v is attached (or attaching) to the unpacker.
func (a *actor) attachedHere(v ec2types.Volume) bool {
	for _, at := range v.Attachments {
		if aws.ToString(at.InstanceId) == a.t.InstanceID && (at.State == ec2types.VolumeAttachmentStateAttached || at.State == ec2types.VolumeAttachmentStateAttaching || at.State == ec2types.VolumeAttachmentStateBusy) {
			return true
		}
	}
	return false
}

func describeStreamVolumes(ctx context.Context, c *ec2.Client, publication, stream, target string) ([]ec2types.Volume, error) {
	filters := map[string]string{TagPublication: publication, TagTarget: target, TagRole: roleStreamVolume}
	if stream != "" {
		filters[TagStream] = stream
	}
	out, err := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: tagFilters(filters)})
	if err != nil {
		return nil, fmt.Errorf("DescribeVolumes of publication %s: %w", publication, err)
	}
	return out.Volumes, nil
}

// createVolume makes a new, empty stream volume and waits until it is available.
func (a *actor) createVolume(ctx context.Context, sizeGiB int32) error {
	out, err := a.aws.EC2.CreateVolume(ctx, &ec2.CreateVolumeInput{
		AvailabilityZone:  aws.String(a.zone),
		Size:              aws.Int32(sizeGiB),
		VolumeType:        ec2types.VolumeTypeGp3,
		Encrypted:         aws.Bool(true),
		KmsKeyId:          aws.String(a.keyARN),
		ClientToken:       aws.String(randomToken()), // one per call: the SDK's retries of it cannot make two volumes
		TagSpecifications: tagSpec(ec2types.ResourceTypeVolume, a.allTags(roleStreamVolume, false, "autoami stream "+a.pub.Stream)),
	})
	if err != nil {
		return fmt.Errorf("CreateVolume of %d GiB in %s: %w", sizeGiB, a.zone, err)
	}
	id := aws.ToString(out.VolumeId)
	a.rec.VolumeID = id
	a.info(StepVolume, "created stream volume %s (%d GiB, encrypted with %s)", id, sizeGiB, a.keyARN)
	if err := a.waitVolumeAvailable(ctx, StepVolume, id); err != nil {
		return err
	}
	d, err := a.aws.EC2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{id}})
	if err != nil || len(d.Volumes) != 1 {
		return fmt.Errorf("DescribeVolumes %s: %v", id, err)
	}
	a.volume = &d.Volumes[0]
	return nil
}

func (a *actor) waitVolumeAvailable(ctx context.Context, step Step, id string) error {
	a.announceWait(step, "volume "+id+" to be available", a.p.cfg.Timeouts.Volume)
	return waitVolumeAvailable(ctx, a.aws.EC2, a.p.cfg.Polling, id, a.p.cfg.Timeouts.Volume)
}

func waitVolumeAvailable(ctx context.Context, c *ec2.Client, pol Polling, id string, timeout time.Duration) error {
	w := ec2.NewVolumeAvailableWaiter(c, func(o *ec2.VolumeAvailableWaiterOptions) {
		o.MinDelay, o.MaxDelay = pol.MinDelay, pol.MaxDelay
	})
	if err := w.Wait(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{id}}, timeout); err != nil {
		return fmt.Errorf("volume %s available: %w", id, err)
	}
	return nil
}

// retireVolume lets go of a stream volume and deletes it: the daemon forgets
// its stream and device, the volume is detached and deleted.
func (a *actor) retireVolume(ctx context.Context, v ec2types.Volume) error {
	id := aws.ToString(v.VolumeId)
	if a.attachedHere(v) && a.unpacker != nil {
		if err := daemonLetGo(ctx, a.unpacker, id); err != nil {
			return err
		}
	}
	if err := detachVolume(ctx, a.aws.EC2, a.p.cfg.Polling, v, a.p.cfg.Timeouts.Volume); err != nil {
		return err
	}
	if err := deleteVolume(ctx, a.aws.EC2, id); err != nil {
		return err
	}
	a.retired[id] = true
	return nil
}

func deleteVolume(ctx context.Context, c *ec2.Client, id string) error {
	if _, err := c.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: aws.String(id)}); err != nil && !isCode(err, "InvalidVolume.NotFound") {
		return fmt.Errorf("DeleteVolume %s: %w", id, err)
	}
	return nil
}
