package cloudinit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/autoami/terraform-provider-autoami/internal/testworld"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/loopdev"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/qemuboot"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/client"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/testpki"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
	"github.com/autoami/terraform-provider-autoami/internal/unpackerbinary"
	"github.com/autoami/terraform-provider-autoami/internal/unpackerinstance"
)

// guestS3 is the address at which the guest reaches the local S3: qemu
// forwards the guest's connections to it to the world's endpoint on the
// host's loopback; the guest reaches nothing else.
const guestS3 = "10.0.2.100"

// Bounds of the real boot under software emulation on a busy machine.
const (
	bootToFingerprint = 15 * time.Minute
	fingerprintToDone = 5 * time.Minute
)

var (
	fingerprintLine = regexp.MustCompile(regexp.QuoteMeta(wire.FingerprintLinePrefix) + `(sha256:[0-9a-f]{64})`)
	// cloud-init's final module prints this when the final stage is over
	// (after runcmd).
	cloudInitFinished = regexp.MustCompile(`Cloud-init v\. \S+ finished at [^\n]*Datasource (\S+)`)
	// What cloud-init prints to the console when a module fails, and what
	// the runcmd script or the daemon's unit print when they fail.
	bootstrapTrouble = regexp.MustCompile(`(?m)^.*(\[WARNING\]|Failed to run module|Traceback|sha256sum: WARNING|FAILED|curl: \(\d+\)|Failed to start autoami).*$`)
)

