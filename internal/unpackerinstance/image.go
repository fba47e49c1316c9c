package unpackerinstance

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/autoami/terraform-provider-autoami/internal/awsclient"
	"github.com/autoami/terraform-provider-autoami/internal/baseimage"
	"github.com/autoami/terraform-provider-autoami/internal/unpackerbinary"
)

func defaultInstanceType(arch string) (string, error) {
	switch arch {
	case unpackerbinary.X86_64:
		return "t3.small", nil
	case unpackerbinary.ARM64:
		return "t4g.small", nil
	}
	return "", fmt.Errorf("architecture %q is not one an unpacker runs on (%s or %s)", arch, unpackerbinary.X86_64, unpackerbinary.ARM64)
}

func defaultImageName(arch string) (string, error) {
	g, err := unpackerbinary.GOARCH(arch)
	if err != nil {
		return "", err
	}
	return "debian-12-" + g + "-*", nil
}

// image is what a launch needs of its image.
type image struct {
	ID, Name, Architecture, RootDeviceName string
}

// resolveImage finds the image to boot in the target: the given one, which
// the target must be able to launch, or the newest official Debian 12.
func resolveImage(ctx context.Context, c *awsclient.Clients, imageID, arch string) (image, error) {
	where := targetName(c.AccountID, c.Target.Region)
	if imageID == "" {
		name, err := defaultImageName(arch)
		if err != nil {
			return image{}, err
		}
		res, err := baseimage.Find(ctx, c.EC2, c.SSM, baseimage.Selector{Owners: []string{DebianOwner}, Name: name, Architecture: arch})
		if err != nil {
			return image{}, fmt.Errorf("find the newest official Debian 12 image (%s, owner %s) in %s: %w", name, DebianOwner, where, err)
		}
		img := res.Image
		return image{ID: img.ID, Name: img.Name, Architecture: img.Architecture, RootDeviceName: img.RootDeviceName}, nil
	}
	out, err := c.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{imageID}})
	if err != nil {
		switch apiCode(err) {
		case "InvalidAMIID.NotFound", "InvalidAMIID.Unavailable":
			return image{}, notLaunchable(imageID, where, err)
		case "InvalidAMIID.Malformed":
			return image{}, fmt.Errorf("image_id %q is not an AMI ID: %w", imageID, err)
		}
		return image{}, fmt.Errorf("look up image %s in %s: %w", imageID, where, err)
	}
	if len(out.Images) == 0 {
		return image{}, notLaunchable(imageID, where, nil)
	}
	img := out.Images[0]
	if state := string(img.State); state != "available" {
		return image{}, fmt.Errorf("image %s cannot be launched in %s: it is %s, not available", imageID, where, state)
	}
	if got := string(img.Architecture); got != arch {
		return image{}, fmt.Errorf("image %s is %s, but the unpacker's architecture is %s: set architecture = %q or choose another image",
			imageID, got, arch, got)
	}
	return image{ID: imageID, Name: aws.ToString(img.Name), Architecture: arch, RootDeviceName: aws.ToString(img.RootDeviceName)}, nil
}

func notLaunchable(imageID, where string, err error) error {
	msg := fmt.Sprintf("image %s cannot be launched in %s: the account does not see it there (not shared with "+
		"the account, not public, in another region, or deregistered)", imageID, where)
	if err != nil {
		return fmt.Errorf("%s: %w", msg, err)
	}
	return fmt.Errorf("%s", msg)
}
