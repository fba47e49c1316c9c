package provider

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/autoami/terraform-provider-autoami/internal/awsclient"
	"github.com/autoami/terraform-provider-autoami/internal/testworld"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/client"
	"github.com/autoami/terraform-provider-autoami/internal/unpackerinstance"
)

// The autoami_unpacker acceptance tests launch real daemons in the local
// AWS: an instance's user-data runs through the test world's stand-in for
// cloud-init and systemd, which downloads the binary from the local S3 and
// starts `unpacker serve` on a loopback address of its own.

// Targets of the unpacker tests: the provider's own account in the home
// region, and another account (through a role) in another region.
const (
	unpackerOtherAccount = "222222222222"
	unpackerOtherRegion  = "eu-west-1"
	unpackerOtherRole    = "arn:aws:iam::222222222222:role/autoami-unpacker"
)

// unpackerTestPolling keeps the provider's waits short against the local
// AWS, where instances change state in milliseconds.
var unpackerTestPolling = unpackerinstance.Polling{InstanceMinDelay: 50 * time.Millisecond,
	InstanceMaxDelay: 250 * time.Millisecond, Console: 50 * time.Millisecond, Health: 100 * time.Millisecond}

var (
	unpackerBuildMu sync.Mutex
	unpackerBuilds  = map[string]string{}
)

// testAccUnpackerBinary builds cmd/unpacker stamped with version, once per
// test binary, and returns its path.
func testAccUnpackerBinary(t *testing.T, version string) string {
	t.Helper()
	unpackerBuildMu.Lock()
	defer unpackerBuildMu.Unlock()
	if p, ok := unpackerBuilds[version]; ok {
		return p
	}
	// One place per version, shared by test binaries and runs (no
	// temporary directories left behind); written by rename, so a binary
	// built concurrently by another test process is never seen half-written.
	dir := filepath.Join(os.TempDir(), "autoami-test-unpacker", version)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "unpacker")
	tmp := fmt.Sprintf("%s.%d", out, os.Getpid())
	cmd := exec.Command("go", "build", "-ldflags", "-X main.version="+version, "-o", tmp, "./cmd/unpacker")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		t.Fatalf("go build ./cmd/unpacker: %v\n%s", err, b)
	}
	if err := os.Rename(tmp, out); err != nil {
		t.Fatal(err)
	}
	unpackerBuilds[version] = out
	return out
}

// testAccUnpackerSetup is the start of every unpacker acceptance test: root
// (launched daemons use loop devices), fast waits, the binary.
func testAccUnpackerSetup(t *testing.T) string {
	t.Helper()
	if os.Getenv(resource.EnvTfAcc) == "" {
		// As resource.Test would, before the binary is built for nothing.
		t.Skipf("acceptance test: set %s=1 (make testacc)", resource.EnvTfAcc)
	}
	if os.Geteuid() != 0 {
		t.Skip("launched unpackers need root (loop devices, mounts)")
	}
	saved := unpackerPolling
	unpackerPolling = unpackerTestPolling
	t.Cleanup(func() { unpackerPolling = saved })
	return testAccUnpackerBinary(t, "acc-1")
}

// testAccUnpackerPreCheck resets the world and makes the content store.
func testAccUnpackerPreCheck(t *testing.T) {
	testAccPreCheck(t)
	createTestBucket(t)
}

// unpackerProvider is the provider block of the unpacker tests.
func unpackerProvider() string {
	return fmt.Sprintf(`
provider "autoami" {
  region        = %q
  content_store = { bucket = %q }
}
`, testAccRegion, testBucket)
}

// attrs are the state attributes of addr.
func attrs(s *terraform.State, addr string) (map[string]string, error) {
	rs, ok := s.RootModule().Resources[addr]
	if !ok {
		return nil, fmt.Errorf("%s is not in the state", addr)
	}
	return rs.Primary.Attributes, nil
}

// unpackerTarget is the `target` attribute of addr.
func unpackerTarget(s *terraform.State, addr string) (unpackerinstance.Target, error) {
	a, err := attrs(s, addr)
	if err != nil {
		return unpackerinstance.Target{}, err
	}
	return unpackerinstance.Target{
		Region: a["target.region"], AccountID: a["target.account_id"], RoleARN: a["target.role_arn"],
		InstanceID: a["target.instance_id"], Endpoint: a["target.endpoint"],
		ServerCertificateFingerprint: a["target.server_certificate_fingerprint"],
		ClientCertificatePEM:         a["target.client_certificate_pem"], ClientPrivateKeyPEM: a["target.client_private_key_pem"],
	}, nil
}

