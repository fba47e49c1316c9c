package testworld

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/client"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/testpki"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// The launched-unpacker tests share one world and one unpacker binary; each
// subtest resets the world first.
const machinesRegion = "eu-west-1"

// machineWorld is a World with the real unpacker binary in its S3 and a
// client CA for the daemons it launches.
type machineWorld struct {
	*World
	t         *testing.T
	ec2       *ec2.Client
	ca        *testpki.CA
	cert      tls.Certificate
	binary    []byte
	binaryURL string
	imageID   string
	binarySum string
	unit      []byte
	packages  []string
}

var (
	unpackerOnce   sync.Once
	unpackerBinary string
	unpackerErr    error
)

// buildUnpacker builds cmd/unpacker once per test binary, as deploy/README.md
// says (static, CGO_ENABLED=0).
func buildUnpacker(t *testing.T) string {
	t.Helper()
	unpackerOnce.Do(func() {
		dir, err := os.MkdirTemp("", "autoami-testworld-unpacker-")
		if err != nil {
			unpackerErr = err
			return
		}
		unpackerBinary = filepath.Join(dir, "unpacker")
		cmd := exec.Command("go", "build", "-o", unpackerBinary, "./cmd/unpacker")
		cmd.Dir = filepath.Join("..", "..")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			unpackerErr = fmt.Errorf("go build ./cmd/unpacker: %v: %s", err, out)
		}
	})
	if unpackerErr != nil {
		t.Fatal(unpackerErr)
	}
	return unpackerBinary
}

// startMachineWorld starts a world for the test and checks, when the test
// ends, that no daemon, mount or loop device of it is left on the host.
func startMachineWorld(t *testing.T) *machineWorld {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("launched unpackers need root (loop devices, mounts)")
	}
	binary := buildUnpacker(t)
	dir := t.TempDir()
	w, err := Start(context.Background(), moto.Options{LogPath: filepath.Join(dir, "moto.log"), DataDir: filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Stop(); err != nil {
			t.Error(err)
		}
		left, err := w.Moto.HostLeftovers()
		if err != nil {
			t.Error(err)
		}
		if len(left) > 0 {
			t.Errorf("after the world stopped, its machines left on the host: %s", strings.Join(left, "; "))
		}
		if t.Failed() {
			if log, err := os.ReadFile(filepath.Join(dir, "moto.log")); err == nil {
				t.Logf("moto log (last 4 KiB):\n%s", tail(log, 4096))
			}
		}
	})
	unit, err := os.ReadFile(filepath.Join("..", "..", "deploy", "systemd", "autoami-unpacker.service"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	ca := testpki.NewCA(t, "autoami test client CA")
	mw := &machineWorld{World: w, t: t, ca: ca, cert: ca.ClientCertificate(t, "autoami provider"), unit: unit,
		binary: data, binarySum: hex.EncodeToString(sum[:]), packages: documentedPackages(t)}
	return mw
}

// reset empties the world and puts the binary into its S3 again; the
// presigned URL goes through the fault proxy, as an instance's download would
// reach S3. When the test ends, a Reset must leave nothing on the host.
func (mw *machineWorld) reset(t *testing.T) context.Context {
	t.Helper()
	t.Cleanup(func() { mw.assertNoHostLeftoversAfterReset(t) })
	return mw.resetOnly(t)
}

// resetOnly is reset without the check at the end (for a test that kills moto).
func (mw *machineWorld) resetOnly(t *testing.T) context.Context {
	t.Helper()
	ctx := context.Background()
	if err := mw.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	cfg, err := mw.Config(ctx, machinesRegion, moto.DefaultAccountID)
	if err != nil {
		t.Fatal(err)
	}
	mw.ec2 = ec2.NewFromConfig(cfg)
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(contentBucket),
		CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(machinesRegion)}}); err != nil {
		t.Fatal(err)
	}
	mw.binaryURL, _ = mw.upload(ctx, t, mw.binary)
	mw.imageID = mw.image(ctx, t)
	return ctx
}

// contentBucket holds the binaries instances download.
const contentBucket = "autoami-content"

