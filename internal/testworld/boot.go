package testworld

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/qemuboot"
)

// BootOptions configure BootImage.
type BootOptions struct {
	// Firmware limits the boot to one firmware; empty means what the image's
	// boot mode says: legacy-bios → BIOS, uefi → UEFI, uefi-preferred (and an
	// image without a boot mode, which EC2 boots with BIOS on x86) → both,
	// BIOS first.
	Firmware qemuboot.Firmware
	// Ready is matched against the serial console; empty means a login
	// prompt or the boot fixture's marker line.
	Ready *regexp.Regexp
	// Boot carries further qemu options (timeout, memory, console log); its
	// Image, Firmware and Ready are set by BootImage.
	Boot qemuboot.Options
}

// BootedImage says how one AMI booted.
type BootedImage struct {
	ImageID    string
	SnapshotID string
	// Disk is the root snapshot's file that qemu booted (read-only: qemu
	// runs with -snapshot).
	Disk string
	// Boots holds one result per firmware tried, in order.
	Boots map[qemuboot.Firmware]*qemuboot.Result
}

// DefaultBootReady is what BootImage waits for when BootOptions.Ready is
// empty: a login prompt, or the boot fixture's marker.
var DefaultBootReady = regexp.MustCompile(`login:|AUTOAMI-BOOT-OK`)

// BootImage boots the AMI imageID, as account sees it in region, under qemu
// from its root snapshot's bytes, with the firmware its boot mode says. It
// fails, with the last console lines, unless every boot reaches Ready.
func (w *World) BootImage(ctx context.Context, region, account, imageID string, opts BootOptions) (*BootedImage, error) {
	cfg, err := w.Config(ctx, region, account)
	if err != nil {
		return nil, err
	}
	return BootImage(ctx, ec2.NewFromConfig(cfg), w.Moto.DataDir, imageID, opts)
}

// BootImage is World.BootImage for a local AWS reached by client, whose
// bytes are kept in dataDir (the moto server's DataDir; `localaws boot`
// learns it from the control endpoint).
func BootImage(ctx context.Context, client *ec2.Client, dataDir, imageID string, opts BootOptions) (*BootedImage, error) {
	region := client.Options().Region
	out, err := client.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{imageID}})
	if err != nil {
		return nil, fmt.Errorf("boot %s in %s: describe: %w", imageID, region, err)
	}
	if len(out.Images) != 1 {
		return nil, fmt.Errorf("boot %s in %s: the image is not visible", imageID, region)
	}
	img := out.Images[0]
	if img.State != ec2types.ImageStateAvailable {
		return nil, fmt.Errorf("boot %s in %s: image is %s, not available", imageID, region, img.State)
	}
	snapID := rootSnapshot(img)
	if snapID == "" {
		return nil, fmt.Errorf("boot %s in %s: no EBS snapshot behind root device %s", imageID, region, aws.ToString(img.RootDeviceName))
	}
	// An image's snapshots live in its owner's account, also when the image
	// is shared (the caller may not see the snapshot itself).
	owner := aws.ToString(img.OwnerId)
	disk := filepath.Join(dataDir, owner, region, "snapshots", snapID+".img")
	if _, err := os.Stat(disk); err != nil {
		return nil, fmt.Errorf("boot %s in %s: bytes of root snapshot %s: %w", imageID, region, snapID, err)
	}
	firmwares, err := firmwaresFor(img.BootMode, opts.Firmware)
	if err != nil {
		return nil, fmt.Errorf("boot %s in %s: %w", imageID, region, err)
	}
	ready := opts.Ready
	if ready == nil {
		ready = DefaultBootReady
	}
	booted := &BootedImage{ImageID: imageID, SnapshotID: snapID, Disk: disk, Boots: map[qemuboot.Firmware]*qemuboot.Result{}}
	for _, fw := range firmwares {
		q := opts.Boot
		q.Image, q.Firmware, q.Ready = disk, fw, ready
		if err := qemuboot.Check(q); err != nil {
			return nil, err
		}
		res, err := qemuboot.Boot(ctx, q)
		if err != nil {
			return booted, fmt.Errorf("boot %s (snapshot %s) in %s with %s: %w", imageID, snapID, region, fw, err)
		}
		booted.Boots[fw] = res
	}
	return booted, nil
}

// rootSnapshot is the snapshot behind the image's root device.
func rootSnapshot(img ec2types.Image) string {
	for _, m := range img.BlockDeviceMappings {
		if aws.ToString(m.DeviceName) == aws.ToString(img.RootDeviceName) && m.Ebs != nil {
			return aws.ToString(m.Ebs.SnapshotId)
		}
	}
	return ""
}

// firmwaresFor maps an image's boot mode to the firmware to boot it with.
func firmwaresFor(mode ec2types.BootModeValues, only qemuboot.Firmware) ([]qemuboot.Firmware, error) {
	var fws []qemuboot.Firmware
	switch mode {
	case ec2types.BootModeValuesLegacyBios:
		fws = []qemuboot.Firmware{qemuboot.BIOS}
	case ec2types.BootModeValuesUefi:
		fws = []qemuboot.Firmware{qemuboot.UEFI}
	case ec2types.BootModeValuesUefiPreferred, "":
		fws = []qemuboot.Firmware{qemuboot.BIOS, qemuboot.UEFI}
	default:
		return nil, fmt.Errorf("boot mode %q is not one qemu can boot", mode)
	}
	if only == "" {
		return fws, nil
	}
	for _, fw := range fws {
		if fw == only {
			return []qemuboot.Firmware{only}, nil
		}
	}
	return nil, errors.New("the image's boot mode " + string(mode) + " does not allow " + string(only))
}
