package publisher

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/autoami/terraform-provider-autoami/internal/awsclient"
	"github.com/autoami/terraform-provider-autoami/internal/contentstore"
	"github.com/autoami/terraform-provider-autoami/internal/imagestream"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/testpki"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// The accounts and regions of the tests: the content store lives in the
// home account; targets are accounts A and B in two regions each; the
// consumer account is who the AMIs are shared with.
const (
	homeRegion = "eu-west-1"
	accountA   = "222222222222"
	accountB   = "333333333333"
	consumer   = "444444444444"
	testBucket = "autoami-content"
	// orgARN is the organization of A, B and the consumer.
	orgARN = "arn:aws:organizations::111111111111:organization/o-abcdef1234"
)

var regions = []string{"eu-west-1", "us-east-1"}

func init() {
	// The factory loads the default credential chain: static test keys,
	// nothing from the machine.
	os.Setenv("AWS_ACCESS_KEY_ID", "test")
	os.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Setenv("AWS_CONFIG_FILE", os.DevNull)
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
}

// env is one test's world: an empty local AWS with a content store, the
// unpacker binary in it, and a client identity for the daemons it launches.
type env struct {
	t         testing.TB
	ctx       context.Context
	store     *contentstore.Store
	presigner *s3.PresignClient
	factory   *awsclient.Factory
	ca        *testpki.CA
	certPEM   string
	keyPEM    string
	binaryURL string
	binarySum string
	// keys are the targets' default EBS keys, by target key.
	keys   map[string]string
	events *recorder
}

func requireWorld(t testing.TB) {
	t.Helper()
	if worldErr != nil {
		t.Skip(worldErr)
	}
}

// newEnv resets the world and sets up the content store and identity.
// When the test ends the world is reset again, stopping its daemons.
func newEnv(t testing.TB) *env {
	t.Helper()
	requireWorld(t)
	ctx := context.Background()
	if err := world.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := world.Reset(context.Background()); err != nil {
			t.Errorf("reset the world after the test: %v", err)
		}
		if left, err := world.Moto.HostLeftovers(); err != nil || len(left) > 0 {
			t.Errorf("after Reset the machines left on the host: %v %v", left, err)
		}
	})
	home, err := world.Config(ctx, homeRegion, moto.DefaultAccountID)
	if err != nil {
		t.Fatal(err)
	}
	s3c := s3.NewFromConfig(home, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(testBucket),
		CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(homeRegion)}}); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, presigner: s3.NewPresignClient(s3c), keys: map[string]string{}, events: &recorder{t: t}}
	e.store = contentstore.New(s3c, contentstore.Location{Bucket: testBucket, Prefix: "store/"}, contentstore.Options{})
	// Few retries: a fault test's injected 5xx fails fast.
	e.factory, err = newFactory(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := e.store.PutData(ctx, unpackerBinary)
	if err != nil {
		t.Fatal(err)
	}
	e.binarySum = d.String()
	if e.binaryURL, err = e.store.PresignObject(ctx, e.presigner, d, time.Hour); err != nil {
		t.Fatal(err)
	}
	e.ca = testpki.NewCA(t, "autoami publisher test CA")
	cert := e.ca.ClientCertificate(t, "autoami provider")
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	e.certPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}))
	e.keyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}))
	if err := world.Moto.SetOrganizations(ctx, moto.Organization{ARN: orgARN, Accounts: []string{accountA, accountB, consumer}}); err != nil {
		t.Fatal(err)
	}
	return e
}

// newFactory is an AWS client factory reaching the world's proxy as the
// provider would (maxRetries 0: awsclient's default).
func newFactory(ctx context.Context, maxRetries int) (*awsclient.Factory, error) {
	return awsclient.NewFactory(ctx, awsclient.Settings{Region: homeRegion, EndpointURL: world.Endpoint, MaxRetries: maxRetries})
}