// upload puts a binary into the world's S3 by its digest and returns a
// presigned GET URL of it, made for the proxy's endpoint, and the digest.
func (mw *machineWorld) upload(ctx context.Context, t *testing.T, binary []byte) (url, sum string) {
	t.Helper()
	cfg, err := mw.Config(ctx, machinesRegion, moto.DefaultAccountID)
	if err != nil {
		t.Fatal(err)
	}
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	digest := sha256.Sum256(binary)
	sum = hex.EncodeToString(digest[:])
	key := "unpacker/" + sum
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(contentBucket), Key: aws.String(key), Body: bytes.NewReader(binary)}); err != nil {
		t.Fatal(err)
	}
	req, err := s3.NewPresignClient(s3c).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(contentBucket), Key: aws.String(key)},
		s3.WithPresignExpires(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return req.URL, sum
}

// assertNoHostLeftoversAfterReset: a Reset kills every daemon and releases
// its mounts and loop devices.
func (mw *machineWorld) assertNoHostLeftoversAfterReset(t *testing.T) {
	if err := mw.Reset(context.Background()); err != nil {
		t.Error(err)
		return
	}
	left, err := mw.Moto.HostLeftovers()
	if err != nil {
		t.Error(err)
	}
	if len(left) > 0 {
		t.Errorf("after Reset the machines left on the host: %s", strings.Join(left, "; "))
	}
}

// bootstrap is what one unpacker's user-data says (deploy/README.md,
// "Bootstrap contract").
type bootstrap struct {
	// Args is UNPACKER_ARGS in /etc/default/autoami-unpacker.
	Args string
	// SHA256 overrides the binary's digest (hex).
	SHA256 string
	// URL overrides the binary's presigned URL.
	URL string
	// Unit overrides the content of the systemd unit.
	Unit string
	// CAPEM overrides the client CA.
	CAPEM string
	// Extra are more top-level cloud-config keys.
	Extra map[string]any
}

// userData is the contract's cloud-config, in its JSON form (valid YAML).
func (mw *machineWorld) userData(b bootstrap) string {
	sum := mw.binarySum
	if b.SHA256 != "" {
		sum = b.SHA256
	}
	args := b.Args
	if args == "" {
		args = "--idle-poweroff=30m"
	}
	url := mw.binaryURL
	if b.URL != "" {
		url = b.URL
	}
	unit := string(mw.unit)
	if b.Unit != "" {
		unit = b.Unit
	}
	ca := string(mw.ca.PEM)
	if b.CAPEM != "" {
		ca = b.CAPEM
	}
	config := map[string]any{
		"packages": mw.packages,
		"write_files": []map[string]string{
			{"path": "/etc/autoami-unpacker/client-ca.pem", "permissions": "0644", "content": ca},
			{"path": "/etc/systemd/system/autoami-unpacker.service", "permissions": "0644", "content": unit},
			{"path": "/etc/default/autoami-unpacker", "permissions": "0644", "content": "UNPACKER_ARGS=" + args + "\n"},
		},
		"runcmd": []any{
			"set -e",
			[]string{"curl", "-fsS", "--retry", "5", "-o", "/usr/local/bin/unpacker", url},
			[]string{"sh", "-c", fmt.Sprintf(`echo "%s  /usr/local/bin/unpacker" | sha256sum -c -`, sum)},
			[]string{"chmod", "0755", "/usr/local/bin/unpacker"},
			[]string{"systemctl", "daemon-reload"},
			[]string{"systemctl", "enable", "--now", "autoami-unpacker.service"},
		},
		// The per-boot part: a binary of another digest, the client CA.
		"bootcmd": [][]string{
			{"sh", "-c", fmt.Sprintf(`if [ -e /usr/local/bin/unpacker ] && ! echo "%[1]s  /usr/local/bin/unpacker" | sha256sum --check --status -; then `+
				`curl -fsS --retry 5 -o /usr/local/bin/unpacker.new '%[2]s' && echo "%[1]s  /usr/local/bin/unpacker.new" | sha256sum -c - && `+
				`chmod 0755 /usr/local/bin/unpacker.new && mv -f /usr/local/bin/unpacker.new /usr/local/bin/unpacker; fi`, sum, url)},
			{"sh", "-c", fmt.Sprintf(`if [ -e /etc/autoami-unpacker/client-ca.pem ]; then printf '%%s' '%s' > /etc/autoami-unpacker/client-ca.pem; fi`, ca)},
		},
	}
	for k, v := range b.Extra {
		config[k] = v
	}
	data, err := json.Marshal(config)
	if err != nil {
		mw.t.Fatal(err)
	}
	return "#cloud-config\n" + string(data) + "\n"
}

