package moto

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// builtinImage is one of moto's built-in public AMIs in region.
func builtinImage(t *testing.T, c *ec2.Client) types.Image {
	t.Helper()
	out, err := c.DescribeImages(fresh(t), &ec2.DescribeImagesInput{Owners: []string{"amazon"},
		Filters: []types.Filter{{Name: aws.String("name"), Values: []string{"al2023-ami-2023*"}}, {Name: aws.String("architecture"), Values: []string{"x86_64"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Images) < 2 {
		t.Fatalf("want at least 2 built-in al2023 images, got %d", len(out.Images))
	}
	return out.Images[0]
}

// GAP: all built-in AMIs share one CreationDate (moto's load time), so
// "newest base image" lookups cannot be tested. Harness knob.
func TestImageCreationDateKnob(t *testing.T) {
	ctx := fresh(t)
	c := ec2As(t, ctx, DefaultAccountID, region)
	im := builtinImage(t, c)
	id := aws.ToString(im.ImageId)
	when := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	if err := world.SetImageCreationDate(ctx, region, id, when); err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(describeImage(t, ctx, c, id).CreationDate); got != "2026-03-04T05:06:07.000Z" {
		t.Fatalf("CreationDate %q", got)
	}
	// Every account sees the same date for the same built-in image.
	other := ec2As(t, ctx, otherAccount, region)
	if got := aws.ToString(describeImage(t, ctx, other, id).CreationDate); got != "2026-03-04T05:06:07.000Z" {
		t.Fatalf("CreationDate in another account %q", got)
	}
	// The creation-date filter sees it too.
	out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"}, Filters: []types.Filter{{Name: aws.String("creation-date"), Values: []string{"2026-03-04T*"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if ids := imageIDs(out.Images); len(ids) != 1 || !ids[id] {
		t.Fatalf("creation-date filter: %v", ids)
	}
	if err := world.SetImageCreationDate(ctx, region, id, time.Time{}); err == nil {
		t.Fatal("a zero creation date was accepted")
	}

	// Reset drops the override.
	ctx = fresh(t)
	if got := aws.ToString(describeImage(t, ctx, c, id).CreationDate); strings.HasPrefix(got, "2026-03-04") {
		t.Fatalf("override survived Reset: %s", got)
	}
}

func TestAdditionsAreListed(t *testing.T) {
	ctx := fresh(t)
	adds, err := world.Additions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(adds, "\n")
	for _, want := range []string{"RegisterImage", "EnableImageDeprecation", "CopyImage", "GetEbsDefaultKmsKeyId", "pending", "EBS direct"} {
		if !strings.Contains(joined, want) {
			t.Errorf("additions do not mention %s:\n%s", want, joined)
		}
	}
}
