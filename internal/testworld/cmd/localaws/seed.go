package main

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/autoami/terraform-provider-autoami/internal/testworld"
)

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

// seedDemo registers the vendor's images, shares them publicly, sets their
// release dates, and points an SSM parameter at the newest, version by version.
func seedDemo(ctx context.Context, world *testworld.World, region string) error {
	cfg, err := world.Config(ctx, region, vendorAccount)
	if err != nil {
		return err
	}
	ec2c, ssmc := ec2.NewFromConfig(cfg), ssm.NewFromConfig(cfg)
	for _, img := range demoImages {
		snap, err := rootSnapshot(ctx, ec2c, cfg.Region)
		if err != nil {
			return err
		}
		out, err := ec2c.RegisterImage(ctx, &ec2.RegisterImageInput{
			Name:               aws.String(img.name),
			Description:        aws.String("ACME Linux " + img.name),
			Architecture:       ec2types.ArchitectureValuesX8664,
			VirtualizationType: aws.String("hvm"),
			RootDeviceName:     aws.String("/dev/xvda"),
			EnaSupport:         aws.Bool(true),
			BootMode:           ec2types.BootModeValuesUefiPreferred,
			BlockDeviceMappings: []ec2types.BlockDeviceMapping{{
				DeviceName: aws.String("/dev/xvda"),
				Ebs:        &ec2types.EbsBlockDevice{SnapshotId: aws.String(snap), VolumeType: ec2types.VolumeTypeGp3},
			}},
		})
		if err != nil {
			return fmt.Errorf("register %s: %w", img.name, err)
		}
		id := aws.ToString(out.ImageId)
		if _, err := ec2c.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{
			ImageId:          aws.String(id),
			LaunchPermission: &ec2types.LaunchPermissionModifications{Add: []ec2types.LaunchPermission{{Group: ec2types.PermissionGroupAll}}},
		}); err != nil {
			return fmt.Errorf("share %s: %w", img.name, err)
		}
		if err := world.Moto.SetImageCreationDate(ctx, region, id, time.Now().Add(-img.released)); err != nil {
			return err
		}
		if _, err := ssmc.PutParameter(ctx, &ssm.PutParameterInput{
			Name: aws.String("/acme/linux/latest/x86_64"), Value: aws.String(id),
			Type: "String", DataType: aws.String("aws:ec2:image"), Overwrite: aws.Bool(true),
		}); err != nil {
			return err
		}
	}
	return nil
}

func rootSnapshot(ctx context.Context, ec2c *ec2.Client, region string) (string, error) {
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
