package unpackerinstance

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
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
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/autoami/terraform-provider-autoami/internal/awsclient"
	"github.com/autoami/terraform-provider-autoami/internal/contentstore"
	"github.com/autoami/terraform-provider-autoami/internal/testworld"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
	"github.com/autoami/terraform-provider-autoami/internal/unpackerbinary"
)

// The world tests share one local AWS (started at the first test that needs
// it) and one build of the unpacker; each resets the world first.

const (
	homeRegion   = "us-east-1"
	otherAccount = "222222222222"
	storeBucket  = "autoami-content"
)

// fastPolling keeps the waits short against the local AWS, where instances
// change state in milliseconds.
var fastPolling = Polling{InstanceMinDelay: 50 * time.Millisecond, InstanceMaxDelay: 250 * time.Millisecond,
	Console: 50 * time.Millisecond, Health: 100 * time.Millisecond}

var (
	worldOnce sync.Once
	world     *testworld.World
	worldErr  error
	worldDir  string
)

func TestMain(m *testing.M) {
	// Only fake credentials and loopback endpoints: no test may reach AWS.
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": homeRegion,
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
	} {
		os.Setenv(k, v)
	}
	for _, k := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"} {
		os.Unsetenv(k)
	}
	code := m.Run()
	if world != nil {
		if err := world.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop the test world:", err)
		}
		if left, _ := world.Moto.HostLeftovers(); len(left) > 0 {
			fmt.Fprintln(os.Stderr, "the world's machines left on the host:", strings.Join(left, "; "))
			code = 1
		}
	}
	if worldDir != "" {
		os.RemoveAll(worldDir)
	}
	os.Exit(code)
}

// env is one world test's view: an empty AWS with a content store, a
// Manager on it, and the unpacker binary.
type env struct {
	t      *testing.T
	ctx    context.Context
	w      *testworld.World
	mgr    *Manager
	bin    unpackerbinary.Binary
	logs   *logRecorder
	ec2    *ec2.Client // home account, home region
	factry *awsclient.Factory
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("launched unpackers need root (loop devices, mounts)")
	}
	worldOnce.Do(func() {
		worldDir, worldErr = os.MkdirTemp("", "autoami-unpackerinstance-test-")
		if worldErr == nil {
			world, worldErr = testworld.Start(context.Background(), moto.Options{LogPath: filepath.Join(worldDir, "moto.log")})
		}
	})
	if worldErr != nil {
		t.Fatal(worldErr)
	}
	ctx := context.Background()
	if err := world.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if log, err := os.ReadFile(filepath.Join(worldDir, "moto.log")); err == nil {
				t.Logf("moto log (end):\n%s", tail(log, 3000))
			}
		}
		if err := world.Reset(context.Background()); err != nil {
			t.Error(err)
		}
		if left, err := world.Moto.HostLeftovers(); err != nil || len(left) > 0 {
			t.Errorf("after Reset the machines left on the host: %v %v", left, err)
		}
	})
	f, err := awsclient.NewFactory(ctx, awsclient.Settings{Region: homeRegion, EndpointURL: world.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	home, err := f.Home(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := home.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(storeBucket)}); err != nil {
		t.Fatal(err)
	}
	logs := &logRecorder{}
	mgr, err := New(Config{
		Clients:   f,
		Store:     contentstore.New(home.S3, contentstore.Location{Bucket: storeBucket, Prefix: "autoami/"}, contentstore.Options{}),
		Presigner: s3.NewPresignClient(home.S3),
		Logger:    slog.New(logs),
		Polling:   fastPolling,
	})
	if err != nil {
		t.Fatal(err)
	}
	bin, err := unpackerbinary.FromFile(buildUnpacker(t, "test-1"), unpackerbinary.X86_64)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, ctx: ctx, w: world, mgr: mgr, bin: bin, logs: logs, ec2: home.EC2, factry: f}
}

// spec is a launch in the home account and region, admitting loopback.
func (e *env) spec() Spec {
	return Spec{Target: awsclient.Target{Region: homeRegion}, AllowedCIDRs: []string{"127.0.0.0/8"},
		IdlePoweroff: 30 * time.Minute, Tags: map[string]string{"team": "images"}, Binary: e.bin}
}

func (e *env) create(spec Spec) (*Unpacker, Identity) {
	e.t.Helper()
	id, err := NewIdentity("autoami test")
	if err != nil {
		e.t.Fatal(err)
	}
	u, err := e.mgr.Create(e.ctx, spec, id)
	if err != nil {
		e.t.Fatalf("create: %v", err)
	}
	return u, id
}

var (
	buildMu    sync.Mutex
	buildCache = map[string]string{}
)

// buildUnpacker builds cmd/unpacker stamped with version, once per test binary.
func buildUnpacker(t *testing.T, version string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := buildCache[version]; ok {
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
	buildCache[version] = out
	return out
}

// logRecorder keeps the Manager's log records (the waits and their times).
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r.Clone())
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// waits are the timed steps logged so far (the waits, and the lookups and
// the upload before the launch): what and how long.
func (l *logRecorder) waits() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.records {
		secs, timed := 0.0, false
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "seconds" {
				secs, timed = a.Value.Float64(), true
			}
			return true
		})
		if timed && !strings.HasPrefix(r.Message, "waiting: ") {
			out = append(out, fmt.Sprintf("%s %.3fs", strings.TrimPrefix(r.Message, "waited: "), secs))
		}
	}
	return out
}

func (l *logRecorder) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// describe reads an instance with the home clients of account/region.
func (e *env) describe(c *ec2.Client, id string) ec2types.Instance {
	e.t.Helper()
	out, err := c.DescribeInstances(e.ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		e.t.Fatal(err)
	}
	return out.Reservations[0].Instances[0]
}

func (e *env) leftovers() []string {
	e.t.Helper()
	inv, err := e.w.Inventory(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, r := range inv.Leftovers(testworld.TaggedWith(TagTarget, "")) {
		out = append(out, fmt.Sprint(r))
	}
	return out
}

// securityGroupsLeft are the groups this package made that still exist in
// the home account and region.
func (e *env) securityGroupsLeft(c *ec2.Client) []string {
	e.t.Helper()
	out, err := c.DescribeSecurityGroups(e.ctx, &ec2.DescribeSecurityGroupsInput{
		Filters: []ec2types.Filter{{Name: aws.String("tag-key"), Values: []string{TagTarget}}}})
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []string
	for _, g := range out.SecurityGroups {
		ids = append(ids, aws.ToString(g.GroupId))
	}
	return ids
}

func contains(b []byte, s string) bool { return bytes.Contains(b, []byte(s)) }

func mustClients(t *testing.T, e *env) *awsclient.Clients {
	t.Helper()
	c, err := e.factry.Home(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
