package publisher

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// rootDeviceName is the root device of every AMI autoami registers.
const rootDeviceName = "/dev/xvda"

// register registers the completed snapshot as the revision's AMI, tagged
// in the same call. A name taken meanwhile is an error naming the image,
// unless it is this publication's image of this revision.
func (a *actor) register(ctx context.Context) error {
	if a.snapshot == nil || a.snapshot.State != ec2types.SnapshotStateCompleted {
		return fmt.Errorf("snapshot %s is not completed", a.rec.SnapshotID)
	}
	snapGiB := aws.ToInt32(a.snapshot.VolumeSize)
	size := a.pub.VolumeSizeGiB
	if size == 0 {
		size = snapGiB
	}
	if size < snapGiB {
		return fmt.Errorf("volume_size %d GiB is smaller than the root snapshot %s (%d GiB)", size, a.rec.SnapshotID, snapGiB)
	}
	in := &ec2.RegisterImageInput{
		Name:               aws.String(a.name),
		Architecture:       ec2types.ArchitectureValues(a.pub.Architecture),
		VirtualizationType: aws.String("hvm"),
		RootDeviceName:     aws.String(rootDeviceName),
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{{
			DeviceName: aws.String(rootDeviceName),
			Ebs: &ec2types.EbsBlockDevice{
				SnapshotId:          aws.String(a.rec.SnapshotID),
				VolumeSize:          aws.Int32(size),
				VolumeType:          ec2types.VolumeType(a.pub.VolumeType),
				DeleteOnTermination: aws.Bool(true),
			},
		}},
		EnaSupport:        aws.Bool(a.pub.ENASupport),
		SriovNetSupport:   aws.String("simple"),
		BootMode:          ec2types.BootModeValues(a.pub.BootMode),
		TagSpecifications: tagSpec(ec2types.ResourceTypeImage, a.allTags(roleImage, true, a.name)),
	}
	if a.pub.Description != "" {
		in.Description = aws.String(a.pub.Description)
	}
	if a.pub.IMDSSupport != "" {
		in.ImdsSupport = ec2types.ImdsSupportValues(a.pub.IMDSSupport)
	}
	if a.pub.TPMSupport != "" {
		in.TpmSupport = ec2types.TpmSupportValues(a.pub.TPMSupport)
	}
	out, err := a.aws.EC2.RegisterImage(ctx, in)
	if err != nil {
		if isCode(err, "InvalidAMIName.Duplicate") {
			return a.adoptByName(ctx, err)
		}
		return fmt.Errorf("RegisterImage %q from snapshot %s: %w", a.name, a.rec.SnapshotID, err)
	}
	a.rec.ImageID = aws.ToString(out.ImageId)
	a.info(StepRegister, "registered image %s (%s) from snapshot %s", a.rec.ImageID, a.name, a.rec.SnapshotID)
	return nil
}

// adoptByName takes the image holding the name if it is this publication's
// image of this revision (a registration whose answer was lost), else fails.
func (a *actor) adoptByName(ctx context.Context, dup error) error {
	out, err := a.aws.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners: []string{"self"}, IncludeDeprecated: aws.Bool(true), IncludeDisabled: aws.Bool(true),
		Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{a.name}}},
	})
	if err != nil {
		return fmt.Errorf("RegisterImage %q: %w; and DescribeImages of that name: %v", a.name, dup, err)
	}
	for _, img := range out.Images {
		if aws.ToString(img.Name) != a.name {
			continue
		}
		if tagValue(img.Tags, TagPublication) == a.pub.ID && tagValue(img.Tags, TagRevision) == a.pub.Revision && rootSnapshotID(img) == a.rec.SnapshotID {
			a.useImage(img)
			a.info(StepRegister, "image %s (%s) was registered by an earlier attempt", a.rec.ImageID, a.name)
			return nil
		}
		return nameTakenError(a.name, img)
	}
	return fmt.Errorf("RegisterImage %q: %w (but no image of that name is visible)", a.name, dup)
}

// waitImage polls until the image is available in several consecutive
// answers; "not found" right after registration is "not yet" (EC2 is
// eventually consistent), "failed" is an error with AWS's reason.
func (a *actor) waitImage(ctx context.Context) error {
	id := a.rec.ImageID
	want := a.p.cfg.Polling.ImageObservations
	seen := 0
	return a.poll(ctx, StepWaitImage, fmt.Sprintf("image %s to be available (%d consecutive answers)", id, want), a.p.cfg.Timeouts.Image,
		func(ctx context.Context) (bool, error) {
			out, err := a.aws.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}, IncludeDisabled: aws.Bool(true)})
			switch {
			case isCode(err, "InvalidAMIID.NotFound"):
				seen = 0
				return false, nil
			case err != nil:
				return false, fmt.Errorf("DescribeImages %s: %w", id, err)
			case len(out.Images) == 0:
				seen = 0
				return false, nil
			}
			img := out.Images[0]
			switch img.State {
			case ec2types.ImageStateAvailable:
				seen++
				a.useImage(img)
				return seen >= want, nil
			case ec2types.ImageStatePending:
				seen = 0
				return false, nil
			}
			return false, fmt.Errorf("image %s is %s: %s (the next run registers it again)", id, img.State, stateReason(img.StateReason))
		})
}
