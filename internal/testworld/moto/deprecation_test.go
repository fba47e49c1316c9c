package moto

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// GAP: moto answers 500 to Enable/DisableImageDeprecation and never shows
// DeprecationTime.
func TestImageDeprecationTime(t *testing.T) {
	ctx := fresh(t)
	c := ec2As(t, ctx, DefaultAccountID, region)
	image := register(t, ctx, c, "to-deprecate", snapshot(t, ctx, c, 8, false, ""))

	// AWS rounds seconds to the nearest minute.
	at := time.Now().UTC().Add(48 * time.Hour).Truncate(time.Minute).Add(40 * time.Second)
	if _, err := c.EnableImageDeprecation(ctx, &ec2.EnableImageDeprecationInput{ImageId: aws.String(image), DeprecateAt: aws.Time(at)}); err != nil {
		t.Fatal(err)
	}
	want := at.Truncate(time.Minute).Add(time.Minute).Format("2006-01-02T15:04:05.000Z")
	if got := aws.ToString(describeImage(t, ctx, c, image).DeprecationTime); got != want {
		t.Fatalf("DeprecationTime %q, want %q", got, want)
	}

	if _, err := c.DisableImageDeprecation(ctx, &ec2.DisableImageDeprecationInput{ImageId: aws.String(image)}); err != nil {
		t.Fatal(err)
	}
	if got := describeImage(t, ctx, c, image).DeprecationTime; got != nil {
		t.Fatalf("DeprecationTime after disable: %q", *got)
	}

	_, err := c.EnableImageDeprecation(ctx, &ec2.EnableImageDeprecationInput{ImageId: aws.String(image), DeprecateAt: aws.Time(time.Now().Add(-time.Hour))})
	wantCode(t, err, "InvalidParameterValue")

	// Only the owner may deprecate, even an image shared with the caller.
	if _, err := c.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(image),
		LaunchPermission: &types.LaunchPermissionModifications{Add: []types.LaunchPermission{{UserId: aws.String(otherAccount)}}}}); err != nil {
		t.Fatal(err)
	}
	other := ec2As(t, ctx, otherAccount, region)
	_, err = other.EnableImageDeprecation(ctx, &ec2.EnableImageDeprecationInput{ImageId: aws.String(image), DeprecateAt: aws.Time(at)})
	wantCode(t, err, "AuthFailure")
}

// GAP: moto ignores IncludeDeprecated. AWS (ami-deprecate.html): a deprecated
// image is left out of other accounts' listings unless IncludeDeprecated is
// true or its ID is asked for; its owner always sees it.
func TestDeprecatedImagesLeftOutOfListings(t *testing.T) {
	ctx := fresh(t)
	publisher := ec2As(t, ctx, otherAccount, region)
	old := register(t, ctx, publisher, "base-2024", snapshot(t, ctx, publisher, 8, false, ""))
	current := register(t, ctx, publisher, "base-2026", snapshot(t, ctx, publisher, 8, false, ""))
	for _, id := range []string{old, current} {
		if _, err := publisher.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(id),
			LaunchPermission: &types.LaunchPermissionModifications{Add: []types.LaunchPermission{{Group: types.PermissionGroupAll}}}}); err != nil {
			t.Fatal(err)
		}
	}
	// EnableImageDeprecation refuses past times; the harness knob does not.
	if err := world.SetImageDeprecationTime(ctx, region, old, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	consumer := ec2As(t, ctx, DefaultAccountID, region)

	list := func(c *ec2.Client, include bool) map[string]bool {
		t.Helper()
		out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{otherAccount}, IncludeDeprecated: aws.Bool(include)})
		if err != nil {
			t.Fatal(err)
		}
		return imageIDs(out.Images)
	}
	if got := list(consumer, false); got[old] || !got[current] {
		t.Errorf("consumer without IncludeDeprecated: %v (want only %s)", got, current)
	}
	if got := list(consumer, true); !got[old] || !got[current] {
		t.Errorf("consumer with IncludeDeprecated: %v (want both)", got)
	}
	if got := list(publisher, false); !got[old] || !got[current] {
		t.Errorf("owner without IncludeDeprecated: %v (want both)", got)
	}
	if im := describeImage(t, ctx, consumer, old); im.DeprecationTime == nil {
		t.Error("asking for the deprecated image by ID finds it, with its DeprecationTime")
	}
	// A future deprecation time does not hide the image yet.
	if err := world.SetImageDeprecationTime(ctx, region, old, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := list(consumer, false); !got[old] {
		t.Errorf("image deprecated only in the future is hidden: %v", got)
	}
}
