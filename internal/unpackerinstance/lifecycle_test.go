package unpackerinstance

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/autoami/terraform-provider-autoami/internal/awsclient"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/faultproxy"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/client"
)

// One unpacker through its life: launched as the contract says, trusted
// through the fingerprint its console printed (and only that one), started
// by EnsureReady after an out-of-band stop, deleted without leftovers.
func TestUnpackerLifecycle(t *testing.T) {
	e := newEnv(t)
	start := time.Now()
	u, id := e.create(e.spec())
	took := time.Since(start)
	t.Logf("create took %s; steps: %s", took.Round(time.Millisecond), strings.Join(e.logs.waits(), ", "))
	// A second unpacker in the same target: the binary is in the store.
	e.logs.reset()
	start = time.Now()
	second, _ := e.create(e.spec())
	t.Logf("a second create took %s; steps: %s", time.Since(start).Round(time.Millisecond), strings.Join(e.logs.waits(), ", "))
	if err := e.mgr.Delete(e.ctx, second); err != nil {
		t.Fatal(err)
	}

	inst := e.describe(e.ec2, u.InstanceID)
	if u.State != "running" || u.Endpoint != u.PrivateIP+":6975" || u.UnpackerVersion != "test-1" {
		t.Fatalf("created %+v; want running at its private IP, version test-1", u)
	}
	// IMDSv2 only, hop limit 1; shutdown behaviour stop; encrypted root.
	if mo := inst.MetadataOptions; mo == nil || mo.HttpTokens != ec2types.HttpTokensStateRequired || aws.ToInt32(mo.HttpPutResponseHopLimit) != 1 {
		t.Errorf("metadata options %+v; want tokens required, hop limit 1", inst.MetadataOptions)
	}
	sb, err := e.ec2.DescribeInstanceAttribute(e.ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(u.InstanceID),
		Attribute: ec2types.InstanceAttributeNameInstanceInitiatedShutdownBehavior})
	if err != nil || aws.ToString(sb.InstanceInitiatedShutdownBehavior.Value) != "stop" {
		t.Errorf("shutdown behaviour %v, %v; want stop", sb, err)
	}
	vols, err := e.ec2.DescribeVolumes(e.ctx, &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{
		{Name: aws.String("attachment.instance-id"), Values: []string{u.InstanceID}}}})
	if err != nil || len(vols.Volumes) != 1 || !aws.ToBool(vols.Volumes[0].Encrypted) {
		t.Errorf("root volume %+v, %v; want one, encrypted", vols, err)
	}
	if u.CreatedSecurityGroupID == "" || len(u.SecurityGroupIDs) != 1 || u.SecurityGroupIDs[0] != u.CreatedSecurityGroupID {
		t.Errorf("security groups %v, created %q; want the one made for it", u.SecurityGroupIDs, u.CreatedSecurityGroupID)
	}
	cidrs, ours, err := securityGroupCIDRs(e.ctx, mustClients(t, e), u.CreatedSecurityGroupID, 6975)
	if err != nil || !ours || strings.Join(cidrs, ",") != "127.0.0.0/8" {
		t.Errorf("the group admits %v on 6975 (ours %v, %v); want only 127.0.0.0/8", cidrs, ours, err)
	}

	// The user-data holds only public material.
	attr, err := e.ec2.DescribeInstanceAttribute(e.ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(u.InstanceID),
		Attribute: ec2types.InstanceAttributeNameUserData})
	if err != nil {
		t.Fatal(err)
	}
	userData, _ := base64.StdEncoding.DecodeString(aws.ToString(attr.UserData.Value))
	for _, secret := range []string{"PRIVATE KEY", id.ClientPrivateKeyPEM, id.ClientCertificatePEM, "aws_secret_access_key", "X-Amz-Security-Token"} {
		if contains(userData, secret) {
			t.Errorf("the user-data holds %.30q", secret)
		}
	}

	// The pin is what the console printed, and the daemon's handshake shows it.
	out, err := console(e.ctx, e.ec2, u.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := id.TLSCertificate()
	if printed := lastFingerprint(out); printed != u.ServerCertificateFingerprint {
		t.Fatalf("pinned %s, the console printed %s", u.ServerCertificateFingerprint, printed)
	}
	if shown, err := client.PeerFingerprint(e.ctx, u.Endpoint, cert); err != nil || shown != u.ServerCertificateFingerprint {
		t.Fatalf("the daemon's handshake shows %s (%v); pinned %s", shown, err, u.ServerCertificateFingerprint)
	}

	// A wrong pin is refused, with both fingerprints named.
	wrong := u.Target(id)
	wrong.ServerCertificateFingerprint = "sha256:" + strings.Repeat("ab", 32)
	_, err = e.mgr.EnsureReady(e.ctx, wrong)
	var pe *client.PinError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), u.ServerCertificateFingerprint) || !strings.Contains(err.Error(), wrong.ServerCertificateFingerprint) {
		t.Fatalf("EnsureReady with a wrong pin: %v; want a PinError naming both fingerprints", err)
	}

	// Stopped out of band: EnsureReady starts it and returns a working client.
	if _, err := e.ec2.StopInstances(e.ctx, &ec2.StopInstancesInput{InstanceIds: []string{u.InstanceID}}); err != nil {
		t.Fatal(err)
	}
	c, err := EnsureReady(e.ctx, e.factry, u.Target(id), ReadyOptions{Polling: fastPolling})
	if err != nil {
		t.Fatalf("EnsureReady of a stopping instance: %v", err)
	}
	if h, err := c.Health(e.ctx); err != nil || h.Status != "ok" {
		t.Fatalf("health after EnsureReady: %+v %v", h, err)
	}
	if st := e.describe(e.ec2, u.InstanceID).State.Name; st != ec2types.InstanceStateNameRunning {
		t.Fatalf("after EnsureReady the instance is %s", st)
	}

	// Refresh sees a stopped instance as stopped, with the endpoint kept.
	if _, err := e.ec2.StopInstances(e.ctx, &ec2.StopInstancesInput{InstanceIds: []string{u.InstanceID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.mgr.m.readyEnv().waitInstance(e.ctx, e.ec2, u.InstanceID, ec2types.InstanceStateNameStopped); err != nil {
		t.Fatal(err)
	}
	endpoint := u.Endpoint
	if err := e.mgr.Refresh(e.ctx, u); err != nil || u.State != "stopped" || u.Endpoint != endpoint {
		t.Fatalf("refresh of a stopped unpacker: %+v %v", u, err)
	}

	if err := e.mgr.Delete(e.ctx, u); err != nil {
		t.Fatal(err)
	}
	if left := e.leftovers(); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	if groups := e.securityGroupsLeft(e.ec2); len(groups) > 0 {
		t.Errorf("security groups left behind: %v", groups)
	}
	if err := e.mgr.Refresh(e.ctx, u); !errors.Is(err, ErrGone) {
		t.Errorf("refresh after delete: %v; want ErrGone", err)
	}
	if err := e.mgr.Delete(e.ctx, u); err != nil {
		t.Errorf("a second delete: %v", err)
	}
}

// A RunInstances whose answer is lost is sent again by the SDK with the same
// client token: one instance, not two.
func TestClientTokenLaunchesOnce(t *testing.T) {
	e := newEnv(t)
	e.w.Faults.SetRules(faultproxy.Rule{Actions: []string{"ec2:RunInstances"}, DropResponse: faultproxy.Share{First: 1}})
	u, _ := e.create(e.spec())
	if st := e.w.Faults.Stat("ec2:RunInstances"); st.Calls < 2 || st.DroppedResponses < 1 {
		t.Fatalf("RunInstances calls %+v; want a dropped answer and a retry", st)
	}
	out, err := e.ec2.DescribeInstances(e.ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag-key"), Values: []string{TagTarget}}}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			ids = append(ids, aws.ToString(i.InstanceId))
		}
	}
	if len(ids) != 1 || ids[0] != u.InstanceID {
		t.Fatalf("instances %v after a retried launch; want only %s", ids, u.InstanceID)
	}
	if err := e.mgr.Delete(e.ctx, u); err != nil {
		t.Fatal(err)
	}
}

// Delete detaches a stream volume (stopping the instance so its daemon lets
// go) instead of letting the termination take it: stream volumes belong to
// the published AMIs.
func TestDeleteDetachesStreamVolumes(t *testing.T) {
	e := newEnv(t)
	u, _ := e.create(e.spec())
	vol, err := e.ec2.CreateVolume(e.ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(u.AvailabilityZone), Size: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ec2.AttachVolume(e.ctx, &ec2.AttachVolumeInput{VolumeId: vol.VolumeId, InstanceId: aws.String(u.InstanceID),
		Device: aws.String("/dev/sdf")}); err != nil {
		t.Fatal(err)
	}
	// Terminating would delete it.
	if _, err := e.ec2.ModifyInstanceAttribute(e.ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(u.InstanceID),
		BlockDeviceMappings: []ec2types.InstanceBlockDeviceMappingSpecification{{DeviceName: aws.String("/dev/sdf"),
			Ebs: &ec2types.EbsInstanceBlockDeviceSpecification{DeleteOnTermination: aws.Bool(true)}}}}); err != nil {
		t.Fatal(err)
	}
	if err := e.mgr.Delete(e.ctx, u); err != nil {
		t.Fatal(err)
	}
	out, err := e.ec2.DescribeVolumes(e.ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{aws.ToString(vol.VolumeId)}})
	if err != nil || len(out.Volumes) != 1 || out.Volumes[0].State != ec2types.VolumeStateAvailable || len(out.Volumes[0].Attachments) != 0 {
		t.Fatalf("stream volume after delete: %+v %v; want it kept, available, attached nowhere", out, err)
	}
	if st := e.describe(e.ec2, u.InstanceID).State.Name; st != ec2types.InstanceStateNameTerminated {
		t.Fatalf("instance %s after delete", st)
	}
}

