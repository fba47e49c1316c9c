package moto

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// GAP: an image shared with another account is invisible there.
func TestSharedImageVisibleToTheAccountItNames(t *testing.T) {
	ctx := fresh(t)
	owner := ec2As(t, ctx, DefaultAccountID, region)
	shared := register(t, ctx, owner, "shared", snapshot(t, ctx, owner, 8, false, ""))
	private := register(t, ctx, owner, "private", snapshot(t, ctx, owner, 8, false, ""))
	public := register(t, ctx, owner, "public", snapshot(t, ctx, owner, 8, false, ""))
	grant := func(id string, p types.LaunchPermission) {
		if _, err := owner.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(id),
			LaunchPermission: &types.LaunchPermissionModifications{Add: []types.LaunchPermission{p}}}); err != nil {
			t.Fatal(err)
		}
	}
	grant(shared, types.LaunchPermission{UserId: aws.String(otherAccount)})
	grant(public, types.LaunchPermission{Group: types.PermissionGroupAll})

	target := ec2As(t, ctx, otherAccount, region)
	if im := describeImage(t, ctx, target, shared); aws.ToString(im.OwnerId) != DefaultAccountID || im.Architecture != types.ArchitectureValuesArm64 {
		t.Errorf("shared image by ID: owner %s arch %s", aws.ToString(im.OwnerId), im.Architecture)
	}
	_, err := target.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{private}})
	wantCode(t, err, "InvalidAMIID.NotFound")

	cases := []struct {
		name string
		in   ec2.DescribeImagesInput
		want []string
	}{
		{"Owners", ec2.DescribeImagesInput{Owners: []string{DefaultAccountID}}, []string{shared, public}},
		{"ExecutableUsers self", ec2.DescribeImagesInput{ExecutableUsers: []string{"self"}}, []string{shared}},
		{"ExecutableUsers own id", ec2.DescribeImagesInput{ExecutableUsers: []string{otherAccount}}, []string{shared}},
		{"ExecutableUsers all, by owner", ec2.DescribeImagesInput{ExecutableUsers: []string{"all"}, Owners: []string{DefaultAccountID}}, []string{public}},
		{"name filter", ec2.DescribeImagesInput{Filters: []types.Filter{{Name: aws.String("name"), Values: []string{"shared", "private"}}}}, []string{shared}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := target.DescribeImages(ctx, &tc.in)
			if err != nil {
				t.Fatal(err)
			}
			got := imageIDs(out.Images)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for _, id := range tc.want {
				if !got[id] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}

	// A third account sees only the public one.
	third := ec2As(t, ctx, thirdAccount, region)
	out, err := third.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{DefaultAccountID}})
	if err != nil {
		t.Fatal(err)
	}
	if got := imageIDs(out.Images); len(got) != 1 || !got[public] {
		t.Errorf("third account sees %v, want only %s", got, public)
	}
	// Seeing is not owning.
	_, err = target.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(shared),
		LaunchPermission: &types.LaunchPermissionModifications{Add: []types.LaunchPermission{{UserId: aws.String(thirdAccount)}}}})
	wantCode(t, err, "AuthFailure")
	_, err = target.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(shared)})
	wantCode(t, err, "InvalidAMIID.NotFound")
}

// GAP: a snapshot shared by createVolumePermission is invisible and unusable
// in the other account; DescribeSnapshots ignores OwnerIds.
func TestSharedSnapshotUsableInTheAccountItNames(t *testing.T) {
	ctx := fresh(t)
	owner := ec2As(t, ctx, DefaultAccountID, region)
	key := createKey(t, ctx, DefaultAccountID)
	shared := snapshot(t, ctx, owner, 4, true, key)
	private := snapshot(t, ctx, owner, 4, false, "")
	if _, err := owner.ModifySnapshotAttribute(ctx, &ec2.ModifySnapshotAttributeInput{SnapshotId: aws.String(shared),
		Attribute:              types.SnapshotAttributeNameCreateVolumePermission,
		CreateVolumePermission: &types.CreateVolumePermissionModifications{Add: []types.CreateVolumePermission{{UserId: aws.String(otherAccount)}}}}); err != nil {
		t.Fatal(err)
	}
	target := ec2As(t, ctx, otherAccount, region)

	out, err := target.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{RestorableByUserIds: []string{"self"}, OwnerIds: []string{DefaultAccountID}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Snapshots) != 1 || aws.ToString(out.Snapshots[0].SnapshotId) != shared || aws.ToString(out.Snapshots[0].OwnerId) != DefaultAccountID {
		t.Fatalf("target's view of shared snapshots: %+v", out.Snapshots)
	}
	own, err := owner.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(own.Snapshots) != 2 {
		t.Errorf("owner's own snapshots: %d, want 2", len(own.Snapshots))
	}
	_, err = target.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{private}})
	wantCode(t, err, "InvalidSnapshot.NotFound")

	vol, err := target.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(region + "a"), SnapshotId: aws.String(shared)})
	if err != nil {
		t.Fatalf("create volume from shared snapshot: %v", err)
	}
	if aws.ToInt32(vol.Size) != 4 || !aws.ToBool(vol.Encrypted) {
		t.Errorf("volume from shared snapshot: size %d encrypted %v", aws.ToInt32(vol.Size), aws.ToBool(vol.Encrypted))
	}
	targetKey := createKey(t, ctx, otherAccount)
	cp, err := target.CopySnapshot(ctx, &ec2.CopySnapshotInput{SourceSnapshotId: aws.String(shared), SourceRegion: aws.String(region),
		Encrypted: aws.Bool(true), KmsKeyId: aws.String(targetKey)})
	if err != nil {
		t.Fatalf("copy shared snapshot: %v", err)
	}
	got, err := target.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{aws.ToString(cp.SnapshotId)}})
	if err != nil {
		t.Fatal(err)
	}
	if s := got.Snapshots[0]; aws.ToString(s.OwnerId) != otherAccount || aws.ToString(s.KmsKeyId) != targetKey || !aws.ToBool(s.Encrypted) {
		t.Errorf("copy: owner %s key %s encrypted %v", aws.ToString(s.OwnerId), aws.ToString(s.KmsKeyId), aws.ToBool(s.Encrypted))
	}
	_, err = target.CopySnapshot(ctx, &ec2.CopySnapshotInput{SourceSnapshotId: aws.String(private), SourceRegion: aws.String(region)})
	wantCode(t, err, "InvalidSnapshot.NotFound")
	// The target cannot delete or re-share what it does not own.
	_, err = target.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(shared)})
	wantCode(t, err, "InvalidSnapshot.NotFound")
}

// AWS: a snapshot encrypted with the AWS managed key aws/ebs cannot be shared.
func TestSnapshotWithManagedKeyCannotBeShared(t *testing.T) {
	ctx := fresh(t)
	owner := ec2As(t, ctx, DefaultAccountID, region)
	snap := snapshot(t, ctx, owner, 1, true, "")
	_, err := owner.ModifySnapshotAttribute(ctx, &ec2.ModifySnapshotAttributeInput{SnapshotId: aws.String(snap),
		Attribute:              types.SnapshotAttributeNameCreateVolumePermission,
		CreateVolumePermission: &types.CreateVolumePermissionModifications{Add: []types.CreateVolumePermission{{UserId: aws.String(otherAccount)}}}})
	wantCode(t, err, "InvalidParameter")
}
