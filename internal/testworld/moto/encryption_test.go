package moto

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// GAP: GetEbsDefaultKmsKeyId answers 500 and encryption by default is stored
// but not enforced.
func TestEbsDefaultKeyAndEncryptionByDefault(t *testing.T) {
	ctx := fresh(t)
	c := ec2As(t, ctx, DefaultAccountID, region)

	def, err := c.GetEbsDefaultKmsKeyId(ctx, &ec2.GetEbsDefaultKmsKeyIdInput{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(aws.ToString(def.KmsKeyId), "arn:aws:kms:"+region+":"+DefaultAccountID+":key/") {
		t.Fatalf("default EBS key %q is not a key ARN of this account and region", aws.ToString(def.KmsKeyId))
	}
	custom := createKey(t, ctx, DefaultAccountID)
	if _, err := c.ModifyEbsDefaultKmsKeyId(ctx, &ec2.ModifyEbsDefaultKmsKeyIdInput{KmsKeyId: aws.String(custom)}); err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetEbsDefaultKmsKeyId(ctx, &ec2.GetEbsDefaultKmsKeyIdInput{}); err != nil || aws.ToString(got.KmsKeyId) != custom {
		t.Fatalf("after modify: %v %v, want %s", got.KmsKeyId, err, custom)
	}

	// Unencrypted snapshot made before encryption by default was switched on.
	plain := snapshot(t, ctx, c, 2, false, "")
	if _, err := c.EnableEbsEncryptionByDefault(ctx, &ec2.EnableEbsEncryptionByDefaultInput{}); err != nil {
		t.Fatal(err)
	}
	vol, err := c.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(region + "a"), Size: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	if !aws.ToBool(vol.Encrypted) || aws.ToString(vol.KmsKeyId) != custom {
		t.Errorf("volume with encryption by default: encrypted %v key %s, want the default key %s", aws.ToBool(vol.Encrypted), aws.ToString(vol.KmsKeyId), custom)
	}
	cp, err := c.CopySnapshot(ctx, &ec2.CopySnapshotInput{SourceSnapshotId: aws.String(plain), SourceRegion: aws.String(region)})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{aws.ToString(cp.SnapshotId)}})
	if err != nil {
		t.Fatal(err)
	}
	if s := out.Snapshots[0]; !aws.ToBool(s.Encrypted) || aws.ToString(s.KmsKeyId) != custom {
		t.Errorf("snapshot copy with encryption by default: encrypted %v key %s", aws.ToBool(s.Encrypted), aws.ToString(s.KmsKeyId))
	}

	// Without it, a copy of an unencrypted snapshot stays unencrypted.
	if _, err := c.DisableEbsEncryptionByDefault(ctx, &ec2.DisableEbsEncryptionByDefaultInput{}); err != nil {
		t.Fatal(err)
	}
	cp2, err := c.CopySnapshot(ctx, &ec2.CopySnapshotInput{SourceSnapshotId: aws.String(plain), SourceRegion: aws.String(region)})
	if err != nil {
		t.Fatal(err)
	}
	out2, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{aws.ToString(cp2.SnapshotId)}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToBool(out2.Snapshots[0].Encrypted) {
		t.Error("copy of an unencrypted snapshot is encrypted without encryption by default")
	}
	_, err = c.CopySnapshot(ctx, &ec2.CopySnapshotInput{SourceSnapshotId: aws.String(plain), SourceRegion: aws.String(region), KmsKeyId: aws.String(custom)})
	wantCode(t, err, "InvalidParameterDependency")

	if _, err := c.ResetEbsDefaultKmsKeyId(ctx, &ec2.ResetEbsDefaultKmsKeyIdInput{}); err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetEbsDefaultKmsKeyId(ctx, &ec2.GetEbsDefaultKmsKeyIdInput{}); err != nil || aws.ToString(got.KmsKeyId) == custom {
		t.Fatalf("after reset: %v %v, want the aws/ebs key again", got.KmsKeyId, err)
	}
}
