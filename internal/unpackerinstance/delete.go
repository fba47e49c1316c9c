package unpackerinstance

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func (m *manager) delete(ctx context.Context, u *Unpacker) error {
	c, err := m.forTarget(ctx, u)
	if err != nil {
		return err
	}
	env := m.readyEnv()
	inst, err := describeInstance(ctx, c.EC2, u.InstanceID)
	switch {
	case errors.Is(err, ErrGone):
		m.log.InfoContext(ctx, "the unpacker instance is already gone", "instance", u.InstanceID)
	case err != nil:
		return fmt.Errorf("%s: %w", u.name(), err)
	default:
		if err := env.detachStreamVolumes(ctx, c.EC2, u, inst); err != nil {
			return err
		}
		m.log.InfoContext(ctx, "terminating unpacker instance", "instance", u.InstanceID)
		if _, err := c.EC2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{u.InstanceID}}); err != nil &&
			apiCode(err) != "InvalidInstanceID.NotFound" {
			return fmt.Errorf("terminate %s: %w", u.name(), err)
		}
		if _, err := env.waitInstance(ctx, c.EC2, u.InstanceID, ec2types.InstanceStateNameTerminated); err != nil {
			return fmt.Errorf("%s: %w", u.name(), err)
		}
	}
	u.State = string(ec2types.InstanceStateNameTerminated)
	return deleteSecurityGroup(ctx, c, m.log, m.poll.InstanceMinDelay, u.CreatedSecurityGroupID)
}

// detachStreamVolumes detaches every volume but the root: stream volumes
// belong to the published AMIs, and termination would delete those marked
// DeleteOnTermination. A running instance is stopped first, so that its
// daemon unmounts them (a detach of a mounted volume hangs, a forced one
// tears it).
func (e readyEnv) detachStreamVolumes(ctx context.Context, c *ec2.Client, u *Unpacker, inst ec2types.Instance) error {
	root := aws.ToString(inst.RootDeviceName)
	var volumes []string
	for _, bd := range inst.BlockDeviceMappings {
		if bd.Ebs != nil && aws.ToString(bd.DeviceName) != root {
			volumes = append(volumes, aws.ToString(bd.Ebs.VolumeId))
		}
	}
	if len(volumes) == 0 {
		return nil
	}
	clients, err := clientsFor(ctx, e.clients, u.RoleARN, u.Region, u.AccountID)
	if err != nil {
		return err
	}
	if _, err := e.stop(ctx, clients, u); err != nil {
		return err
	}
	for _, v := range volumes {
		e.log.InfoContext(ctx, "detaching stream volume before termination", "instance", u.InstanceID, "volume", v)
		if _, err := c.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: aws.String(v), InstanceId: aws.String(u.InstanceID)}); err != nil &&
			apiCode(err) != "IncorrectState" && apiCode(err) != "InvalidAttachment.NotFound" {
			return fmt.Errorf("detach volume %s from %s: %w", v, u.name(), err)
		}
	}
	done := timed(ctx, e.log, "stream volumes available", "instance", u.InstanceID, "volumes", volumes)
	bound, err := waitBound(ctx)
	if err == nil {
		err = ec2.NewVolumeAvailableWaiter(c, func(o *ec2.VolumeAvailableWaiterOptions) {
			o.MinDelay, o.MaxDelay = e.poll.InstanceMinDelay, e.poll.InstanceMaxDelay
		}).Wait(ctx, &ec2.DescribeVolumesInput{VolumeIds: volumes}, bound)
	}
	if err != nil {
		err = fmt.Errorf("wait for volumes %v to detach from %s: %w", volumes, u.name(), err)
	}
	done(err)
	return err
}
