package moto

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// GAP: moto's RegisterImage keeps only Name and Description.
func TestRegisterImageKeepsWhatWasAskedFor(t *testing.T) {
	ctx := fresh(t)
	c := ec2As(t, ctx, DefaultAccountID, region)
	snap := snapshot(t, ctx, c, 8, false, "")

	out, err := c.RegisterImage(ctx, &ec2.RegisterImageInput{
		Name:               aws.String("web/al2023 rev 1"),
		Description:        aws.String("first revision"),
		Architecture:       types.ArchitectureValuesArm64,
		VirtualizationType: aws.String("hvm"),
		EnaSupport:         aws.Bool(true),
		SriovNetSupport:    aws.String("simple"),
		BootMode:           types.BootModeValuesUefi,
		TpmSupport:         types.TpmSupportValuesV20,
		ImdsSupport:        types.ImdsSupportValuesV20,
		RootDeviceName:     aws.String("/dev/xvda"),
		BlockDeviceMappings: []types.BlockDeviceMapping{
			{DeviceName: aws.String("/dev/xvda"), Ebs: &types.EbsBlockDevice{SnapshotId: aws.String(snap), VolumeSize: aws.Int32(10), VolumeType: types.VolumeTypeGp3, DeleteOnTermination: aws.Bool(true)}},
			{DeviceName: aws.String("/dev/sdb"), VirtualName: aws.String("ephemeral0")},
		},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeImage, Tags: []types.Tag{{Key: aws.String("autoami:stream"), Value: aws.String("web/al2023")}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	im := describeImage(t, ctx, c, aws.ToString(out.ImageId))

	if im.Architecture != types.ArchitectureValuesArm64 || im.VirtualizationType != types.VirtualizationTypeHvm ||
		!aws.ToBool(im.EnaSupport) || aws.ToString(im.SriovNetSupport) != "simple" || im.BootMode != types.BootModeValuesUefi ||
		im.TpmSupport != types.TpmSupportValuesV20 || im.ImdsSupport != types.ImdsSupportValuesV20 ||
		aws.ToString(im.RootDeviceName) != "/dev/xvda" || im.RootDeviceType != types.DeviceTypeEbs {
		t.Errorf("attributes not kept: arch=%s virt=%s ena=%v sriov=%s boot=%s tpm=%s imds=%s root=%s/%s",
			im.Architecture, im.VirtualizationType, aws.ToBool(im.EnaSupport), aws.ToString(im.SriovNetSupport), im.BootMode,
			im.TpmSupport, im.ImdsSupport, aws.ToString(im.RootDeviceName), im.RootDeviceType)
	}
	if aws.ToString(im.Name) != "web/al2023 rev 1" || aws.ToString(im.Description) != "first revision" ||
		aws.ToString(im.OwnerId) != DefaultAccountID || im.State != types.ImageStateAvailable {
		t.Errorf("name/description/owner/state: %s %s %s %s", aws.ToString(im.Name), aws.ToString(im.Description), aws.ToString(im.OwnerId), im.State)
	}
	if len(im.BlockDeviceMappings) != 2 {
		t.Fatalf("want 2 block device mappings, got %+v", im.BlockDeviceMappings)
	}
	root := im.BlockDeviceMappings[0]
	if aws.ToString(root.DeviceName) != "/dev/xvda" || root.Ebs == nil || aws.ToString(root.Ebs.SnapshotId) != snap ||
		aws.ToInt32(root.Ebs.VolumeSize) != 10 || root.Ebs.VolumeType != types.VolumeTypeGp3 || !aws.ToBool(root.Ebs.DeleteOnTermination) ||
		aws.ToBool(root.Ebs.Encrypted) {
		t.Errorf("root mapping not kept: %s %+v", aws.ToString(root.DeviceName), root.Ebs)
	}
	if eph := im.BlockDeviceMappings[1]; aws.ToString(eph.VirtualName) != "ephemeral0" || eph.Ebs != nil {
		t.Errorf("ephemeral mapping not kept: %+v", eph)
	}
	if len(im.Tags) != 1 || aws.ToString(im.Tags[0].Key) != "autoami:stream" || aws.ToString(im.Tags[0].Value) != "web/al2023" {
		t.Errorf("tags: %+v", im.Tags)
	}

	// The snapshot-id filter finds the image by its root snapshot (cleanup uses it).
	found, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}, Filters: []types.Filter{{Name: aws.String("block-device-mapping.snapshot-id"), Values: []string{snap}}}})
	if err != nil {
		t.Fatal(err)
	}
	if ids := imageIDs(found.Images); len(ids) != 1 || !ids[aws.ToString(out.ImageId)] {
		t.Errorf("filter by snapshot id: %v", ids)
	}
}

