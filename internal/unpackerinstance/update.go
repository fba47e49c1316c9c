package unpackerinstance

import (
	"context"
	"fmt"
	"maps"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/autoami/terraform-provider-autoami/internal/awsclient"
	"github.com/autoami/terraform-provider-autoami/internal/unpackerbinary"
)

func (m *manager) setTags(ctx context.Context, u *Unpacker, tags map[string]string) error {
	c, err := m.forTarget(ctx, u)
	if err != nil {
		return err
	}
	inst, err := describeInstance(ctx, c.EC2, u.InstanceID)
	if err != nil {
		return fmt.Errorf("%s: %w", u.name(), err)
	}
	resources := []string{u.InstanceID}
	for _, bd := range inst.BlockDeviceMappings {
		if aws.ToString(bd.DeviceName) == aws.ToString(inst.RootDeviceName) && bd.Ebs != nil {
			resources = append(resources, aws.ToString(bd.Ebs.VolumeId))
		}
	}
	if u.CreatedSecurityGroupID != "" {
		resources = append(resources, u.CreatedSecurityGroupID)
	}
	want := withTarget(tags, u.AccountID, u.Region)
	var stale []ec2types.Tag
	for _, t := range inst.Tags {
		if _, keep := want[aws.ToString(t.Key)]; !keep {
			stale = append(stale, ec2types.Tag{Key: t.Key})
		}
	}
	if len(stale) > 0 {
		if _, err := c.EC2.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: resources, Tags: stale}); err != nil {
			return fmt.Errorf("remove tags of %s: %w", u.name(), err)
		}
	}
	if _, err := c.EC2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: resources, Tags: ec2Tags(want)}); err != nil {
		return fmt.Errorf("tag %s: %w", u.name(), err)
	}
	u.Tags = maps.Clone(tags)
	return nil
}

// stop stops a running or pending instance and waits until it is stopped;
// a stopping one is waited for, a stopped one left alone. It returns
// whether the instance was running (or about to be).
func (e readyEnv) stop(ctx context.Context, c *awsclient.Clients, u *Unpacker) (wasRunning bool, err error) {
	inst, err := describeInstance(ctx, c.EC2, u.InstanceID)
	if err != nil {
		return false, fmt.Errorf("%s: %w", u.name(), err)
	}
	switch stateOf(inst) {
	case ec2types.InstanceStateNameStopped:
		fromInstance(inst, u)
		return false, nil
	case ec2types.InstanceStateNamePending, ec2types.InstanceStateNameRunning:
		wasRunning = true
		e.log.InfoContext(ctx, "stopping unpacker instance", "instance", u.InstanceID)
		if _, err := c.EC2.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{u.InstanceID}}); err != nil &&
			apiCode(err) != "IncorrectInstanceState" {
			return true, fmt.Errorf("stop %s: %w", u.name(), err)
		}
	case ec2types.InstanceStateNameStopping:
	default:
		return false, fmt.Errorf("%s is %s", u.name(), stateOf(inst))
	}
	inst, err = e.waitInstance(ctx, c.EC2, u.InstanceID, ec2types.InstanceStateNameStopped)
	if err != nil {
		return wasRunning, fmt.Errorf("%s: %w", u.name(), err)
	}
	fromInstance(inst, u)
	return wasRunning, nil
}

// start starts a stopped instance (waiting first for one that is stopping)
// and waits until it runs.
func (e readyEnv) start(ctx context.Context, c *awsclient.Clients, u *Unpacker) error {
	for attempt := 0; ; attempt++ {
		e.log.InfoContext(ctx, "starting unpacker instance", "instance", u.InstanceID)
		_, err := c.EC2.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{u.InstanceID}})
		if err == nil {
			break
		}
		if apiCode(err) != "IncorrectInstanceState" || attempt > 0 {
			return fmt.Errorf("start %s: %w", u.name(), err)
		}
		// Still stopping (an idle power-off, or a stop a moment ago).
		if _, err := e.waitInstance(ctx, c.EC2, u.InstanceID, ec2types.InstanceStateNameStopped); err != nil {
			return fmt.Errorf("start %s: %w", u.name(), err)
		}
	}
	inst, err := e.waitInstance(ctx, c.EC2, u.InstanceID, ec2types.InstanceStateNameRunning)
	if err != nil {
		return fmt.Errorf("%s: %w", u.name(), err)
	}
	fromInstance(inst, u)
	return nil
}