// TestBootstrapBootsForReal boots Debian 12 (built from Debian packages)
// under qemu with the contract's user-data on a NoCloud cidata volume. Real
// cloud-init and systemd run it: the binary comes from the local S3 through
// a presigned URL (qemu's restricted user-mode network forwards only that
// address), the daemon prints its fingerprint on the serial console, and
// then answers over mutual TLS, pinned to that fingerprint, through qemu's
// forward of its port to the host's loopback. cloud-init must finish
// without a failed module.
func TestBootstrapBootsForReal(t *testing.T) {
	loopdev.RequireRoot(t)
	ctx := context.Background()

	start := time.Now()
	img, err := BuildImage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image %s (kernel %s, cloud-init %s) ready in %s", img.Path, img.KernelVersion, img.Packages["cloud-init"], time.Since(start).Round(time.Second))
	packages, err := unpackerinstance.Packages(unpackerbinary.X86_64)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append([]string{"cloud-init", "systemd-sysv"}, packages...) {
		if img.Packages[p] == "" {
			t.Errorf("the image lacks %s, which the bootstrap needs", p)
		}
	}

	binary := buildUnpacker(t)
	w := startWorld(t)
	binaryURL := serveFromS3(ctx, t, w, binary)

	ca := testpki.NewCA(t, "autoami test client CA")
	userData := contractUserData(t, unpackerinstance.Bootstrap{Architecture: unpackerbinary.X86_64,
		ClientCACertificatePEM: string(ca.PEM), BinaryURL: binaryURL, BinarySHA256: sha256Hex(binary),
		IdlePoweroff: 30 * time.Minute})
	if err := ValidateUserData(ctx, userData); err != nil {
		t.Fatalf("the user-data to boot with: %v", err)
	}
	seed := filepath.Join(t.TempDir(), "seed.iso")
	if err := WriteSeed(ctx, seed, userData, MetaData{InstanceID: "i-0a1b2c3d4e5f60718", LocalHostname: "autoami-unpacker"}); err != nil {
		t.Fatal(err)
	}

	endpointPort := portOf(t, w.Endpoint)
	daemonPort := freePort(t)
	console := filepath.Join(t.TempDir(), "console.log")
	m := qemuboot.MustStart(t, qemuboot.Options{
		Image: img.Path, Firmware: qemuboot.BIOS, MemoryMiB: 1024, ConsoleLog: console,
		ExtraDisks: []qemuboot.ExtraDisk{{Path: seed}},
		Network: &qemuboot.UserNetwork{
			HostForwards:  []qemuboot.HostForward{{HostPort: daemonPort, GuestPort: wire.DefaultPort}},
			GuestForwards: []qemuboot.GuestForward{{GuestAddress: guestS3, GuestPort: endpointPort, HostPort: endpointPort}},
		},
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("serial console (last 150 lines):\n%s", qemuboot.LastLines(m.Console(), 150))
		}
	})

	res, err := m.WaitFor(ctx, fingerprintLine, bootToFingerprint)
	if err != nil {
		t.Fatalf("no fingerprint line: %v", err)
	}
	fingerprint := fingerprintLine.FindStringSubmatch(res.Match)[1]
	printed := time.Now()
	t.Logf("qemu start to the daemon's fingerprint line: %s (%s)", res.Elapsed.Round(100*time.Millisecond), res.Accel)

	// The daemon answers over mutual TLS, pinned to the printed fingerprint.
	cert := ca.ClientCertificate(t, "autoami provider")
	address := net.JoinHostPort("127.0.0.1", strconv.Itoa(daemonPort))
	c, err := client.New(client.Config{Address: address, Fingerprint: fingerprint, Certificate: cert,
		RetryMax: 20, RetryWaitMax: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	health, err := c.Health(ctx)
	if err != nil {
		t.Fatalf("health over pinned mTLS at %s: %v", address, err)
	}
	if health.Status != "ok" || health.LocalDevices {
		t.Errorf("health %+v: want ok, with real devices (no --local-devices)", health)
	}
	t.Logf("daemon healthy over pinned mTLS %s after its fingerprint line", time.Since(printed).Round(100*time.Millisecond))
	if got, err := client.PeerFingerprint(ctx, address, cert); err != nil || got != fingerprint {
		t.Errorf("the handshake presents %s (%v), the console printed %s", got, err, fingerprint)
	}
	wrong, err := client.New(client.Config{Address: address, Fingerprint: wire.Fingerprint([]byte("another server")), Certificate: cert})
	if err != nil {
		t.Fatal(err)
	}
	var pinErr *client.PinError
	if _, err := wrong.Health(ctx); !errors.As(err, &pinErr) || pinErr.Got != fingerprint {
		t.Errorf("a client pinning another fingerprint: %v, want a PinError naming %s", err, fingerprint)
	}
	stranger, err := client.New(client.Config{Address: address, Fingerprint: fingerprint,
		Certificate: testpki.NewCA(t, "another CA").ClientCertificate(t, "intruder"), RetryMax: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stranger.Health(ctx); err == nil {
		t.Error("a client certificate of another CA was accepted: the daemon does not trust the user-data's client CA alone")
	}

	// cloud-init's final stage ends after runcmd, without a failed module.
	done, err := m.WaitFor(ctx, cloudInitFinished, fingerprintToDone)
	if err != nil {
		t.Fatalf("cloud-init did not finish: %v", err)
	}
	if ds := cloudInitFinished.FindStringSubmatch(done.Match)[1]; !strings.HasPrefix(ds, "DataSourceNoCloud") {
		t.Errorf("cloud-init ran from %s, want the NoCloud seed", ds)
	}
	if trouble := bootstrapTrouble.FindAllString(done.Console, -1); len(trouble) > 0 {
		t.Errorf("the bootstrap had trouble:\n%s", strings.Join(trouble, "\n"))
	}
	t.Logf("cloud-init finished %s after qemu start", done.Elapsed.Round(100*time.Millisecond))
}

// buildUnpacker builds cmd/unpacker as the provider ships it (static) and
// returns its bytes.
func buildUnpacker(t *testing.T) []byte {
	t.Helper()
	repo, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "unpacker")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/unpacker")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/unpacker: %v: %s", err, msg)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// startWorld starts a local AWS for the test (its S3 serves the binary).
func startWorld(t *testing.T) *testworld.World {
	t.Helper()
	if _, err := moto.LookBinary(""); err != nil {
		t.Fatal(moto.InstallHint)
	}
	dir := t.TempDir()
	w, err := testworld.Start(context.Background(), moto.Options{LogPath: filepath.Join(dir, "moto.log")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Stop(); err != nil {
			t.Error(err)
		}
	})
	if err := w.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	return w
}

// serveFromS3 puts binary into the world's S3 and returns a presigned GET
// URL of it as the guest reaches the world: at guestS3, on the port of the
// world's endpoint (the fault proxy, which an instance's download passes
// like any other S3 call).
func serveFromS3(ctx context.Context, t *testing.T, w *testworld.World, binary []byte) string {
	t.Helper()
	const region, bucket = "eu-central-1", "autoami-content"
	cfg, err := w.Config(ctx, region, moto.DefaultAccountID)
	if err != nil {
		t.Fatal(err)
	}
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket),
		CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(region)}}); err != nil {
		t.Fatal(err)
	}
	key := "unpacker/" + sha256Hex(binary)
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(binary)}); err != nil {
		t.Fatal(err)
	}
	guestEndpoint := fmt.Sprintf("http://%s:%d", guestS3, portOf(t, w.Endpoint))
	presigner := s3.NewPresignClient(s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = true
		o.BaseEndpoint = aws.String(guestEndpoint)
	}))
	req, err := presigner.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)},
		s3.WithPresignExpires(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return req.URL
}

// portOf is the port of an http://host:port endpoint.
func portOf(t *testing.T, endpoint string) int {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatalf("endpoint %s has no port: %v", endpoint, err)
	}
	return port
}

// freePort is a TCP port of 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
