package publisher

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// resume looks for what an earlier run made of this revision in the target
// and says where to go on: an image is reused (waited for, or finished), a
// completed or pending snapshot is registered; a failed one is removed.
func (a *actor) resume(ctx context.Context) (Step, error) {
	images, err := a.ownImages(ctx)
	if err != nil {
		return "", err
	}
	if err := a.checkNameFree(ctx, images); err != nil {
		return "", err
	}
	for _, img := range images {
		if tagValue(img.Tags, TagRevision) != a.pub.Revision {
			continue
		}
		id := aws.ToString(img.ImageId)
		switch img.State {
		case ec2types.ImageStateAvailable, ec2types.ImageStatePending, ec2types.ImageStateDisabled:
			a.useImage(img)
			a.info(StepResume, "found image %s (%s) of this revision, %s", id, aws.ToString(img.Name), img.State)
			if img.State == ec2types.ImageStatePending {
				return StepWaitImage, nil
			}
			if img.State == ec2types.ImageStateDisabled {
				if _, err := a.aws.EC2.EnableImage(ctx, &ec2.EnableImageInput{ImageId: img.ImageId}); err != nil {
					return "", fmt.Errorf("EnableImage %s (disabled out of band): %w", id, err)
				}
				a.info(StepResume, "enabled image %s, which was disabled", id)
				return StepWaitImage, nil
			}
			return StepShare, nil
		default:
			// failed, error, invalid: register again from the snapshot.
			a.info(StepResume, "image %s of this revision is %s (%s); deregistering it to register again", id, img.State, stateReason(img.StateReason))
			if _, err := a.aws.EC2.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: img.ImageId}); err != nil && !isCode(err, "InvalidAMIID.NotFound", "InvalidAMIID.Unavailable") {
				return "", fmt.Errorf("DeregisterImage %s (%s): %w", id, img.State, err)
			}
		}
	}
	snap, err := a.ownSnapshot(ctx)
	if err != nil {
		return "", err
	}
	if snap == nil {
		return a.firstContentStep(), nil
	}
	a.snapshot = snap
	a.rec.SnapshotID = aws.ToString(snap.SnapshotId)
	a.info(StepResume, "found snapshot %s of this revision, %s", a.rec.SnapshotID, snap.State)
	a.releaseLeftPrepared(ctx)
	if snap.State == ec2types.SnapshotStateCompleted {
		return StepRegister, nil
	}
	return StepWaitSnapshot, nil
}

// useImage takes img as the target's image.
func (a *actor) useImage(img ec2types.Image) {
	a.image = &img
	a.rec.ImageID = aws.ToString(img.ImageId)
	a.rec.Name = aws.ToString(img.Name)
	a.rec.SnapshotID = rootSnapshotID(img)
	if t, err := time.Parse(time.RFC3339, aws.ToString(img.CreationDate)); err == nil {
		a.rec.CreatedAt = t
	}
}

// ownImages are the publication's images in the target, of every revision.
func (a *actor) ownImages(ctx context.Context) ([]ec2types.Image, error) {
	return describeOwnImages(ctx, a.aws.EC2, a.pub.ID, a.t.Key())
}

func describeOwnImages(ctx context.Context, c *ec2.Client, publication, target string) ([]ec2types.Image, error) {
	out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners:            []string{"self"},
		IncludeDeprecated: aws.Bool(true),
		IncludeDisabled:   aws.Bool(true),
		Filters:           tagFilters(map[string]string{TagPublication: publication, TagTarget: target}),
	})
	if err != nil {
		return nil, fmt.Errorf("DescribeImages of publication %s: %w", publication, err)
	}
	return out.Images, nil
}

// checkNameFree fails when the AMI name is taken by an image that is not
// this publication's image of this revision (found again on resume).
func (a *actor) checkNameFree(ctx context.Context, own []ec2types.Image) error {
	for _, img := range own {
		if aws.ToString(img.Name) == a.name && tagValue(img.Tags, TagRevision) == a.pub.Revision {
			return nil
		}
	}
	out, err := a.aws.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners:            []string{"self"},
		IncludeDeprecated: aws.Bool(true),
		IncludeDisabled:   aws.Bool(true),
		Filters:           []ec2types.Filter{{Name: aws.String("name"), Values: []string{a.name}}},
	})
	if err != nil {
		return fmt.Errorf("DescribeImages named %q: %w", a.name, err)
	}
	for _, img := range out.Images {
		if aws.ToString(img.Name) == a.name {
			return nameTakenError(a.name, img)
		}
	}
	return nil
}

func nameTakenError(name string, img ec2types.Image) error {
	owner := "not made by autoami"
	if p := tagValue(img.Tags, TagPublication); p != "" {
		owner = fmt.Sprintf("made by publication %s for revision %s", p, tagValue(img.Tags, TagRevision))
	}
	return fmt.Errorf("AMI name %q is already taken in this account and region by %s (%s): change name or deregister it",
		name, aws.ToString(img.ImageId), owner)
}

// ownSnapshot returns the revision's root snapshot made by an earlier run,
// deleting extra and failed ones: completed wins over pending, newer over
// older. For a raw image, a pending snapshot is an unfinished EBS direct
// write and is deleted too.
func (a *actor) ownSnapshot(ctx context.Context) (*ec2types.Snapshot, error) {
	out, err := a.aws.EC2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{
		OwnerIds: []string{"self"},
		Filters:  tagFilters(a.ownTags(roleRootSnapshot, true)),
	})
	if err != nil {
		return nil, fmt.Errorf("DescribeSnapshots of revision %s: %w", a.pub.Revision, err)
	}
	snaps := out.Snapshots
	rank := func(s ec2types.Snapshot) int {
		switch {
		case s.State == ec2types.SnapshotStateCompleted:
			return 2
		case s.State == ec2types.SnapshotStatePending && !a.rawImage():
			return 1
		}
		return 0
	}
	slices.SortFunc(snaps, func(x, y ec2types.Snapshot) int {
		if d := rank(y) - rank(x); d != 0 {
			return d
		}
		return aws.ToTime(y.StartTime).Compare(aws.ToTime(x.StartTime))
	})
	var keep *ec2types.Snapshot
	for i, s := range snaps {
		if i == 0 && rank(s) > 0 {
			keep = &snaps[i]
			continue
		}
		id := aws.ToString(s.SnapshotId)
		a.info(StepResume, "deleting snapshot %s of this revision (%s), not needed", id, s.State)
		if err := deleteSnapshot(ctx, a.aws.EC2, id); err != nil {
			return nil, err
		}
	}
	return keep, nil
}

func deleteSnapshot(ctx context.Context, c *ec2.Client, id string) error {
	_, err := c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(id)})
	if err != nil && !isCode(err, "InvalidSnapshot.NotFound") {
		return fmt.Errorf("DeleteSnapshot %s: %w", id, err)
	}
	return nil
}

func rootSnapshotID(img ec2types.Image) string {
	for _, m := range img.BlockDeviceMappings {
		if aws.ToString(m.DeviceName) == aws.ToString(img.RootDeviceName) && m.Ebs != nil {
			return aws.ToString(m.Ebs.SnapshotId)
		}
	}
	return ""
}

func stateReason(r *ec2types.StateReason) string {
	if r == nil {
		return "no reason given"
	}
	return strings.TrimSpace(aws.ToString(r.Code) + " " + aws.ToString(r.Message))
}
