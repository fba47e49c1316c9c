package unpackerinstance

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/autoami/terraform-provider-autoami/internal/awsclient"
)

func (m *manager) refresh(ctx context.Context, u *Unpacker) error {
	c, err := m.forTarget(ctx, u)
	if err != nil {
		return err
	}
	inst, err := describeInstance(ctx, c.EC2, u.InstanceID)
	if err != nil {
		if errors.Is(err, ErrGone) {
			u.State = string(ec2types.InstanceStateNameTerminated)
		}
		return fmt.Errorf("%s: %w", u.name(), err)
	}
	fromInstance(inst, u)
	return nil
}

func (m *manager) adopt(ctx context.Context, target awsclient.Target, instanceID string) (*Unpacker, error) {
	c, err := m.clients.For(ctx, target)
	if err != nil {
		return nil, err
	}
	u := &Unpacker{Region: c.Target.Region, AccountID: c.AccountID, RoleARN: target.RoleARN, InstanceID: instanceID,
		ConnectVia: ConnectViaPrivateIP}
	inst, err := describeInstance(ctx, c.EC2, instanceID)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u.name(), err)
	}
	attr, err := c.EC2.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{
		InstanceId: aws.String(instanceID), Attribute: ec2types.InstanceAttributeNameUserData,
	})
	if err != nil {
		return nil, fmt.Errorf("read the user-data of %s: %w", u.name(), err)
	}
	var raw []byte
	if attr.UserData != nil {
		if raw, err = base64.StdEncoding.DecodeString(aws.ToString(attr.UserData.Value)); err != nil {
			return nil, fmt.Errorf("user-data of %s is not base64: %w", u.name(), err)
		}
	}
	b, err := parseUserData(raw)
	if err != nil {
		return nil, fmt.Errorf("%s was not launched as an unpacker: %w", u.name(), err)
	}
	u.Port, u.IdlePoweroff, u.BinarySHA256, u.ClientCACertificatePEM = b.Port, b.IdlePoweroff, b.BinarySHA256, b.ClientCACertificatePEM
	u.Architecture = b.Architecture
	fromInstance(inst, u)
	if len(u.SecurityGroupIDs) == 1 {
		cidrs, ours, err := securityGroupCIDRs(ctx, c, u.SecurityGroupIDs[0], u.Port)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", u.name(), err)
		}
		if ours {
			u.CreatedSecurityGroupID, u.AllowedCIDRs = u.SecurityGroupIDs[0], cidrs
		}
	}
	// The console is the only trusted source of the fingerprint; after
	// many boots its last 64 KiB may no longer hold the line, and the
	// next boot (the identity's rotation) prints it again.
	if out, err := console(ctx, c.EC2, instanceID); err == nil {
		u.ServerCertificateFingerprint = lastFingerprint(out)
	}
	return u, nil
}
