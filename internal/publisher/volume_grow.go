package publisher

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// growVolume grows the stream volume v to sizeGiB in place (ModifyVolume)
// and waits until the modification is optimizing or completed: from then
// on the instance's device has the new size, and the unpacker grows the
// root partition and file system to fill it when the stream is associated
// (the next step but one). It reports false, after an info event, when EC2
// refuses to modify the volume now (VolumeModificationRateExceeded: a
// volume is modified at most once in six hours, or a few times a day;
// IncorrectModificationState: a modification is under way): the caller
// replaces the volume then.
func (a *actor) growVolume(ctx context.Context, v ec2types.Volume, sizeGiB int32) (bool, error) {
	id := aws.ToString(v.VolumeId)
	from := aws.ToInt32(v.Size)
	_, err := a.aws.EC2.ModifyVolume(ctx, &ec2.ModifyVolumeInput{VolumeId: aws.String(id), Size: aws.Int32(sizeGiB)})
	if isCode(err, "VolumeModificationRateExceeded", "IncorrectModificationState") {
		a.info(StepVolume, "stream volume %s has %d GiB, the revision needs %d GiB, and EC2 does not grow it now (%v); replacing it (a full unpack)", id, from, sizeGiB, err)
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("ModifyVolume %s from %d to %d GiB: %w", id, from, sizeGiB, err)
	}
	a.info(StepVolume, "growing stream volume %s from %d to %d GiB in place (the revision needs %d GiB)", id, from, sizeGiB, sizeGiB)
	if err := a.waitVolumeGrown(ctx, id, sizeGiB); err != nil {
		return false, err
	}
	d, err := a.aws.EC2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{id}})
	if err != nil || len(d.Volumes) != 1 {
		return false, fmt.Errorf("DescribeVolumes %s after growing it: %v", id, err)
	}
	a.volume = &d.Volumes[0]
	return true, nil
}

// waitVolumeGrown polls the volume's modifications until one to at least
// sizeGiB is optimizing or completed (the size is usable from optimizing
// on); a failed one is an error.
func (a *actor) waitVolumeGrown(ctx context.Context, id string, sizeGiB int32) error {
	return a.poll(ctx, StepVolume, fmt.Sprintf("volume %s to grow to %d GiB", id, sizeGiB), a.p.cfg.Timeouts.Volume,
		func(ctx context.Context) (bool, error) {
			out, err := a.aws.EC2.DescribeVolumesModifications(ctx, &ec2.DescribeVolumesModificationsInput{VolumeIds: []string{id}})
			if err != nil {
				return false, fmt.Errorf("DescribeVolumesModifications %s: %w", id, err)
			}
			var failed string
			for _, m := range out.VolumesModifications {
				if aws.ToInt32(m.TargetSize) < sizeGiB {
					continue
				}
				switch m.ModificationState {
				case ec2types.VolumeModificationStateOptimizing, ec2types.VolumeModificationStateCompleted:
					return true, nil
				case ec2types.VolumeModificationStateFailed:
					failed = aws.ToString(m.StatusMessage)
				default:
					return false, nil // modifying
				}
			}
			if failed != "" {
				return false, fmt.Errorf("EC2 failed to grow volume %s to %d GiB: %s", id, sizeGiB, failed)
			}
			return false, nil
		})
}
