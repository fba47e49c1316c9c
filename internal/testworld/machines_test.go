package testworld

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/sys/unix"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/faultproxy"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/client"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/testpki"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
	"github.com/autoami/terraform-provider-autoami/internal/unpackerinstance"
)

// An instance launched with an unpacker's user-data (deploy/README.md,
// "Bootstrap contract") runs a real `unpacker serve`: downloaded from the
// local S3 through the fault proxy, checksum verified, started from the
// deployed systemd unit, on a loopback address of its own. The subtests share
// one world (and one build of the binary) and reset it; when they end, no
// daemon, mount or loop device of the world is left on the host.
func TestLaunchedUnpackers(t *testing.T) {
	mw := startMachineWorld(t)
	t.Run("AnswersOverMTLSWithTheFingerprintItsConsolePrinted", func(t *testing.T) { testAnswersWithConsoleFingerprint(t, mw) })
	t.Run("StopAndStartKeepTheFingerprint", func(t *testing.T) { testStopStart(t, mw) })
	t.Run("NewUserDataUpgradesTheBinaryAndClientCA", func(t *testing.T) { testUpgrade(t, mw) })
	t.Run("TheProviderUserDataRuns", func(t *testing.T) { testProviderUserData(t, mw) })
	t.Run("RebootRestartsTheDaemon", func(t *testing.T) { testReboot(t, mw) })
	t.Run("SystemdRestartsADaemonThatDies", func(t *testing.T) { testRestartOnFailure(t, mw) })
	t.Run("IdlePoweroffStopsOrTerminates", func(t *testing.T) { testIdlePoweroff(t, mw) })
	t.Run("TerminateRemovesProcessAndDirectory", func(t *testing.T) { testTerminate(t, mw) })
	t.Run("UserDataNotUnderstoodFailsTheInstance", func(t *testing.T) { testNotUnderstood(t, mw) })
	t.Run("WrongChecksumNeverStartsTheDaemon", func(t *testing.T) { testWrongChecksum(t, mw) })
	t.Run("DownloadThroughTheProxyRetriesThrottling", func(t *testing.T) { testDownloadRetries(t, mw) })
	// Last: it kills the world's moto.
	t.Run("DaemonsDieWithMoto", func(t *testing.T) { testDieWithMoto(t, mw) })
}

func testAnswersWithConsoleFingerprint(t *testing.T, mw *machineWorld) {
	ctx := mw.reset(t)
	userData := mw.userData(bootstrap{})
	if strings.Contains(userData, "PRIVATE KEY") || strings.Contains(userData, "aws_secret") {
		t.Fatal("the user-data carries a private key or a credential")
	}
	start := time.Now()
	id := mw.launch(ctx, t, userData)
	inst := mw.waitState(ctx, t, id, ec2types.InstanceStateNameRunning)
	fps := mw.waitFingerprints(ctx, t, id, 1)
	toFingerprint := time.Since(start)
	c := mw.client(t, inst, fps[0])
	health, err := c.Health(ctx)
	if err != nil {
		t.Fatalf("the daemon does not answer over mTLS pinned to its console's fingerprint %s: %v", fps[0], err)
	}
	toHealthy := time.Since(start)
	t.Logf("RunInstances -> fingerprint on the console: %s; -> healthy over mTLS: %s", toFingerprint.Round(time.Millisecond), toHealthy.Round(time.Millisecond))
	if health.Status != "ok" || !health.LocalDevices {
		t.Fatalf("health %+v, want ok in local mode (--local-devices)", health)
	}

	// The only two differences from an instance: its own loopback address,
	// reported as the private IP, and --local-devices.
	m := mw.machine(ctx, t, id)
	ip := aws.ToString(inst.PrivateIpAddress)
	if m.Address != ip || !strings.HasPrefix(ip, "127.") || ip == "127.0.0.1" {
		t.Fatalf("PrivateIpAddress %q, machine address %q: want the machine's own 127.x.y.z", ip, m.Address)
	}
	if len(m.Services) != 1 || m.Services[0].Unit != "autoami-unpacker.service" {
		t.Fatalf("services %+v, want autoami-unpacker.service", m.Services)
	}
	for path, mode := range map[string]os.FileMode{
		"root/etc/autoami-unpacker/client-ca.pem":                                  0o644,
		"root/usr/local/bin/unpacker":                                              0o755,
		"root/var/lib/autoami-unpacker":                                            0o700 | os.ModeDir,
		"root/etc/systemd/system/multi-user.target.wants/autoami-unpacker.service": os.ModeSymlink,
	} {
		fi, err := os.Lstat(filepath.Join(m.Dir, path))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode() & (os.ModeType | os.ModePerm); got != mode && !(mode == os.ModeSymlink && fi.Mode()&os.ModeSymlink != 0) {
			t.Errorf("%s has mode %s, want %s", path, got, mode)
		}
	}

	// A client pinned to another fingerprint is refused.
	other := mw.client(t, inst, "sha256:"+strings.Repeat("ab", 32))
	var pin *client.PinError
	if _, err := other.Health(ctx); !errors.As(err, &pin) {
		t.Fatalf("a wrong pin: %v, want a PinError", err)
	}

	// Without Latest, GetConsoleOutput answers what was posted at the last
	// transition (running: before the daemon started), as AWS does.
	if buffered := mw.console(ctx, t, id, false); len(fingerprints(buffered)) != 0 || !strings.Contains(buffered, "running") {
		t.Fatalf("buffered console output %q: want the post of the transition to running, without the daemon's lines", buffered)
	}
}