// debianOwner is Debian's AWS account, which publishes the official Debian
// images unpackers boot from by default.
const debianOwner = "136693071363"

// image is the region's official Debian 12 amd64 image, as the unpacker
// resource launches by default.
func (mw *machineWorld) image(ctx context.Context, t *testing.T) string {
	t.Helper()
	out, err := mw.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{debianOwner},
		Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{"debian-12-amd64-*"}}}})
	if err != nil || len(out.Images) == 0 {
		t.Fatalf("the Debian 12 amd64 image: %v", err)
	}
	return aws.ToString(out.Images[0].ImageId)
}

// launch runs one instance with userData and returns its ID.
func (mw *machineWorld) launch(ctx context.Context, t *testing.T, userData string, mutate ...func(*ec2.RunInstancesInput)) string {
	t.Helper()
	in := &ec2.RunInstancesInput{
		ImageId:                           aws.String(mw.imageID),
		InstanceType:                      ec2types.InstanceTypeT3Micro,
		MinCount:                          aws.Int32(1),
		MaxCount:                          aws.Int32(1),
		UserData:                          aws.String(base64.StdEncoding.EncodeToString([]byte(userData))),
		InstanceInitiatedShutdownBehavior: ec2types.ShutdownBehaviorStop,
	}
	for _, m := range mutate {
		m(in)
	}
	out, err := mw.ec2.RunInstances(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.Instances[0].State.Name; got != ec2types.InstanceStateNamePending {
		t.Fatalf("RunInstances answered state %s, want pending", got)
	}
	return aws.ToString(out.Instances[0].InstanceId)
}

func (mw *machineWorld) describe(ctx context.Context, t *testing.T, id string) ec2types.Instance {
	t.Helper()
	out, err := mw.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Reservations[0].Instances[0]
}

// waitState waits, with the SDK's waiter for it, until the instance is in state.
func (mw *machineWorld) waitState(ctx context.Context, t *testing.T, id string, state ec2types.InstanceStateName) ec2types.Instance {
	t.Helper()
	in := &ec2.DescribeInstancesInput{InstanceIds: []string{id}}
	const bound = 2 * time.Minute
	fast := func(min, max *time.Duration) { *min, *max = 50*time.Millisecond, 500*time.Millisecond }
	var err error
	switch state {
	case ec2types.InstanceStateNameRunning:
		err = ec2.NewInstanceRunningWaiter(mw.ec2, func(o *ec2.InstanceRunningWaiterOptions) { fast(&o.MinDelay, &o.MaxDelay) }).Wait(ctx, in, bound)
	case ec2types.InstanceStateNameStopped:
		err = ec2.NewInstanceStoppedWaiter(mw.ec2, func(o *ec2.InstanceStoppedWaiterOptions) { fast(&o.MinDelay, &o.MaxDelay) }).Wait(ctx, in, bound)
	case ec2types.InstanceStateNameTerminated:
		err = ec2.NewInstanceTerminatedWaiter(mw.ec2, func(o *ec2.InstanceTerminatedWaiterOptions) { fast(&o.MinDelay, &o.MaxDelay) }).Wait(ctx, in, bound)
	default:
		t.Fatalf("no waiter for %s", state)
	}
	inst := mw.describe(ctx, t, id)
	if err != nil {
		t.Fatalf("waiting for %s to be %s (it is %s, %s): %v\nconsole:\n%s", id, state, inst.State.Name,
			aws.ToString(inst.StateTransitionReason), err, mw.console(ctx, t, id, true))
	}
	return inst
}

// waitLaunched polls until the instance is no longer pending (the SDK's
// terminated waiter gives up on a pending instance) and returns it.
func (mw *machineWorld) waitLaunched(ctx context.Context, t *testing.T, id string) ec2types.Instance {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		inst := mw.describe(ctx, t, id)
		if inst.State.Name != ec2types.InstanceStateNamePending {
			return inst
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %s is still pending after two minutes", id)
		}
		<-tick.C
	}
}