// AWS defaults: Architecture i386, VirtualizationType paravirtual, no ENA,
// no boot mode; volume size defaults to the snapshot's.
func TestRegisterImageDefaults(t *testing.T) {
	ctx := fresh(t)
	c := ec2As(t, ctx, DefaultAccountID, region)
	snap := snapshot(t, ctx, c, 3, false, "")
	out, err := c.RegisterImage(ctx, &ec2.RegisterImageInput{
		Name:                aws.String("plain"),
		RootDeviceName:      aws.String("/dev/sda1"),
		BlockDeviceMappings: []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sda1"), Ebs: &types.EbsBlockDevice{SnapshotId: aws.String(snap)}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	im := describeImage(t, ctx, c, aws.ToString(out.ImageId))
	if im.Architecture != types.ArchitectureValuesI386 || im.VirtualizationType != types.VirtualizationTypeParavirtual ||
		im.EnaSupport != nil || im.BootMode != "" || im.TpmSupport != "" || im.ImdsSupport != "" {
		t.Errorf("defaults: arch=%s virt=%s ena=%v boot=%q tpm=%q imds=%q", im.Architecture, im.VirtualizationType, im.EnaSupport, im.BootMode, im.TpmSupport, im.ImdsSupport)
	}
	if got := aws.ToInt32(im.BlockDeviceMappings[0].Ebs.VolumeSize); got != 3 {
		t.Errorf("volume size defaults to the snapshot's 3 GiB, got %d", got)
	}
}

func TestRegisterImageRejectsWhatAWSRejects(t *testing.T) {
	ctx := fresh(t)
	c := ec2As(t, ctx, DefaultAccountID, region)
	snap := snapshot(t, ctx, c, 8, false, "")
	register(t, ctx, c, "taken", snap)

	root := func(snapshotID string, size int32) []types.BlockDeviceMapping {
		ebs := &types.EbsBlockDevice{SnapshotId: aws.String(snapshotID)}
		if size > 0 {
			ebs.VolumeSize = aws.Int32(size)
		}
		return []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/xvda"), Ebs: ebs}}
	}
	cases := []struct {
		name string
		in   ec2.RegisterImageInput
		code string
	}{
		{"missing snapshot", ec2.RegisterImageInput{Name: aws.String("image-a1"), RootDeviceName: aws.String("/dev/xvda"), BlockDeviceMappings: root("snap-0123456789abcdef0", 0)}, "InvalidSnapshot.NotFound"},
		{"duplicate name", ec2.RegisterImageInput{Name: aws.String("taken"), RootDeviceName: aws.String("/dev/xvda"), BlockDeviceMappings: root(snap, 0)}, "InvalidAMIName.Duplicate"},
		{"malformed name", ec2.RegisterImageInput{Name: aws.String("x!"), RootDeviceName: aws.String("/dev/xvda"), BlockDeviceMappings: root(snap, 0)}, "InvalidAMIName.Malformed"},
		{"volume below snapshot", ec2.RegisterImageInput{Name: aws.String("image-a2"), RootDeviceName: aws.String("/dev/xvda"), BlockDeviceMappings: root(snap, 4)}, "InvalidBlockDeviceMapping"},
		{"root not mapped", ec2.RegisterImageInput{Name: aws.String("image-a3"), RootDeviceName: aws.String("/dev/sda1"), BlockDeviceMappings: root(snap, 0)}, "InvalidBlockDeviceMapping"},
		{"tpm without uefi", ec2.RegisterImageInput{Name: aws.String("image-a4"), RootDeviceName: aws.String("/dev/xvda"), BlockDeviceMappings: root(snap, 0), TpmSupport: types.TpmSupportValuesV20, BootMode: types.BootModeValuesLegacyBios}, "InvalidParameterCombination"},
		{"snapshot tag spec", ec2.RegisterImageInput{Name: aws.String("image-a5"), RootDeviceName: aws.String("/dev/xvda"), BlockDeviceMappings: root(snap, 0),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSnapshot, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}}}, "InvalidParameterValue"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.RegisterImage(ctx, &tc.in)
			wantCode(t, err, tc.code)
		})
	}

	// The name is unique per account and region only.
	other := ec2As(t, ctx, otherAccount, region)
	register(t, ctx, other, "taken", snapshot(t, ctx, other, 8, false, ""))
	west := ec2As(t, ctx, DefaultAccountID, "us-west-2")
	vol, err := west.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-west-2a"), Size: aws.Int32(8)})
	if err != nil {
		t.Fatal(err)
	}
	westSnap, err := west.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: vol.VolumeId})
	if err != nil {
		t.Fatal(err)
	}
	register(t, ctx, west, "taken", aws.ToString(westSnap.SnapshotId))

	// Another account's snapshot is not the caller's to register.
	_, err = other.RegisterImage(ctx, &ec2.RegisterImageInput{Name: aws.String("theirs"), RootDeviceName: aws.String("/dev/xvda"), BlockDeviceMappings: root(snap, 0)})
	wantCode(t, err, "InvalidSnapshot.NotFound")
}

// GAP: moto lets a snapshot that an image uses be deleted.
func TestRegisteredSnapshotIsInUse(t *testing.T) {
	ctx := fresh(t)
	c := ec2As(t, ctx, DefaultAccountID, region)
	snap := snapshot(t, ctx, c, 8, false, "")
	image := register(t, ctx, c, "in-use", snap)

	_, err := c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(snap)})
	wantCode(t, err, "InvalidSnapshot.InUse")

	if _, err := c.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(image)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(snap)}); err != nil {
		t.Fatalf("delete snapshot after deregister: %v", err)
	}
}