func (m *manager) changeInstanceType(ctx context.Context, u *Unpacker, id Identity, instanceType string) error {
	if u.InstanceType == instanceType {
		return nil
	}
	cert, err := id.tlsCertificate()
	if err != nil {
		return err
	}
	c, err := m.forTarget(ctx, u)
	if err != nil {
		return err
	}
	env := m.readyEnv()
	wasRunning, err := env.stop(ctx, c, u)
	if err != nil {
		return err
	}
	m.log.InfoContext(ctx, "changing the unpacker's instance type", "instance", u.InstanceID, "from", u.InstanceType, "to", instanceType)
	if _, err := c.EC2.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{
		InstanceId: aws.String(u.InstanceID), InstanceType: &ec2types.AttributeValue{Value: aws.String(instanceType)},
	}); err != nil {
		return fmt.Errorf("change the instance type of %s to %s: %w", u.name(), instanceType, err)
	}
	u.InstanceType = instanceType
	if !wasRunning {
		return nil // it sleeps; EnsureReady starts it when it is needed
	}
	if err := env.start(ctx, c, u); err != nil {
		return err
	}
	got, err := env.waitAnswering(ctx, answer{ec2: c.EC2, instanceID: u.InstanceID, endpoint: u.Endpoint, cert: cert,
		pin: u.ServerCertificateFingerprint})
	if err != nil {
		return fmt.Errorf("%s: %w", u.name(), err)
	}
	u.UnpackerVersion = got.health.Version
	return nil
}

func (m *manager) rebootstrap(ctx context.Context, u *Unpacker, bin unpackerbinary.Binary, id Identity) error {
	cert, err := id.tlsCertificate()
	if err != nil {
		return err
	}
	if bin.Architecture != u.Architecture {
		return fmt.Errorf("%s is %s, the unpacker binary (%s) is for %s", u.name(), u.Architecture, bin.Source, bin.Architecture)
	}
	c, err := m.forTarget(ctx, u)
	if err != nil {
		return err
	}
	url, err := m.stageBinary(ctx, bin)
	if err != nil {
		return err
	}
	userData, err := renderUserData(Bootstrap{
		Architecture: u.Architecture, ClientCACertificatePEM: id.ClientCACertificatePEM,
		BinaryURL: url, BinarySHA256: bin.SHA256, Port: u.Port, IdlePoweroff: u.IdlePoweroff,
	})
	if err != nil {
		return err
	}
	env := m.readyEnv()
	if _, err := env.stop(ctx, c, u); err != nil {
		return err
	}
	m.log.InfoContext(ctx, "giving the unpacker new user-data", "instance", u.InstanceID, "binary_sha256", bin.SHA256,
		"version", bin.Version, "new_client_ca", id.ClientCACertificatePEM != u.ClientCACertificatePEM)
	if _, err := c.EC2.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{
		InstanceId: aws.String(u.InstanceID), UserData: &ec2types.SecureBlobAttributeValue{Value: userData},
	}); err != nil {
		return fmt.Errorf("give %s new user-data: %w", u.name(), err)
	}
	if err := env.start(ctx, c, u); err != nil {
		return err
	}
	got, err := env.waitAnswering(ctx, answer{ec2: c.EC2, instanceID: u.InstanceID, endpoint: u.Endpoint, cert: cert})
	if err != nil {
		return fmt.Errorf("%s after new user-data: %w", u.name(), err)
	}
	if bin.Version != "" && got.health.Version != bin.Version {
		return fmt.Errorf("%s still runs unpacker version %s after the upgrade to %s: the per-boot part of its user-data "+
			"did not install the new binary%s", u.name(), got.health.Version, bin.Version,
			env.consoleForError(ctx, answer{ec2: c.EC2, instanceID: u.InstanceID}))
	}
	if u.ServerCertificateFingerprint != "" && got.fingerprint != u.ServerCertificateFingerprint {
		m.log.WarnContext(ctx, "the unpacker's server certificate changed (its state directory was replaced); pinned the one its console printed",
			"instance", u.InstanceID, "was", u.ServerCertificateFingerprint, "now", got.fingerprint)
	}
	u.ServerCertificateFingerprint = got.fingerprint
	u.UnpackerVersion = got.health.Version
	u.BinarySHA256 = bin.SHA256
	u.ClientCACertificatePEM = id.ClientCACertificatePEM
	return nil
}
