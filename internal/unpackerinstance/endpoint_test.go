package unpackerinstance

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// The endpoint is at the connect_via address; a stopped instance (no public
// IP) keeps the last one, and the target the resource hands out with it.
func TestEndpointFollowsConnectVia(t *testing.T) {
	running := ec2types.Instance{State: &ec2types.InstanceState{Name: ec2types.InstanceStateNameRunning},
		PrivateIpAddress: aws.String("10.0.0.5"), PublicIpAddress: aws.String("203.0.113.7")}
	stopped := ec2types.Instance{State: &ec2types.InstanceState{Name: ec2types.InstanceStateNameStopped},
		PrivateIpAddress: aws.String("10.0.0.5")}

	priv := &Unpacker{ConnectVia: ConnectViaPrivateIP, Port: 6975}
	fromInstance(running, priv)
	if priv.Endpoint != "10.0.0.5:6975" {
		t.Errorf("private_ip endpoint %q", priv.Endpoint)
	}
	pub := &Unpacker{ConnectVia: ConnectViaPublicIP, Port: 7443}
	fromInstance(running, pub)
	if pub.Endpoint != "203.0.113.7:7443" || pub.PublicIP != "203.0.113.7" {
		t.Errorf("public_ip endpoint %q (public IP %q)", pub.Endpoint, pub.PublicIP)
	}
	fromInstance(stopped, pub)
	if pub.Endpoint != "203.0.113.7:7443" || pub.PublicIP != "" || pub.State != "stopped" {
		t.Errorf("stopped: endpoint %q, public IP %q, state %q; want the last endpoint kept", pub.Endpoint, pub.PublicIP, pub.State)
	}
	if tg := pub.Target(Identity{ClientCertificatePEM: "c", ClientPrivateKeyPEM: "k"}); tg.Endpoint != pub.Endpoint ||
		tg.ClientCertificatePEM != "c" || tg.ClientPrivateKeyPEM != "k" {
		t.Errorf("target %+v", tg)
	}
}
