package publisher

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// delete removes the publication from each target; see Publisher.Delete.
func (p *publisher) delete(ctx context.Context, pub Publication, targets []Target) error {
	if !publicationIDRE.MatchString(pub.ID) {
		return fmt.Errorf("delete: %q is not a publication ID", pub.ID)
	}
	errs := p.forEachTarget(ctx, targets, func(ctx context.Context, _ int, t Target) error {
		d := &deleter{p: p, pub: pub, t: t}
		if err := d.run(ctx); err != nil {
			err = &TargetError{Target: t, Step: StepDelete, Err: err}
			p.emit(Event{Target: t.Key(), Step: StepDelete, Kind: EventFailed, Message: err.Error(), Err: err})
			return err
		}
		p.emit(Event{Target: t.Key(), Step: StepDelete, Kind: EventDone, Message: "nothing of publication " + pub.ID + " is left"})
		return nil
	})
	return errors.Join(errs...)
}

// deleteParameter removes one parameter in each target; see
// Publisher.DeleteParameter.
func (p *publisher) deleteParameter(ctx context.Context, pub Publication, name string, targets []Target) error {
	if err := validateSSMParameterName(name); err != nil {
		return err
	}
	errs := p.forEachTarget(ctx, targets, func(ctx context.Context, _ int, t Target) error {
		c, err := clientsFor(ctx, p.cfg.Clients, t)
		if err == nil {
			var images []ec2types.Image
			if images, err = describeOwnImages(ctx, c.EC2, pub.ID, t.Key()); err == nil {
				d := &deleter{p: p, pub: pub, t: t, c: c.EC2}
				err = d.deleteParameter(ctx, c.SSM, name, imageIDs(images))
			}
		}
		if err != nil {
			return &TargetError{Target: t, Step: StepDelete, Err: err}
		}
		return nil
	})
	return errors.Join(errs...)
}

func imageIDs(images []ec2types.Image) map[string]bool {
	out := map[string]bool{}
	for _, img := range images {
		out[aws.ToString(img.ImageId)] = true
	}
	return out
}

// deleter removes one target's share of a publication.
type deleter struct {
	p   *publisher
	pub Publication
	t   Target
	c   *ec2.Client
}

func (d *deleter) info(format string, args ...any) {
	d.p.emit(Event{Target: d.t.Key(), Step: StepDelete, Kind: EventInfo, Message: fmt.Sprintf(format, args...)})
}

// run deletes in the order that never leaves something pointing at what is
// gone: the SSM parameter (it names an image), the images with their
// snapshots, snapshots never registered, then the stream volumes.
func (d *deleter) run(ctx context.Context) error {
	c, err := clientsFor(ctx, d.p.cfg.Clients, d.t)
	if err != nil {
		return err
	}
	d.c = c.EC2
	images, err := describeOwnImages(ctx, c.EC2, d.pub.ID, d.t.Key())
	if err != nil {
		return err
	}
	mine := imageIDs(images)
	if sp := d.pub.SSMParameter; sp != nil {
		if err := d.deleteParameter(ctx, c.SSM, sp.Name, mine); err != nil {
			return err
		}
	}
	for _, img := range images {
		if err := d.deregister(ctx, img); err != nil {
			return err
		}
	}
	snaps, err := c.EC2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"},
		Filters: tagFilters(map[string]string{TagPublication: d.pub.ID, TagTarget: d.t.Key()})})
	if err != nil {
		return fmt.Errorf("DescribeSnapshots of publication %s: %w", d.pub.ID, err)
	}
	for _, s := range snaps.Snapshots {
		if err := d.deleteSnapshot(ctx, aws.ToString(s.SnapshotId)); err != nil {
			return err
		}
	}
	vols, err := describeStreamVolumes(ctx, c.EC2, d.pub.ID, "", d.t.Key())
	if err != nil {
		return err
	}
	for _, v := range vols {
		if err := d.deleteVolume(ctx, v); err != nil {
			return err
		}
	}
	return nil
}

