package moto

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// createKey makes a customer managed KMS key in account (test region) and
// returns its ARN.
func createKey(t *testing.T, ctx context.Context, account string) string {
	t.Helper()
	return createKeyIn(t, ctx, account, region)
}

// GAP: moto's CopyImage copies only the caller's own images, ignores Encrypted
// and KmsKeyId, and copies neither attributes nor snapshots.
func TestCopySharedImageEncryptsIntoTheTarget(t *testing.T) {
	ctx := fresh(t)
	source := ec2As(t, ctx, DefaultAccountID, region)
	image := register(t, ctx, source, "base", snapshot(t, ctx, source, 8, false, ""))
	if _, err := source.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{image}, Tags: []types.Tag{{Key: aws.String("release"), Value: aws.String("2026.1")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := source.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(image),
		LaunchPermission: &types.LaunchPermissionModifications{Add: []types.LaunchPermission{{UserId: aws.String(otherAccount)}}}}); err != nil {
		t.Fatal(err)
	}
	target := ec2As(t, ctx, otherAccount, "eu-west-1")
	key := createKeyIn(t, ctx, otherAccount, "eu-west-1")

	out, err := target.CopyImage(ctx, &ec2.CopyImageInput{
		Name: aws.String("base-encrypted"), SourceImageId: aws.String(image), SourceRegion: aws.String(region),
		Encrypted: aws.Bool(true), KmsKeyId: aws.String(key),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeImage, Tags: []types.Tag{{Key: aws.String("autoami:target"), Value: aws.String("t1")}}}},
	})
	if err != nil {
		t.Fatalf("copy shared image: %v", err)
	}
	im := describeImage(t, ctx, target, aws.ToString(out.ImageId))
	if aws.ToString(im.OwnerId) != otherAccount || im.Architecture != types.ArchitectureValuesArm64 || !aws.ToBool(im.EnaSupport) ||
		im.BootMode != types.BootModeValuesUefi || aws.ToString(im.RootDeviceName) != "/dev/xvda" ||
		aws.ToString(im.SourceImageId) != image || aws.ToString(im.SourceImageRegion) != region {
		t.Errorf("copy attributes: owner %s arch %s ena %v boot %s root %s source %s/%s", aws.ToString(im.OwnerId), im.Architecture,
			aws.ToBool(im.EnaSupport), im.BootMode, aws.ToString(im.RootDeviceName), aws.ToString(im.SourceImageRegion), aws.ToString(im.SourceImageId))
	}
	if len(im.Tags) != 1 || aws.ToString(im.Tags[0].Key) != "autoami:target" {
		t.Errorf("copy tags (source tags are not copied without CopyImageTags): %+v", im.Tags)
	}
	snapID := aws.ToString(im.BlockDeviceMappings[0].Ebs.SnapshotId)
	if !aws.ToBool(im.BlockDeviceMappings[0].Ebs.Encrypted) {
		t.Error("copied root mapping is not encrypted")
	}
	snaps, err := target.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{snapID}})
	if err != nil {
		t.Fatalf("copied image's snapshot %s: %v", snapID, err)
	}
	if s := snaps.Snapshots[0]; aws.ToString(s.OwnerId) != otherAccount || !aws.ToBool(s.Encrypted) || aws.ToString(s.KmsKeyId) != key {
		t.Errorf("copied snapshot: owner %s encrypted %v key %s (want %s)", aws.ToString(s.OwnerId), aws.ToBool(s.Encrypted), aws.ToString(s.KmsKeyId), key)
	}

	// Encrypted without a key: the target's default EBS key.
	def, err := target.GetEbsDefaultKmsKeyId(ctx, &ec2.GetEbsDefaultKmsKeyIdInput{})
	if err != nil {
		t.Fatal(err)
	}
	out2, err := target.CopyImage(ctx, &ec2.CopyImageInput{Name: aws.String("base-default-key"), SourceImageId: aws.String(image),
		SourceRegion: aws.String(region), Encrypted: aws.Bool(true), CopyImageTags: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	im2 := describeImage(t, ctx, target, aws.ToString(out2.ImageId))
	if len(im2.Tags) != 1 || aws.ToString(im2.Tags[0].Value) != "2026.1" {
		t.Errorf("CopyImageTags: %+v", im2.Tags)
	}
	snaps2, err := target.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{aws.ToString(im2.BlockDeviceMappings[0].Ebs.SnapshotId)}})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(snaps2.Snapshots[0].KmsKeyId); got != aws.ToString(def.KmsKeyId) {
		t.Errorf("copy with Encrypted only: key %s, want the default %s", got, aws.ToString(def.KmsKeyId))
	}

	_, err = target.CopyImage(ctx, &ec2.CopyImageInput{Name: aws.String("key-no-flag"), SourceImageId: aws.String(image), SourceRegion: aws.String(region), KmsKeyId: aws.String(key)})
	wantCode(t, err, "InvalidParameterDependency")
	_, err = target.CopyImage(ctx, &ec2.CopyImageInput{Name: aws.String("base-encrypted"), SourceImageId: aws.String(image), SourceRegion: aws.String(region)})
	wantCode(t, err, "InvalidAMIName.Duplicate")
	third := ec2As(t, ctx, thirdAccount, region)
	_, err = third.CopyImage(ctx, &ec2.CopyImageInput{Name: aws.String("not-shared"), SourceImageId: aws.String(image), SourceRegion: aws.String(region)})
	wantCode(t, err, "InvalidAMIID.NotFound")
}

func createKeyIn(t *testing.T, ctx context.Context, account, region string) string {
	t.Helper()
	cfg, err := AccountConfig(ctx, world.URL, region, account)
	if err != nil {
		t.Fatal(err)
	}
	out, err := kms.NewFromConfig(cfg).CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("autoami test key")})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.KeyMetadata.Arn)
}