// console is the instance's console output, decoded.
func (mw *machineWorld) console(ctx context.Context, t *testing.T, id string, latest bool) string {
	t.Helper()
	out, err := mw.ec2.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id), Latest: aws.Bool(latest)})
	if err != nil {
		t.Fatal(err)
	}
	data, err := base64.StdEncoding.DecodeString(aws.ToString(out.Output))
	if err != nil {
		t.Fatalf("console output of %s is not base64: %v", id, err)
	}
	return string(data)
}

var fingerprintLine = regexp.MustCompile(regexp.QuoteMeta(wire.FingerprintLinePrefix) + `(\S+)`)

// fingerprints are the server fingerprints a console shows, in order.
func fingerprints(console string) []string {
	var out []string
	for _, m := range fingerprintLine.FindAllStringSubmatch(console, -1) {
		out = append(out, m[1])
	}
	return out
}

// waitFingerprints polls the latest console output, as the provider will,
// until it shows n fingerprint lines; it fails the test when the instance
// leaves running or two minutes pass.
func (mw *machineWorld) waitFingerprints(ctx context.Context, t *testing.T, id string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		console := mw.console(ctx, t, id, true)
		if fps := fingerprints(console); len(fps) >= n {
			return fps
		}
		st := mw.describe(ctx, t, id).State.Name
		failed := strings.Contains(console, "Failed to run module") || strings.Contains(console, ".service: failed")
		if st != ec2types.InstanceStateNameRunning || failed || time.Now().After(deadline) {
			t.Fatalf("instance %s is %s and its console shows no fingerprint line #%d:\n%s\njournal:\n%s", id, st, n, console,
				mw.journal(ctx, t, id))
		}
		<-tick.C
	}
}

// journal is the end of what the instance's units logged to the journal
// (journal.log in its directory), for failure messages.
func (mw *machineWorld) journal(ctx context.Context, t *testing.T, id string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(mw.machine(ctx, t, id).Dir, "journal.log"))
	if err != nil {
		return err.Error()
	}
	return string(tail(data, 4096))
}

// client is a pinned mTLS client of the instance's daemon, reached at its
// private IP (its own loopback address) and the unit's port.
func (mw *machineWorld) client(t *testing.T, inst ec2types.Instance, fingerprint string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{
		Address:     net.JoinHostPort(aws.ToString(inst.PrivateIpAddress), fmt.Sprint(wire.DefaultPort)),
		Fingerprint: fingerprint,
		Certificate: mw.cert,
		RetryMax:    40,
		// The daemon listens a moment after it prints its fingerprint.
		RetryWaitMax: 250 * time.Millisecond,
		Timeout:      time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// machine is the harness's view of one instance.
func (mw *machineWorld) machine(ctx context.Context, t *testing.T, id string) moto.Machine {
	t.Helper()
	ms, err := mw.Moto.Machines(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.InstanceID == id {
			return m
		}
	}
	t.Fatalf("the harness has no machine for %s", id)
	return moto.Machine{}
}

// documentedPackages are the packages of deploy/README.md's table.
func documentedPackages(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(data), "## Debian packages the instance needs")
	if !ok {
		t.Fatal("deploy/README.md has no section \"Debian packages the instance needs\"")
	}
	table, _, _ = strings.Cut(table, "\n## ")
	var out []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z0-9.+-]+)` \\|").FindAllStringSubmatch(table, -1) {
		out = append(out, m[1])
	}
	if len(out) == 0 {
		t.Fatal("no packages in deploy/README.md's table")
	}
	return out
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func isAPIError(err error, code string) bool {
	var ae interface{ ErrorCode() string }
	return errors.As(err, &ae) && ae.ErrorCode() == code
}
