package baseimage

import (
	"cmp"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func fromEC2(in ec2types.Image) Image {
	img := Image{
		ID:             aws.ToString(in.ImageId),
		Name:           aws.ToString(in.Name),
		Description:    aws.ToString(in.Description),
		OwnerID:        aws.ToString(in.OwnerId),
		CreationDate:   parseTime(aws.ToString(in.CreationDate)),
		Architecture:   string(in.Architecture),
		BootMode:       string(in.BootMode),
		ENASupport:     aws.ToBool(in.EnaSupport),
		RootDeviceName: aws.ToString(in.RootDeviceName),
		Tags:           map[string]string{},
	}
	for _, bdm := range in.BlockDeviceMappings {
		if aws.ToString(bdm.DeviceName) == img.RootDeviceName && bdm.Ebs != nil {
			img.RootSnapshotID = aws.ToString(bdm.Ebs.SnapshotId)
		}
	}
	if t := parseTime(aws.ToString(in.DeprecationTime)); !t.IsZero() {
		img.DeprecationTime = &t
	}
	for _, tag := range in.Tags {
		img.Tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	return img
}

// parseTime reads EC2's timestamps ("2026-11-22T04:47:42.000Z"); a missing
// or malformed one is the zero time, which sorts oldest.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

func sortImages(images []Image) {
	slices.SortStableFunc(images, func(a, b Image) int {
		if c := b.CreationDate.Compare(a.CreationDate); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Name, a.Name); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
}