// publisher returns a Publisher of the env with fast polling.
func (e *env) publisher(mutate ...func(*Config)) *Publisher {
	e.t.Helper()
	cfg := Config{
		Clients:   e.factory,
		Store:     e.store,
		Presigner: e.presigner,
		Progress:  e.events.record,
		Timeouts:  Timeouts{Volume: time.Minute, Unpack: 5 * time.Minute, Snapshot: 2 * time.Minute, Image: 2 * time.Minute, SSMParameter: 5 * time.Second},
		Polling:   Polling{MinDelay: 20 * time.Millisecond, MaxDelay: 250 * time.Millisecond, ImageObservations: 3},
	}
	for _, m := range mutate {
		m(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// upload publishes a directory tree as the stream's next revision.
func (e *env) upload(stream, dir string) string {
	e.t.Helper()
	c, err := imagestream.Load(e.ctx, imagestream.Source{Kind: imagestream.KindTree, Directory: dir}, imagestream.LoadOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	if _, err := imagestream.Upload(e.ctx, e.store, stream, c, time.Now(), nil); err != nil {
		e.t.Fatal(err)
	}
	return c.Revision
}

// ec2In is an EC2 client acting as account in region, through the proxy.
func (e *env) ec2In(account, region string) *ec2.Client {
	e.t.Helper()
	cfg, err := world.Config(e.ctx, region, account)
	if err != nil {
		e.t.Fatal(err)
	}
	return ec2.NewFromConfig(cfg)
}

// targets launches one unpacker per account and region (concurrently) and
// gives each account and region a customer managed default EBS key, so
// its AMIs can be shared.
func (e *env) targets(accounts ...string) []Target {
	e.t.Helper()
	var specs [][2]string
	for _, a := range accounts {
		for _, r := range regions {
			specs = append(specs, [2]string{a, r})
		}
	}
	out := make([]Target, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	start := time.Now()
	for i, s := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = e.launch(s[0], s[1])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		e.t.Fatal(err)
	}
	e.t.Logf("%d unpackers launched and answering in %s", len(out), time.Since(start).Round(time.Millisecond))
	return out
}

// launch sets up one target: its default EBS key, an unpacker instance
// launched with the bootstrap contract's user-data, its fingerprint.
func (e *env) launch(account, region string) (Target, error) {
	cfg, err := world.Config(e.ctx, region, account)
	if err != nil {
		return Target{}, err
	}
	c := ec2.NewFromConfig(cfg)
	k, err := kms.NewFromConfig(cfg).CreateKey(e.ctx, &kms.CreateKeyInput{Description: aws.String("autoami test default EBS key")})
	if err != nil {
		return Target{}, fmt.Errorf("CreateKey in %s/%s: %w", account, region, err)
	}
	keyARN := aws.ToString(k.KeyMetadata.Arn)
	if _, err := c.ModifyEbsDefaultKmsKeyId(e.ctx, &ec2.ModifyEbsDefaultKmsKeyIdInput{KmsKeyId: aws.String(keyARN)}); err != nil {
		return Target{}, fmt.Errorf("ModifyEbsDefaultKmsKeyId in %s/%s: %w", account, region, err)
	}
	images, err := c.DescribeImages(e.ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"},
		Filters: []ec2types.Filter{{Name: aws.String("architecture"), Values: []string{"x86_64"}}}})
	if err != nil || len(images.Images) == 0 {
		return Target{}, fmt.Errorf("an x86_64 image to launch in %s/%s: %v", account, region, err)
	}
	userData, err := e.userData()
	if err != nil {
		return Target{}, err
	}
	run, err := c.RunInstances(e.ctx, &ec2.RunInstancesInput{
		ImageId: images.Images[0].ImageId, InstanceType: ec2types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		UserData:                          aws.String(base64.StdEncoding.EncodeToString(userData)),
		InstanceInitiatedShutdownBehavior: ec2types.ShutdownBehaviorStop,
	})
	if err != nil {
		return Target{}, fmt.Errorf("RunInstances in %s/%s: %w", account, region, err)
	}
	id := aws.ToString(run.Instances[0].InstanceId)
	in := &ec2.DescribeInstancesInput{InstanceIds: []string{id}}
	out, err := ec2.NewInstanceRunningWaiter(c, func(o *ec2.InstanceRunningWaiterOptions) {
		o.MinDelay, o.MaxDelay = 50*time.Millisecond, 500*time.Millisecond
	}).WaitForOutput(e.ctx, in, 2*time.Minute)
	if err != nil {
		return Target{}, fmt.Errorf("instance %s in %s/%s running: %w", id, account, region, err)
	}
	inst := out.Reservations[0].Instances[0]
	fp, err := waitFingerprint(e.ctx, c, id)
	if err != nil {
		return Target{}, err
	}
	t := Target{
		AccountID: account, Region: region, RoleARN: "arn:aws:iam::" + account + ":role/autoami-publisher",
		InstanceID: id, Endpoint: net.JoinHostPort(aws.ToString(inst.PrivateIpAddress), fmt.Sprint(wire.DefaultPort)),
		ServerCertificateFingerprint: fp, ClientCertificatePEM: e.certPEM, ClientKeyPEM: e.keyPEM,
	}
	e.events.mu.Lock()
	e.keys[t.Key()] = keyARN
	e.events.mu.Unlock()
	return t, nil
}

var fingerprintLine = regexp.MustCompile(regexp.QuoteMeta(wire.FingerprintLinePrefix) + `(\S+)`)

// waitFingerprint polls the instance's console until the daemon's
// fingerprint line shows (as the unpacker resource does).
func waitFingerprint(ctx context.Context, c *ec2.Client, id string) (string, error) {
	var fp string
	err := pollUntil(ctx, Polling{MinDelay: 50 * time.Millisecond, MaxDelay: 500 * time.Millisecond}, "the fingerprint on "+id+"'s console", 2*time.Minute,
		func(ctx context.Context) (bool, error) {
			out, err := c.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id), Latest: aws.Bool(true)})
			if err != nil {
				return false, err
			}
			console, err := base64.StdEncoding.DecodeString(aws.ToString(out.Output))
			if err != nil {
				return false, err
			}
			if m := fingerprintLine.FindStringSubmatch(string(console)); m != nil {
				fp = m[1]
				return true, nil
			}
			if strings.Contains(string(console), "Failed to run module") || strings.Contains(string(console), ".service: failed") {
				return false, fmt.Errorf("instance %s failed its bootstrap:\n%s", id, console)
			}
			return false, nil
		})
	return fp, err
}

