package unpackerinstance

import (
	"context"
	"fmt"
	"net"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/client"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

func ensureReady(ctx context.Context, e readyEnv, t Target) (*client.Client, error) {
	id := Identity{ClientCertificatePEM: t.ClientCertificatePEM, ClientPrivateKeyPEM: t.ClientPrivateKeyPEM}
	cert, err := id.tlsCertificate()
	if err != nil {
		return nil, fmt.Errorf("unpacker %s in %s: %w", t.InstanceID, targetName(t.AccountID, t.Region), err)
	}
	pin, err := wire.ParseFingerprint(t.ServerCertificateFingerprint)
	if err != nil {
		return nil, fmt.Errorf("unpacker %s in %s: %w", t.InstanceID, targetName(t.AccountID, t.Region), err)
	}
	host, port, err := net.SplitHostPort(t.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("unpacker %s in %s: endpoint %q: %w", t.InstanceID, targetName(t.AccountID, t.Region), t.Endpoint, err)
	}
	c, err := clientsFor(ctx, e.clients, t.RoleARN, t.Region, t.AccountID)
	if err != nil {
		return nil, err
	}
	u := &Unpacker{Region: t.Region, AccountID: c.AccountID, RoleARN: t.RoleARN, InstanceID: t.InstanceID}
	inst, err := describeInstance(ctx, c.EC2, t.InstanceID)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u.name(), err)
	}
	switch stateOf(inst) {
	case ec2types.InstanceStateNameRunning:
	case ec2types.InstanceStateNamePending:
		if inst, err = e.waitInstance(ctx, c.EC2, t.InstanceID, ec2types.InstanceStateNameRunning); err != nil {
			return nil, fmt.Errorf("%s: %w", u.name(), err)
		}
	case ec2types.InstanceStateNameStopped, ec2types.InstanceStateNameStopping:
		if err := e.start(ctx, c, u); err != nil {
			return nil, err
		}
		if inst, err = describeInstance(ctx, c.EC2, t.InstanceID); err != nil {
			return nil, fmt.Errorf("%s: %w", u.name(), err)
		}
	default:
		return nil, fmt.Errorf("%s is %s%s: %w", u.name(), stateOf(inst), reasonOf(inst), ErrGone)
	}
	fromInstance(inst, u)
	// The private IP stays for the instance's life; a public one changes at
	// every start, so an endpoint that is not the private IP follows it.
	if host != u.PrivateIP && u.PublicIP != "" {
		host = u.PublicIP
	}
	endpoint := net.JoinHostPort(host, port)
	if _, err := e.waitAnswering(ctx, answer{ec2: c.EC2, instanceID: t.InstanceID, endpoint: endpoint, cert: cert, pin: pin}); err != nil {
		return nil, fmt.Errorf("%s: %w", u.name(), err)
	}
	cl, err := client.New(client.Config{Address: endpoint, Fingerprint: pin, Certificate: cert, Logger: e.log})
	if err != nil {
		return nil, err
	}
	e.log.InfoContext(ctx, "unpacker ready", "instance", t.InstanceID, "target", targetName(t.AccountID, t.Region), "endpoint", endpoint)
	return cl, nil
}