// testAccEnsureReady is what a publication does with a target: start the
// instance if it sleeps, and talk to the daemon over pinned mutual TLS.
func testAccEnsureReady(ctx context.Context, target unpackerinstance.Target) (*client.Client, error) {
	f, err := awsclient.NewFactory(ctx, awsclient.Settings{Region: testAccRegion, EndpointURL: testAccWorld.Endpoint})
	if err != nil {
		return nil, err
	}
	return unpackerinstance.EnsureReady(ctx, f, target, unpackerinstance.ReadyOptions{Polling: unpackerTestPolling})
}

// targetEC2 is an EC2 client of (role, region) in the test world.
func targetEC2(t *testing.T, role, region string) *ec2.Client {
	return testAccClients(t, awsclient.Target{RoleARN: role, Region: region}).EC2
}

func describeInstance(ctx context.Context, c *ec2.Client, id string) (ec2types.Instance, error) {
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return ec2types.Instance{}, err
	}
	if len(out.Reservations) == 0 || len(out.Reservations[0].Instances) == 0 {
		return ec2types.Instance{}, fmt.Errorf("no instance %s", id)
	}
	return out.Reservations[0].Instances[0], nil
}

// waitInstanceState waits with the SDK's waiter (fast delays) until the
// instance is stopped or terminated.
func waitInstanceState(ctx context.Context, c *ec2.Client, id string, state ec2types.InstanceStateName) error {
	in := &ec2.DescribeInstancesInput{InstanceIds: []string{id}}
	const bound = 2 * time.Minute
	switch state {
	case ec2types.InstanceStateNameStopped:
		return ec2.NewInstanceStoppedWaiter(c, func(o *ec2.InstanceStoppedWaiterOptions) {
			o.MinDelay, o.MaxDelay = 50*time.Millisecond, 250*time.Millisecond
		}).Wait(ctx, in, bound)
	case ec2types.InstanceStateNameTerminated:
		return ec2.NewInstanceTerminatedWaiter(c, func(o *ec2.InstanceTerminatedWaiterOptions) {
			o.MinDelay, o.MaxDelay = 50*time.Millisecond, 250*time.Millisecond
		}).Wait(ctx, in, bound)
	}
	return fmt.Errorf("no waiter for %s", state)
}

// consoleFingerprint is the last fingerprint line of the instance's console.
func consoleFingerprint(ctx context.Context, c *ec2.Client, id string) (string, error) {
	out, err := c.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id), Latest: aws.Bool(true)})
	if err != nil {
		return "", err
	}
	data, err := base64.StdEncoding.DecodeString(aws.ToString(out.Output))
	if err != nil {
		return "", err
	}
	var last string
	for _, line := range strings.Split(string(data), "\n") {
		if _, fp, ok := strings.Cut(line, "autoami-unpacker server certificate fingerprint: "); ok {
			last = strings.TrimSpace(fp)
		}
	}
	return last, nil
}

// userData is the instance's user-data, decoded.
func userData(ctx context.Context, c *ec2.Client, id string) ([]byte, error) {
	out, err := c.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(id),
		Attribute: ec2types.InstanceAttributeNameUserData})
	if err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(aws.ToString(out.UserData.Value))
}

// testAccCheckUnpackersGone is the CheckDestroy of the unpacker tests:
// nothing the resource made is left in any account or region (instances
// terminated, no volume), and no security group it made in its targets.
func testAccCheckUnpackersGone(t *testing.T, targets ...awsclient.Target) func(*terraform.State) error {
	return func(*terraform.State) error {
		ctx := context.Background()
		inv, err := testAccWorld.Inventory(ctx)
		if err != nil {
			return err
		}
		if left := inv.Leftovers(testworld.TaggedWith(unpackerinstance.TagTarget, "")); len(left) > 0 {
			return fmt.Errorf("left behind after destroy: %v", left)
		}
		for _, tg := range targets {
			out, err := targetEC2(t, tg.RoleARN, tg.Region).DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{
				Filters: []ec2types.Filter{{Name: aws.String("tag-key"), Values: []string{unpackerinstance.TagTarget}}}})
			if err != nil {
				return err
			}
			if len(out.SecurityGroups) > 0 {
				return fmt.Errorf("security group %s left behind in %s", aws.ToString(out.SecurityGroups[0].GroupId), tg.Region)
			}
		}
		return nil
	}
}

// unpackerIdentity is the client side of a target.
func unpackerIdentity(t unpackerinstance.Target) unpackerinstance.Identity {
	return unpackerinstance.Identity{ClientCertificatePEM: t.ClientCertificatePEM, ClientPrivateKeyPEM: t.ClientPrivateKeyPEM}
}
