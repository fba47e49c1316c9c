package publisher

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// connect readies the target's unpacker, checks that its daemon answers and
// learns the instance's zone (where the stream volume must be).
func (a *actor) connect(ctx context.Context) error {
	c, err := a.p.cfg.Connect(ctx, a.t)
	if err != nil {
		return fmt.Errorf("unpacker %s: %w", a.t.InstanceID, err)
	}
	h, err := c.Health(ctx)
	if err != nil {
		return fmt.Errorf("unpacker %s at %s: %w", a.t.InstanceID, a.t.Endpoint, err)
	}
	a.unpacker = c
	a.zone = a.t.AvailabilityZone
	if a.zone == "" {
		out, err := a.aws.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{a.t.InstanceID}})
		if err != nil {
			return fmt.Errorf("DescribeInstances %s (the unpacker's zone): %w", a.t.InstanceID, err)
		}
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				if i.Placement != nil {
					a.zone = aws.ToString(i.Placement.AvailabilityZone)
				}
			}
		}
		if a.zone == "" {
			return fmt.Errorf("unpacker instance %s: DescribeInstances gave no availability zone", a.t.InstanceID)
		}
	}
	a.info(StepConnect, "unpacker %s (daemon %s) in %s", a.t.InstanceID, h.Version, a.zone)
	return nil
}