func testStopStart(t *testing.T, mw *machineWorld) {
	ctx := mw.reset(t)
	id := mw.launch(ctx, t, mw.userData(bootstrap{}))
	inst := mw.waitState(ctx, t, id, ec2types.InstanceStateNameRunning)
	fps := mw.waitFingerprints(ctx, t, id, 1)
	c := mw.client(t, inst, fps[0])

	// A volume the daemon formats and mounts: a stopped machine keeps
	// neither the mount nor the loop device.
	const volume = "vol-0123456789abcdef0"
	if _, err := c.AttachDevice(ctx, wire.AttachDeviceRequest{VolumeID: volume, SizeBytes: 256 << 20}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AssociateStream(ctx, wire.AssociateStreamRequest{Stream: "web/test", VolumeID: volume, Origin: wire.OriginEmpty}); err != nil {
		t.Fatal(err)
	}
	left, err := mw.Moto.HostLeftovers()
	if err != nil {
		t.Fatal(err)
	}
	if !hasPrefixed(left, "process ") || !hasPrefixed(left, "mount ") || !hasPrefixed(left, "loop device ") {
		t.Fatalf("a running daemon with a mounted volume shows %v, want its process, mount and loop device", left)
	}

	stop, err := mw.ec2.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if got := stop.StoppingInstances[0].CurrentState.Name; got != ec2types.InstanceStateNameStopping {
		t.Fatalf("StopInstances answered %s, want stopping", got)
	}
	stopped := mw.waitState(ctx, t, id, ec2types.InstanceStateNameStopped)
	if code := aws.ToString(stopped.StateReason.Code); code != "Client.UserInitiatedShutdown" {
		t.Errorf("StateReason %s, want Client.UserInitiatedShutdown", code)
	}
	if left, _ := mw.Moto.HostLeftovers(); len(left) != 0 {
		t.Fatalf("a stopped machine still holds %v", left)
	}
	if _, err := mw.ec2.RebootInstances(ctx, &ec2.RebootInstancesInput{InstanceIds: []string{id}}); !isAPIError(err, "IncorrectInstanceState") {
		t.Fatalf("RebootInstances of a stopped instance: %v, want IncorrectInstanceState", err)
	}
	// The buffered output was posted at the stop: now it has the daemon's lines.
	if got := fingerprints(mw.console(ctx, t, id, false)); len(got) != 1 || got[0] != fps[0] {
		t.Fatalf("buffered console after the stop shows fingerprints %v, want %v", got, fps)
	}

	if _, err := mw.ec2.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	restarted := mw.waitState(ctx, t, id, ec2types.InstanceStateNameRunning)
	if aws.ToString(restarted.PrivateIpAddress) != aws.ToString(inst.PrivateIpAddress) {
		t.Fatalf("private IP %s after the start, %s before: an instance keeps it", aws.ToString(restarted.PrivateIpAddress), aws.ToString(inst.PrivateIpAddress))
	}
	again := mw.waitFingerprints(ctx, t, id, 2)
	if again[1] != fps[0] {
		t.Fatalf("fingerprint after stop and start %s, before %s: the state directory and key must survive", again[1], fps[0])
	}
	if _, err := c.Health(ctx); err != nil {
		t.Fatalf("the restarted daemon, pinned to the first fingerprint: %v", err)
	}
	if console := mw.console(ctx, t, id, true); strings.Count(console, "cloud-init: write_files") != 1 {
		t.Fatalf("cloud-init ran again at the start (it runs once per instance):\n%s", console)
	}

	// A forced stop is a power cut: the daemon is killed, not asked to stop.
	if _, err := mw.ec2.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}, Force: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	mw.waitState(ctx, t, id, ec2types.InstanceStateNameStopped)
	if console := mw.console(ctx, t, id, true); !strings.Contains(console, "autoami-unpacker.service (status=9/SIGKILL)") {
		t.Fatalf("console after a forced stop does not show the daemon killed:\n%s", console)
	}
}