// An image the target cannot launch is an error naming it, before anything
// is made.
func TestImageTheTargetCannotLaunch(t *testing.T) {
	e := newEnv(t)
	spec := e.spec()
	spec.ImageID = "ami-0123456789abcdef0"
	_, err := e.mgr.Create(e.ctx, spec, mustIdentity(t))
	if err == nil || !strings.Contains(err.Error(), "ami-0123456789abcdef0") || !strings.Contains(err.Error(), "not shared") {
		t.Fatalf("launch from an invisible image: %v", err)
	}
	if groups := e.securityGroupsLeft(e.ec2); len(groups) > 0 {
		t.Errorf("security groups made for a launch that never happened: %v", groups)
	}
}

// No capacity: a clear error naming the type and zone at once (no retries),
// and the security group made for the launch is deleted again.
func TestInsufficientCapacity(t *testing.T) {
	e := newEnv(t)
	e.w.Faults.SetRules(faultproxy.Rule{Actions: []string{"ec2:RunInstances"},
		Error: faultproxy.ErrorReply{Code: "InsufficientInstanceCapacity", Message: "We currently do not have sufficient t3.small capacity",
			Share: faultproxy.Share{Fraction: 1}}})
	_, err := e.mgr.Create(e.ctx, e.spec(), mustIdentity(t))
	for _, want := range []string{"no capacity", "t3.small", homeRegion, "InsufficientInstanceCapacity", "instance_type or subnet_id"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("launch without capacity: %v; want it to mention %q", err, want)
		}
	}
	// Not retried for minutes as a server error: another zone, type or a
	// later try is the user's call.
	if calls := e.w.Faults.Stat("ec2:RunInstances").Calls; calls != 1 {
		t.Errorf("RunInstances was called %d times; want once (capacity refusals are final)", calls)
	}
	e.w.Faults.SetRules()
	if groups := e.securityGroupsLeft(e.ec2); len(groups) > 0 {
		t.Errorf("security groups left after a failed launch: %v", groups)
	}
}

