package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/autoami/terraform-provider-autoami/internal/testworld"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/bootdisk"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
)

// demoBucket is the quickstart's content store, in the caller's account.
const demoBucket = "autoami-demo-content"

// vendorAccount publishes the demo's base images, as a distribution vendor
// would, and shares them publicly.
const vendorAccount = "111122223333"

// demoImages is a vendor's release history: the last one fixes a security
// problem (its level comes from the quickstart's advisory feed).
var demoImages = []struct {
	name     string
	released time.Duration // before now
}{
	{"acme-linux-2026.10.01-x86_64", 52 * 24 * time.Hour},
	{"acme-linux-2026.11.01-x86_64", 21 * 24 * time.Hour},
	{"acme-linux-2026.11.20-x86_64", 2 * time.Hour},
}

// seedDemo creates the content store bucket, registers the vendor's images,
// shares them publicly, sets their release dates, and points an SSM
// parameter at the newest, version by version.
func seedDemo(ctx context.Context, world *testworld.World, region, disk string) error {
	if err := createBucket(ctx, world, region); err != nil {
		return err
	}
	cfg, err := world.Config(ctx, region, vendorAccount)
	if err != nil {
		return err
	}
	ec2c, ssmc := ec2.NewFromConfig(cfg), ssm.NewFromConfig(cfg)
	for _, img := range demoImages {
		id, err := registerVendorImage(ctx, world.Endpoint, disk, ec2c, ssmc, img.name, nil)
		if err != nil {
			return err
		}
		if err := world.Moto.SetImageCreationDate(ctx, region, id, time.Now().Add(-img.released)); err != nil {
			return err
		}
	}
	return nil
}

// releaseImage publishes one more vendor image, tagged with its security
// level, into the local AWS at endpoint.
func releaseImage(ctx context.Context, endpoint, region, name, level string) error {
	if endpoint == "" {
		return fmt.Errorf("-release needs -endpoint (the running local AWS)")
	}
	cfg, err := moto.AccountConfig(ctx, endpoint, region, vendorAccount)
	if err != nil {
		return err
	}
	id, err := registerVendorImage(ctx, endpoint, bootDisk(ctx), ec2.NewFromConfig(cfg), ssm.NewFromConfig(cfg), name,
		[]ec2types.Tag{{Key: aws.String("autoami:security-level"), Value: aws.String(level)}})
	if err != nil {
		return err
	}
	fmt.Printf("released %s (%s), security level %s\n", id, name, level)
	return nil
}

// registerVendorImage registers, shares publicly and announces (in SSM) one
// vendor image, its root snapshot holding disk (a bootable disk) when given.
func registerVendorImage(ctx context.Context, endpoint, disk string, ec2c *ec2.Client, ssmc *ssm.Client, name string, tags []ec2types.Tag) (string, error) {
	snap, err := rootSnapshot(ctx, endpoint, disk, ec2c, ec2c.Options().Region)
	if err != nil {
		return "", err
	}
	in := &ec2.RegisterImageInput{
		Name:               aws.String(name),
		Description:        aws.String("ACME Linux " + name),
		Architecture:       ec2types.ArchitectureValuesX8664,
		VirtualizationType: aws.String("hvm"),
		RootDeviceName:     aws.String("/dev/xvda"),
		EnaSupport:         aws.Bool(true),
		BootMode:           ec2types.BootModeValuesUefiPreferred,
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{{
			DeviceName: aws.String("/dev/xvda"),
			Ebs:        &ec2types.EbsBlockDevice{SnapshotId: aws.String(snap), VolumeType: ec2types.VolumeTypeGp3},
		}},
	}
	if len(tags) > 0 {
		in.TagSpecifications = []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeImage, Tags: tags}}
	}
	out, err := ec2c.RegisterImage(ctx, in)
	if err != nil {
		return "", fmt.Errorf("register %s: %w", name, err)
	}
	id := aws.ToString(out.ImageId)
	if _, err := ec2c.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{
		ImageId:          aws.String(id),
		LaunchPermission: &ec2types.LaunchPermissionModifications{Add: []ec2types.LaunchPermission{{Group: ec2types.PermissionGroupAll}}},
	}); err != nil {
		return "", fmt.Errorf("share %s: %w", name, err)
	}
	if _, err := ssmc.PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String("/acme/linux/latest/x86_64"), Value: aws.String(id),
		Type: "String", DataType: aws.String("aws:ec2:image"), Overwrite: aws.Bool(true),
	}); err != nil {
		return "", err
	}
	return id, nil
}

// rootSnapshot is a vendor image's root snapshot: the boot disk's bytes,
// imported, or (without a boot disk) a snapshot of an empty volume.
func rootSnapshot(ctx context.Context, endpoint, disk string, ec2c *ec2.Client, region string) (string, error) {
	if disk != "" {
		return moto.ImportSnapshot(ctx, endpoint, region, vendorAccount, disk, "ACME Linux root disk")
	}
	vol, err := ec2c.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(region + "a"), Size: aws.Int32(8)})
	if err != nil {
		return "", fmt.Errorf("create a root volume: %w", err)
	}
	snap, err := ec2c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: vol.VolumeId})
	if err != nil {
		return "", fmt.Errorf("snapshot the root volume: %w", err)
	}
	if _, err := ec2c.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: vol.VolumeId}); err != nil {
		return "", err
	}
	return aws.ToString(snap.SnapshotId), nil
}

// createBucket makes the demo's content store as a careful team would:
// encrypted by default, public access blocked.
func createBucket(ctx context.Context, world *testworld.World, region string) error {
	cfg, err := world.Config(ctx, region, moto.DefaultAccountID)
	if err != nil {
		return err
	}
	c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	in := &s3.CreateBucketInput{Bucket: aws.String(demoBucket)}
	if region != "us-east-1" {
		in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(region)}
	}
	if _, err := c.CreateBucket(ctx, in); err != nil {
		return fmt.Errorf("create bucket %s: %w", demoBucket, err)
	}
	if _, err := c.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{
		Bucket: aws.String(demoBucket),
		ServerSideEncryptionConfiguration: &s3types.ServerSideEncryptionConfiguration{Rules: []s3types.ServerSideEncryptionRule{{
			ApplyServerSideEncryptionByDefault: &s3types.ServerSideEncryptionByDefault{SSEAlgorithm: s3types.ServerSideEncryptionAes256},
		}}},
	}); err != nil {
		return fmt.Errorf("encrypt bucket %s: %w", demoBucket, err)
	}
	if _, err := c.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{
		Bucket: aws.String(demoBucket),
		PublicAccessBlockConfiguration: &s3types.PublicAccessBlockConfiguration{
			BlockPublicAcls: aws.Bool(true), BlockPublicPolicy: aws.Bool(true),
			IgnorePublicAcls: aws.Bool(true), RestrictPublicBuckets: aws.Bool(true),
		},
	}); err != nil {
		return fmt.Errorf("block public access to bucket %s: %w", demoBucket, err)
	}
	return nil
}

// bootDisk builds (or takes from its cache) the world's bootable disk, so
// the vendor's and Debian's images boot; without root (loop devices, mkfs)
// the images get empty disks, with a warning.
func bootDisk(ctx context.Context) string {
	if os.Geteuid() != 0 {
		slog.Warn("not root: seeded images get empty root disks (building the bootable one needs loop devices)")
		return ""
	}
	disk, err := bootdisk.Build(ctx, bootdisk.Options{})
	if err != nil {
		slog.Warn("seeded images get empty root disks", "error", err)
		return ""
	}
	return disk.Path
}