// userData is the bootstrap contract's cloud-config (deploy/README.md), in
// its JSON form, as the testworld's own machine tests render it.
func (e *env) userData() ([]byte, error) {
	unit, err := os.ReadFile(filepath.Join("..", "..", "deploy", "systemd", "autoami-unpacker.service"))
	if err != nil {
		return nil, err
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "deploy", "README.md"))
	if err != nil {
		return nil, err
	}
	_, table, _ := strings.Cut(string(readme), "## Debian packages the instance needs")
	table, _, _ = strings.Cut(table, "\n## ")
	var packages []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z0-9.+-]+)` \\|").FindAllStringSubmatch(table, -1) {
		packages = append(packages, m[1])
	}
	if len(packages) == 0 {
		return nil, errors.New("no packages in deploy/README.md's table")
	}
	config := map[string]any{
		"packages": packages,
		"write_files": []map[string]string{
			{"path": "/etc/autoami-unpacker/client-ca.pem", "permissions": "0644", "content": string(e.ca.PEM)},
			{"path": "/etc/systemd/system/autoami-unpacker.service", "permissions": "0644", "content": string(unit)},
			{"path": "/etc/default/autoami-unpacker", "permissions": "0644", "content": "UNPACKER_ARGS=--idle-poweroff=30m\n"},
		},
		"runcmd": []any{
			"set -e",
			[]string{"curl", "-fsS", "--retry", "5", "-o", "/usr/local/bin/unpacker", e.binaryURL},
			[]string{"sh", "-c", fmt.Sprintf(`echo "%s  /usr/local/bin/unpacker" | sha256sum -c -`, e.binarySum)},
			[]string{"chmod", "0755", "/usr/local/bin/unpacker"},
			[]string{"systemctl", "daemon-reload"},
			[]string{"systemctl", "enable", "--now", "autoami-unpacker.service"},
		},
	}
	data, err := json.Marshal(config)
	if err != nil {
		return nil, err
	}
	return append([]byte("#cloud-config\n"), append(data, '\n')...), nil
}

// recorder keeps a publication's events, logs them, and runs a hook on
// each (tests cancel a publication at a chosen step with it).
type recorder struct {
	t      testing.TB
	mu     sync.Mutex
	events []Event
	hook   func(Event)
}

func (r *recorder) record(ev Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	hook := r.hook
	r.mu.Unlock()
	msg := ev.Message
	if ev.Kind == EventStep {
		msg = "→ " + string(ev.Step)
	}
	r.t.Logf("%s %-24s %-6s %s", ev.Target, ev.Step, ev.Kind, msg)
	if hook != nil {
		hook(ev)
	}
}

func (r *recorder) setHook(h func(Event)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hook = h
}

// steps lists the steps target entered, in order.
func (r *recorder) steps(target string) []Step {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Step
	for _, ev := range r.events {
		if ev.Target == target && ev.Kind == EventStep {
			out = append(out, ev.Step)
		}
	}
	return out
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = nil
}
