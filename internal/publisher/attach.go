package publisher

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/client"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// deviceNames are the names AWS recommends for EBS data volumes of Linux
// instances (/dev/sdf to /dev/sdp).
var deviceNames = func() []string {
	var out []string
	for c := 'f'; c <= 'p'; c++ {
		out = append(out, "/dev/sd"+string(c))
	}
	return out
}()

// attach attaches the stream volume to the unpacker instance (unless it is)
// under a free device name and waits until the attachment is attached.
func (a *actor) attach(ctx context.Context) error {
	v := *a.volume
	id := aws.ToString(v.VolumeId)
	if a.attachedHere(v) {
		for _, at := range v.Attachments {
			if aws.ToString(at.InstanceId) == a.t.InstanceID {
				a.device = aws.ToString(at.Device)
			}
		}
		return a.waitAttached(ctx, id)
	}
	if len(v.Attachments) > 0 {
		// Attached to an instance that is no longer the unpacker (replaced).
		a.info(StepAttach, "volume %s is attached to %s; detaching it", id, aws.ToString(v.Attachments[0].InstanceId))
		if err := detachVolume(ctx, a.aws.EC2, a.p.cfg.Polling, v, a.p.cfg.Timeouts.Volume); err != nil {
			return err
		}
	}
	device, err := a.freeDevice(ctx)
	if err != nil {
		return err
	}
	if _, err := a.aws.EC2.AttachVolume(ctx, &ec2.AttachVolumeInput{
		VolumeId: aws.String(id), InstanceId: aws.String(a.t.InstanceID), Device: aws.String(device),
	}); err != nil {
		return fmt.Errorf("AttachVolume %s to %s as %s: %w", id, a.t.InstanceID, device, err)
	}
	a.device = device
	a.info(StepAttach, "attaching volume %s to %s as %s", id, a.t.InstanceID, device)
	return a.waitAttached(ctx, id)
}

// freeDevice picks a device name the instance does not use.
func (a *actor) freeDevice(ctx context.Context) (string, error) {
	out, err := a.aws.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{a.t.InstanceID}})
	if err != nil {
		return "", fmt.Errorf("DescribeInstances %s (device names in use): %w", a.t.InstanceID, err)
	}
	used := map[string]bool{}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			used[aws.ToString(i.RootDeviceName)] = true
			for _, m := range i.BlockDeviceMappings {
				used[aws.ToString(m.DeviceName)] = true
			}
		}
	}
	for _, d := range deviceNames {
		// /dev/sdf and /dev/xvdf are the same slot on Xen instances.
		if !used[d] && !used["/dev/xvd"+d[len("/dev/sd"):]] {
			return d, nil
		}
	}
	return "", fmt.Errorf("instance %s has no free device name among %s to %s", a.t.InstanceID, deviceNames[0], deviceNames[len(deviceNames)-1])
}

// waitAttached polls until the volume's attachment to the unpacker is attached.
func (a *actor) waitAttached(ctx context.Context, id string) error {
	return a.poll(ctx, StepAttach, fmt.Sprintf("volume %s to be attached to %s", id, a.t.InstanceID), a.p.cfg.Timeouts.Volume,
		func(ctx context.Context) (bool, error) {
			out, err := a.aws.EC2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{id}})
			if err != nil {
				return false, fmt.Errorf("DescribeVolumes %s: %w", id, err)
			}
			if len(out.Volumes) != 1 {
				return false, fmt.Errorf("volume %s is gone", id)
			}
			for _, at := range out.Volumes[0].Attachments {
				if aws.ToString(at.InstanceId) != a.t.InstanceID {
					continue
				}
				if at.State == ec2types.VolumeAttachmentStateAttached {
					a.volume = &out.Volumes[0]
					a.device = aws.ToString(at.Device)
					return true, nil
				}
				return false, nil
			}
			return false, fmt.Errorf("volume %s is not attached to %s (attachments: %d)", id, a.t.InstanceID, len(out.Volumes[0].Attachments))
		})
}

// detachVolume detaches v wherever it is attached and waits until it is
// available. A volume that is not attached is left as it is.
func detachVolume(ctx context.Context, c *ec2.Client, pol Polling, v ec2types.Volume, timeout time.Duration) error {
	id := aws.ToString(v.VolumeId)
	if len(v.Attachments) == 0 && v.State == ec2types.VolumeStateAvailable {
		return nil
	}
	if _, err := c.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: aws.String(id)}); err != nil &&
		!isCode(err, "IncorrectState", "InvalidAttachment.NotFound") {
		return fmt.Errorf("DetachVolume %s: %w", id, err)
	}
	return waitVolumeAvailable(ctx, c, pol, id, timeout)
}

// daemonLetGo makes a daemon forget the stream on a volume and the volume's
// device, before the volume is detached. Missing streams and devices are fine.
func daemonLetGo(ctx context.Context, c *client.Client, volumeID string) error {
	st, err := c.Status(ctx)
	if err != nil {
		return fmt.Errorf("unpacker status: %w", err)
	}
	for _, s := range st.Streams {
		if s.VolumeID != volumeID {
			continue
		}
		if s.State.Busy() {
			if _, err := c.CancelUnpack(ctx, wire.CancelUnpackRequest{Stream: s.Name, Revision: s.TargetRevision}); err != nil {
				return fmt.Errorf("cancel the unpack of stream %q on volume %s: %w", s.Name, volumeID, err)
			}
		}
		if err := c.ForgetStream(ctx, wire.ForgetStreamRequest{Stream: s.Name}); err != nil && !isWireCode(err, wire.CodeNotFound) {
			return fmt.Errorf("forget stream %q on volume %s: %w", s.Name, volumeID, err)
		}
	}
	for _, d := range st.Devices {
		if d.VolumeID != volumeID {
			continue
		}
		if err := c.DetachDevice(ctx, wire.DetachDeviceRequest{VolumeID: volumeID}); err != nil && !isWireCode(err, wire.CodeNotFound) {
			return fmt.Errorf("unpacker: let go of the device of volume %s: %w", volumeID, err)
		}
	}
	return nil
}