// deleteParameter removes the parameter when this publication wrote it and
// it still names one of its images (or nothing valid); a parameter someone
// pointed elsewhere since is left alone.
func (d *deleter) deleteParameter(ctx context.Context, c *ssm.Client, name string, mine map[string]bool) error {
	value, exists, err := getParameter(ctx, c, name)
	if err != nil || !exists {
		return err
	}
	ours, err := parameterIsOurs(ctx, c, name, d.pub.ID)
	if err != nil {
		return err
	}
	if !ours || (!mine[value] && value != "") {
		d.info("leaving SSM parameter %s: it holds %s, which this publication did not write", name, value)
		return nil
	}
	if _, err := c.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(name)}); err != nil && !isCode(err, "ParameterNotFound") {
		return fmt.Errorf("DeleteParameter %s: %w", name, err)
	}
	d.info("deleted SSM parameter %s", name)
	return nil
}

// deregister lifts the image's protection and deregisters it with its snapshots.
func (d *deleter) deregister(ctx context.Context, img ec2types.Image) error {
	id := aws.ToString(img.ImageId)
	if protectionEnabled(img) {
		if _, err := d.c.DisableImageDeregistrationProtection(ctx, &ec2.DisableImageDeregistrationProtectionInput{ImageId: img.ImageId}); err != nil {
			return fmt.Errorf("DisableImageDeregistrationProtection %s: %w", id, err)
		}
	}
	if _, err := d.c.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: img.ImageId, DeleteAssociatedSnapshots: aws.Bool(true)}); err != nil &&
		!isCode(err, "InvalidAMIID.NotFound", "InvalidAMIID.Unavailable") {
		return fmt.Errorf("DeregisterImage %s: %w", id, err)
	}
	d.info("deregistered image %s (%s) and its snapshots", id, aws.ToString(img.Name))
	return nil
}

// deleteSnapshot deletes a snapshot, waiting out "in use" while a
// deregistration is still letting go of it.
func (d *deleter) deleteSnapshot(ctx context.Context, id string) error {
	err := pollUntil(ctx, d.p.cfg.Polling, "snapshot "+id+" to be deletable", d.p.cfg.Timeouts.Volume, func(ctx context.Context) (bool, error) {
		_, err := d.c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(id)})
		switch {
		case err == nil, isCode(err, "InvalidSnapshot.NotFound"):
			return true, nil
		case isCode(err, "InvalidSnapshot.InUse"):
			return false, nil
		}
		return false, fmt.Errorf("DeleteSnapshot %s: %w", id, err)
	})
	if err == nil {
		d.info("deleted snapshot %s", id)
	}
	return err
}

// deleteVolume lets the daemon go of a stream volume attached to the
// unpacker, then detaches and deletes it.
func (d *deleter) deleteVolume(ctx context.Context, v ec2types.Volume) error {
	id := aws.ToString(v.VolumeId)
	for _, at := range v.Attachments {
		if aws.ToString(at.InstanceId) != d.t.InstanceID || d.t.InstanceID == "" {
			continue
		}
		running, err := d.instanceRunning(ctx)
		if err != nil {
			return err
		}
		if !running {
			break // no daemon holds it
		}
		c, err := d.p.cfg.Connect(ctx, d.t)
		if err != nil {
			return fmt.Errorf("unpacker %s, which holds stream volume %s: %w", d.t.InstanceID, id, err)
		}
		if err := daemonLetGo(ctx, c, id); err != nil {
			return err
		}
	}
	if err := detachVolume(ctx, d.c, d.p.cfg.Polling, v, d.p.cfg.Timeouts.Volume); err != nil {
		return err
	}
	if err := deleteVolume(ctx, d.c, id); err != nil {
		return err
	}
	d.info("deleted stream volume %s (stream %s)", id, tagValue(v.Tags, TagStream))
	return nil
}

func (d *deleter) instanceRunning(ctx context.Context) (bool, error) {
	out, err := d.c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{d.t.InstanceID}})
	if isCode(err, "InvalidInstanceID.NotFound") {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("DescribeInstances %s: %w", d.t.InstanceID, err)
	}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			if i.State != nil && (i.State.Name == ec2types.InstanceStateNameRunning || i.State.Name == ec2types.InstanceStateNamePending) {
				return true, nil
			}
		}
	}
	return false, nil
}