func mustIdentity(t *testing.T) Identity {
	t.Helper()
	id, err := NewIdentity("autoami test")
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Adopt (terraform import) reads back what the user-data, the security
// group and the console say; an instance that is no unpacker is refused.
func TestAdopt(t *testing.T) {
	e := newEnv(t)
	spec := e.spec()
	spec.Port, spec.IdlePoweroff = 7443, 45*time.Minute
	u, _ := e.create(spec)
	got, err := e.mgr.Adopt(e.ctx, awsclient.Target{Region: homeRegion}, u.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Port != 7443 || got.IdlePoweroff != 45*time.Minute || got.BinarySHA256 != u.BinarySHA256 ||
		got.ClientCACertificatePEM != u.ClientCACertificatePEM || got.CreatedSecurityGroupID != u.CreatedSecurityGroupID ||
		strings.Join(got.AllowedCIDRs, ",") != "127.0.0.0/8" || got.ServerCertificateFingerprint != u.ServerCertificateFingerprint ||
		got.Endpoint != u.PrivateIP+":7443" || got.Architecture != "x86_64" || got.Tags["team"] != "images" {
		t.Fatalf("adopted %+v\nlaunched %+v", got, u)
	}

	plain, err := e.ec2.RunInstances(e.ctx, &ec2.RunInstancesInput{ImageId: aws.String(u.ImageID), InstanceType: ec2types.InstanceTypeT3Micro,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	plainID := aws.ToString(plain.Instances[0].InstanceId)
	if _, err := e.mgr.Adopt(e.ctx, awsclient.Target{Region: homeRegion}, plainID); err == nil || !strings.Contains(err.Error(), "not launched as an unpacker") {
		t.Fatalf("adopting an instance without an unpacker's user-data: %v", err)
	}
	if _, err := e.mgr.Adopt(e.ctx, awsclient.Target{Region: homeRegion}, "i-0123456789abcdef0"); !errors.Is(err, ErrGone) {
		t.Fatalf("adopting a missing instance: %v; want ErrGone", err)
	}
	if err := e.mgr.Delete(e.ctx, u); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ec2.TerminateInstances(e.ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{plainID}}); err != nil {
		t.Fatal(err)
	}
}

// A bootstrap that fails on the instance (here the download of the binary
// is refused) fails the create at once with the console's end, and returns
// the instance so that the caller can record and delete it.
func TestBootstrapFailureIsReported(t *testing.T) {
	e := newEnv(t)
	e.w.Faults.SetRules(faultproxy.Rule{Actions: []string{"s3:GetObject"},
		Error: faultproxy.ErrorReply{Code: "AccessDenied", Message: "Request has expired", Share: faultproxy.Share{Fraction: 1}}})
	start := time.Now()
	u, err := e.mgr.Create(e.ctx, e.spec(), mustIdentity(t))
	if err == nil || u == nil || u.InstanceID == "" {
		t.Fatalf("create with a refused download: %+v, %v; want the instance and an error", u, err)
	}
	t.Logf("the error: %v", err)
	for _, want := range []string{u.InstanceID, "bootstrap", "failed", "console ends", "403"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if took := time.Since(start); took > time.Minute {
		t.Errorf("the failure took %s to notice", took)
	}
	e.w.Faults.SetRules()
	if err := e.mgr.Delete(e.ctx, u); err != nil {
		t.Fatal(err)
	}
	if left := e.leftovers(); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	if groups := e.securityGroupsLeft(e.ec2); len(groups) > 0 {
		t.Errorf("security groups left behind: %v", groups)
	}
}
