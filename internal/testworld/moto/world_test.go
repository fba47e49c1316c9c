package moto

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// world is the one harness server of this test binary (TestMain).
var world *Server

const (
	region       = "us-east-1"
	otherAccount = "222222222222"
	thirdAccount = "333333333333"
)

func TestMain(m *testing.M) {
	os.Exit(runWorld(m))
}

func runWorld(m *testing.M) int {
	dir, err := os.MkdirTemp("", "autoami-moto-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	logPath := filepath.Join(dir, "moto.log")
	world, err = Start(context.Background(), Options{LogPath: logPath})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	if err := world.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	if code == 0 {
		os.RemoveAll(dir)
	} else {
		fmt.Fprintf(os.Stderr, "moto log kept at %s\n", logPath)
	}
	return code
}

// fresh resets the shared server for a test.
func fresh(t *testing.T) context.Context {
	t.Helper()
	ctx := context.Background()
	if err := world.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// ec2As is an EC2 client acting as account in region.
func ec2As(t *testing.T, ctx context.Context, account, region string) *ec2.Client {
	t.Helper()
	cfg, err := AccountConfig(ctx, world.URL, region, account)
	if err != nil {
		t.Fatal(err)
	}
	return ec2.NewFromConfig(cfg)
}

// apiCode is the AWS error code of err, or "" when err is not an API error.
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want error %s, got success", code)
	}
	if got := apiCode(err); got != code {
		t.Fatalf("want error %s, got %v", code, err)
	}
}

// snapshot makes a completed snapshot of a new volume of sizeGiB.
func snapshot(t *testing.T, ctx context.Context, c *ec2.Client, sizeGiB int32, encrypted bool, kmsKeyID string) string {
	t.Helper()
	in := &ec2.CreateVolumeInput{AvailabilityZone: aws.String(region + "a"), Size: aws.Int32(sizeGiB), Encrypted: aws.Bool(encrypted)}
	if kmsKeyID != "" {
		in.KmsKeyId = aws.String(kmsKeyID)
	}
	vol, err := c.CreateVolume(ctx, in)
	if err != nil {
		t.Fatalf("create volume: %v", err)
	}
	snap, err := c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: vol.VolumeId})
	if err != nil {
		t.Fatalf("create snapshot: %v", err)
	}
	return aws.ToString(snap.SnapshotId)
}

// register registers an arm64/uefi/ENA image named name on snapshotID.
func register(t *testing.T, ctx context.Context, c *ec2.Client, name, snapshotID string) string {
	t.Helper()
	out, err := c.RegisterImage(ctx, &ec2.RegisterImageInput{
		Name:               aws.String(name),
		Architecture:       types.ArchitectureValuesArm64,
		VirtualizationType: aws.String("hvm"),
		EnaSupport:         aws.Bool(true),
		BootMode:           types.BootModeValuesUefi,
		RootDeviceName:     aws.String("/dev/xvda"),
		BlockDeviceMappings: []types.BlockDeviceMapping{{
			DeviceName: aws.String("/dev/xvda"),
			Ebs:        &types.EbsBlockDevice{SnapshotId: aws.String(snapshotID), VolumeType: types.VolumeTypeGp3},
		}},
	})
	if err != nil {
		t.Fatalf("register image %s: %v", name, err)
	}
	return aws.ToString(out.ImageId)
}

func describeImage(t *testing.T, ctx context.Context, c *ec2.Client, imageID string) types.Image {
	t.Helper()
	out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{imageID}})
	if err != nil {
		t.Fatalf("describe image %s: %v", imageID, err)
	}
	if len(out.Images) != 1 {
		t.Fatalf("describe image %s: %d images", imageID, len(out.Images))
	}
	return out.Images[0]
}

func imageIDs(images []types.Image) map[string]bool {
	ids := map[string]bool{}
	for _, im := range images {
		ids[aws.ToString(im.ImageId)] = true
	}
	return ids
}