// The per-boot part (bootcmd) runs the user-data of each boot: after a stop,
// user-data naming another build of the binary and another client CA, and a
// start, the daemon runs the new binary, trusts only the new CA, and keeps
// its key (so its fingerprint).
func testUpgrade(t *testing.T, mw *machineWorld) {
	ctx := mw.reset(t)
	id := mw.launch(ctx, t, mw.userData(bootstrap{}))
	inst := mw.waitState(ctx, t, id, ec2types.InstanceStateNameRunning)
	fps := mw.waitFingerprints(ctx, t, id, 1)
	if _, err := mw.ec2.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	mw.waitState(ctx, t, id, ec2types.InstanceStateNameStopped)

	// Another build: the same program, another digest.
	newBinary := append(bytes.Clone(mw.binary), "\nautoami test: another build\n"...)
	newURL, newSum := mw.upload(ctx, t, newBinary)
	newCA := testpki.NewCA(t, "autoami rotated client CA")
	userData := mw.userData(bootstrap{URL: newURL, SHA256: newSum, CAPEM: string(newCA.PEM)})
	// The blob goes as the user data itself: the SDK base64-encodes it, as
	// AWS wants it on the wire (terraform-provider-aws does the same).
	if _, err := mw.ec2.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(id),
		UserData: &ec2types.SecureBlobAttributeValue{Value: []byte(userData)}}); err != nil {
		t.Fatal(err)
	}
	stored, err := mw.ec2.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(id),
		Attribute: ec2types.InstanceAttributeNameUserData})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := base64.StdEncoding.DecodeString(aws.ToString(stored.UserData.Value)); err != nil || string(got) != userData {
		t.Fatalf("DescribeInstanceAttribute userData after the change is %.60q (%v); want the user data given", got, err)
	}
	if _, err := mw.ec2.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	mw.waitState(ctx, t, id, ec2types.InstanceStateNameRunning)
	again := mw.waitFingerprints(ctx, t, id, 2)
	if again[1] != fps[0] {
		t.Fatalf("fingerprint after the upgrade %s, before %s", again[1], fps[0])
	}
	m := mw.machine(ctx, t, id)
	installed, err := os.ReadFile(filepath.Join(m.Dir, "root/usr/local/bin/unpacker"))
	if err != nil {
		t.Fatal(err)
	}
	if got := sha256.Sum256(installed); hex.EncodeToString(got[:]) != newSum {
		t.Fatalf("the binary after the start is not the new build:\n%s", mw.console(ctx, t, id, true))
	}
	if _, err := os.Stat(filepath.Join(m.Dir, "root/usr/local/bin/unpacker.new")); !os.IsNotExist(err) {
		t.Fatalf("unpacker.new left behind: %v", err)
	}
	// Only the new CA's clients get in.
	newCert := newCA.ClientCertificate(t, "autoami provider after the rotation")
	c, err := client.New(client.Config{Address: net.JoinHostPort(aws.ToString(inst.PrivateIpAddress), fmt.Sprint(wire.DefaultPort)),
		Fingerprint: fps[0], Certificate: newCert, RetryMax: 40, RetryWaitMax: 250 * time.Millisecond, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Health(ctx); err != nil {
		t.Fatalf("a client of the new CA: %v", err)
	}
	old, err := client.New(client.Config{Address: net.JoinHostPort(aws.ToString(inst.PrivateIpAddress), fmt.Sprint(wire.DefaultPort)),
		Fingerprint: fps[0], Certificate: mw.cert, RetryMax: 1, RetryWaitMax: 10 * time.Millisecond, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Health(ctx); err == nil {
		t.Fatal("a client of the old CA still gets in after the CA changed")
	}
}

// The provider's own renderer (internal/unpackerinstance) makes user-data
// the stand-in runs: the contract's two sides agree.
func testProviderUserData(t *testing.T, mw *machineWorld) {
	ctx := mw.reset(t)
	userData, err := unpackerinstance.UserData(unpackerinstance.Bootstrap{Architecture: "x86_64",
		ClientCACertificatePEM: string(mw.ca.PEM), BinaryURL: mw.binaryURL, BinarySHA256: mw.binarySum,
		IdlePoweroff: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	id := mw.launch(ctx, t, string(userData))
	inst := mw.waitState(ctx, t, id, ec2types.InstanceStateNameRunning)
	fps := mw.waitFingerprints(ctx, t, id, 1)
	if _, err := mw.client(t, inst, fps[0]).Health(ctx); err != nil {
		t.Fatal(err)
	}
}

func testReboot(t *testing.T, mw *machineWorld) {
	ctx := mw.reset(t)
	id := mw.launch(ctx, t, mw.userData(bootstrap{}))
	inst := mw.waitState(ctx, t, id, ec2types.InstanceStateNameRunning)
	fps := mw.waitFingerprints(ctx, t, id, 1)
	before := mw.machine(ctx, t, id).Services[0].PID
	if _, err := mw.ec2.RebootInstances(ctx, &ec2.RebootInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	again := mw.waitFingerprints(ctx, t, id, 2)
	if again[1] != fps[0] {
		t.Fatalf("fingerprint after the reboot %s, before %s", again[1], fps[0])
	}
	m := mw.machine(ctx, t, id)
	if m.State != "running" || len(m.Services) != 1 || m.Services[0].PID == before {
		t.Fatalf("after the reboot: %+v, want running with a new daemon (was pid %d)", m, before)
	}
	if _, err := mw.client(t, inst, fps[0]).Health(ctx); err != nil {
		t.Fatal(err)
	}
}

// The unit's Restart=on-failure: a daemon killed by a signal is started
// again after RestartSec, with its key.
func testRestartOnFailure(t *testing.T, mw *machineWorld) {
	ctx := mw.reset(t)
	id := mw.launch(ctx, t, mw.userData(bootstrap{}))
	inst := mw.waitState(ctx, t, id, ec2types.InstanceStateNameRunning)
	fps := mw.waitFingerprints(ctx, t, id, 1)
	pid := mw.machine(ctx, t, id).Services[0].PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	again := mw.waitFingerprints(ctx, t, id, 2)
	if again[1] != fps[0] {
		t.Fatalf("fingerprint after the restart %s, before %s", again[1], fps[0])
	}
	if console := mw.console(ctx, t, id, true); !strings.Contains(console, "main process exited, status=9/SIGKILL") {
		t.Fatalf("console does not show the daemon's death:\n%s", console)
	}
	if m := mw.machine(ctx, t, id); len(m.Services) != 1 || m.Services[0].PID == pid {
		t.Fatalf("after the restart: %+v, want a new daemon (was pid %d)", m.Services, pid)
	}
	if _, err := mw.client(t, inst, fps[0]).Health(ctx); err != nil {
		t.Fatal(err)
	}
}

// The daemon's idle power-off (systemctl poweroff, caught by the harness's
// shim) stops the instance, or terminates it, as its shutdown behaviour says,
// with the state reason AWS gives for a shutdown from inside.
func testIdlePoweroff(t *testing.T, mw *machineWorld) {
	ctx := mw.reset(t)
	userData := mw.userData(bootstrap{Args: "--idle-poweroff=2s"})
	stops := mw.launch(ctx, t, userData)
	terminates := mw.launch(ctx, t, userData, func(in *ec2.RunInstancesInput) {
		in.InstanceInitiatedShutdownBehavior = ec2types.ShutdownBehaviorTerminate
	})
	for id, state := range map[string]ec2types.InstanceStateName{stops: ec2types.InstanceStateNameStopped, terminates: ec2types.InstanceStateNameTerminated} {
		inst := mw.waitState(ctx, t, id, state)
		reason := inst.StateReason
		if reason == nil || aws.ToString(reason.Code) != "Client.InstanceInitiatedShutdown" ||
			aws.ToString(reason.Message) != "Client.InstanceInitiatedShutdown: Instance initiated shutdown" ||
			aws.ToString(inst.StateTransitionReason) != "User initiated" {
			t.Errorf("%s %s with StateReason %+v, StateTransitionReason %q; want Client.InstanceInitiatedShutdown",
				id, state, aws.ToString(reason.Message), aws.ToString(inst.StateTransitionReason))
		}
		if console := mw.console(ctx, t, id, true); !strings.Contains(console, "idle: powering off") && !strings.Contains(console, "power request from inside the instance: poweroff") {
			t.Errorf("console of %s does not show the power-off:\n%s", id, console)
		}
	}
	if left, _ := mw.Moto.HostLeftovers(); len(left) != 0 {
		t.Fatalf("after the power-offs the host still has %v", left)
	}
}

func testTerminate(t *testing.T, mw *machineWorld) {
	ctx := mw.reset(t)
	id := mw.launch(ctx, t, mw.userData(bootstrap{}))
	mw.waitState(ctx, t, id, ec2types.InstanceStateNameRunning)
	fps := mw.waitFingerprints(ctx, t, id, 1)
	m := mw.machine(ctx, t, id)
	out, err := mw.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if got := out.TerminatingInstances[0].CurrentState.Name; got != ec2types.InstanceStateNameShuttingDown {
		t.Fatalf("TerminateInstances answered %s, want shutting-down", got)
	}
	mw.waitState(ctx, t, id, ec2types.InstanceStateNameTerminated)
	if err := syscall.Kill(m.Services[0].PID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("daemon pid %d after terminate: %v, want gone", m.Services[0].PID, err)
	}
	if _, err := os.Stat(m.Dir); !os.IsNotExist(err) {
		t.Fatalf("instance directory %s after terminate: %v, want removed", m.Dir, err)
	}
	// AWS keeps the console output of a terminated instance for a while.
	if got := fingerprints(mw.console(ctx, t, id, true)); len(got) != 1 || got[0] != fps[0] {
		t.Fatalf("console after terminate shows %v, want %v", got, fps)
	}
}

// Anything the stand-in does not implement fails the instance at launch,
// saying what, instead of being ignored.
func testNotUnderstood(t *testing.T, mw *machineWorld) {
	ctx := mw.reset(t)
	unit := string(mw.unit)
	cases := map[string]struct {
		userData string
		want     string
	}{
		"cloud-config key":      {mw.userData(bootstrap{Extra: map[string]any{"hostname": "unpacker"}}), "cloud-config keys ['hostname']"},
		"per-boot command":      {mw.userData(bootstrap{Extra: map[string]any{"bootcmd": []string{"echo hi"}}}), "bootcmd[0]: 'echo hi'"},
		"shell script":          {"#!/bin/sh\necho hello\n", "the stand-in runs only #cloud-config"},
		"download from outside": {mw.userData(bootstrap{URL: "https://example.com/unpacker"}), "'example.com' is not a loopback host"},
		"unit directive": {mw.userData(bootstrap{Unit: strings.Replace(unit, "[Service]\n", "[Service]\nProtectSystem=strict\n", 1)}),
			"[Service] ProtectSystem="},
		"package": {mw.userData(bootstrap{Extra: map[string]any{"packages": []string{"nginx"}}}), "'nginx' is not among the packages deploy/README.md lists"},
	}
	for name, tc := range cases {
		id := mw.launch(ctx, t, tc.userData)
		inst := mw.waitLaunched(ctx, t, id)
		if inst.State.Name != ec2types.InstanceStateNameTerminated {
			t.Errorf("%s: instance %s, want terminated", name, inst.State.Name)
			continue
		}
		code, message := aws.ToString(inst.StateReason.Code), aws.ToString(inst.StateReason.Message)
		if code != "TestWorld.UserDataNotUnderstood" || !strings.Contains(message, tc.want) {
			t.Errorf("%s: StateReason %s %q, want TestWorld.UserDataNotUnderstood saying %q", name, code, message, tc.want)
		}
		if console := mw.console(ctx, t, id, false); !strings.Contains(console, tc.want) {
			t.Errorf("%s: console %q does not say %q", name, console, tc.want)
		}
	}
}

func testWrongChecksum(t *testing.T, mw *machineWorld) {
	ctx := mw.reset(t)
	id := mw.launch(ctx, t, mw.userData(bootstrap{SHA256: strings.Repeat("0", 64)}))
	mw.waitState(ctx, t, id, ec2types.InstanceStateNameRunning)
	console := mw.waitConsole(ctx, t, id, "Failed to run module scripts_user")
	if !strings.Contains(console, "/usr/local/bin/unpacker: FAILED") {
		t.Fatalf("console does not show the failed checksum:\n%s", console)
	}
	m := mw.machine(ctx, t, id)
	if len(m.Services) != 0 || m.State != "running" {
		t.Fatalf("after a failed checksum: %+v, want a running instance with no daemon", m)
	}
	fi, err := os.Stat(filepath.Join(m.Dir, "root/usr/local/bin/unpacker"))
	if err != nil || fi.Mode()&0o111 != 0 {
		t.Fatalf("the unverified binary: %v, mode %v; want it downloaded and not executable", err, fi.Mode())
	}
}

// The instance downloads its binary as an instance would reach S3: through
// the fault proxy, where S3's SlowDown is retried by curl --retry (after 1 s,
// then 2 s).
func testDownloadRetries(t *testing.T, mw *machineWorld) {
	ctx := mw.reset(t)
	mw.Faults.SetRules(faultproxy.Rule{Actions: []string{"s3:GetObject"}, Throttle: faultproxy.Share{First: 2}})
	id := mw.launch(ctx, t, mw.userData(bootstrap{}))
	mw.waitState(ctx, t, id, ec2types.InstanceStateNameRunning)
	mw.waitFingerprints(ctx, t, id, 1)
	if st := mw.Faults.Stat("s3:GetObject"); st.Calls != 3 || st.Throttled != 2 {
		t.Fatalf("the download through the proxy: %+v, want 3 calls, 2 throttled", st)
	}
	if console := mw.console(ctx, t, id, true); strings.Count(console, "curl: (22) The requested URL returned error: 503. Will retry") != 2 {
		t.Fatalf("console does not show two retries of the download:\n%s", console)
	}
}

// A SIGKILLed moto runs no stop hook; its daemons die with it (parent-death
// signal) and Server.Stop unmounts and detaches what they held.
func testDieWithMoto(t *testing.T, mw *machineWorld) {
	ctx := mw.resetOnly(t)
	id := mw.launch(ctx, t, mw.userData(bootstrap{}))
	inst := mw.waitState(ctx, t, id, ec2types.InstanceStateNameRunning)
	fps := mw.waitFingerprints(ctx, t, id, 1)
	c := mw.client(t, inst, fps[0])
	if _, err := c.AttachDevice(ctx, wire.AttachDeviceRequest{VolumeID: "vol-0fedcba9876543210", SizeBytes: 256 << 20}); err != nil {
		t.Fatal(err)
	}
	pid := mw.machine(ctx, t, id).Services[0].PID
	// The daemon's exit, as an event: its pidfd becomes readable.
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pidfd)
	if err := syscall.Kill(mw.Moto.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	n, err := unix.Poll([]unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}, 30_000)
	if err != nil || n != 1 {
		t.Fatalf("daemon %d still runs 30 s after moto was killed (poll: %d, %v)", pid, n, err)
	}
	// Its loop device outlives it until Server.Stop (the world's cleanup,
	// which then asserts nothing is left).
	left, err := mw.Moto.HostLeftovers()
	if err != nil {
		t.Fatal(err)
	}
	if hasPrefixed(left, "process ") || !hasPrefixed(left, "loop device ") {
		t.Fatalf("after moto's death: %v, want no process and the loop device for Stop to detach", left)
	}
}

// waitConsole polls the latest console output until it contains want.
func (mw *machineWorld) waitConsole(ctx context.Context, t *testing.T, id, want string) string {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		console := mw.console(ctx, t, id, true)
		if strings.Contains(console, want) {
			return console
		}
		if time.Now().After(deadline) {
			t.Fatalf("console of %s does not show %q after two minutes:\n%s", id, want, console)
		}
		<-tick.C
	}
}

func hasPrefixed(items []string, prefix string) bool {
	for _, s := range items {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}
