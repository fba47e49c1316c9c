package publisher

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// deprecate brings the image's deprecation time and deregistration
// protection to what the publication says.
func (a *actor) deprecate(ctx context.Context) error {
	if a.image == nil {
		return fmt.Errorf("image %s was not described", a.rec.ImageID)
	}
	c := a.aws.EC2
	now := a.p.cfg.Now()
	switch set, at := deprecationChange(*a.image, a.pub.DeprecateAt, now); {
	case set && at.IsZero():
		if _, err := c.DisableImageDeprecation(ctx, &ec2.DisableImageDeprecationInput{ImageId: aws.String(a.rec.ImageID)}); err != nil {
			return fmt.Errorf("DisableImageDeprecation %s: %w", a.rec.ImageID, err)
		}
		a.info(StepDeprecate, "image %s no longer deprecated", a.rec.ImageID)
	case set:
		if _, err := c.EnableImageDeprecation(ctx, &ec2.EnableImageDeprecationInput{ImageId: aws.String(a.rec.ImageID), DeprecateAt: aws.Time(at)}); err != nil {
			return fmt.Errorf("EnableImageDeprecation %s at %s: %w", a.rec.ImageID, at.Format(time.RFC3339), err)
		}
		a.info(StepDeprecate, "image %s deprecated at %s", a.rec.ImageID, at.Format(time.RFC3339))
	}
	protected := protectionEnabled(*a.image)
	switch {
	case a.pub.DeregistrationProtection && !protected:
		// Without cooldown, so that a destroy can lift it and deregister at once.
		if _, err := c.EnableImageDeregistrationProtection(ctx, &ec2.EnableImageDeregistrationProtectionInput{ImageId: aws.String(a.rec.ImageID), WithCooldown: aws.Bool(false)}); err != nil {
			return fmt.Errorf("EnableImageDeregistrationProtection %s: %w", a.rec.ImageID, err)
		}
	case !a.pub.DeregistrationProtection && protected:
		if _, err := c.DisableImageDeregistrationProtection(ctx, &ec2.DisableImageDeregistrationProtectionInput{ImageId: aws.String(a.rec.ImageID)}); err != nil {
			return fmt.Errorf("DisableImageDeregistrationProtection %s: %w", a.rec.ImageID, err)
		}
	}
	return nil
}

// deprecationChange says whether the image's deprecation time must change
// and to what (zero: no deprecation). AWS takes whole minutes, not in the
// past: a wanted time already past becomes the next minute, and an image
// deprecated by then needs nothing.
func deprecationChange(img ec2types.Image, want, now time.Time) (bool, time.Time) {
	have, _ := time.Parse(time.RFC3339, aws.ToString(img.DeprecationTime))
	if want.IsZero() {
		return !have.IsZero(), time.Time{}
	}
	want = ceilMinute(want)
	if !want.After(now) {
		if !have.IsZero() && !have.After(ceilMinute(now.Add(time.Minute))) {
			return false, time.Time{}
		}
		return true, ceilMinute(now.Add(time.Minute))
	}
	return !have.Equal(want), want
}

func ceilMinute(t time.Time) time.Time {
	r := t.UTC().Truncate(time.Minute)
	if r.Before(t) {
		r = r.Add(time.Minute)
	}
	return r
}

func protectionEnabled(img ec2types.Image) bool {
	return strings.HasPrefix(aws.ToString(img.DeregistrationProtection), "enabled")
}
