package cloudinit

import (
	"bytes"
	"context"
	"crypto/tls"
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

	"github.com/autoami/terraform-provider-autoami/internal/testworld/bootfs"
)

// guestS3 is the address at which the guest reaches the local S3: qemu
// forwards the guest's connections to it to the world's endpoint on the
// host's loopback; the guest reaches nothing else.
const guestS3 = "10.0.2.100"

// instanceID is the NoCloud meta-data's instance ID, the same at every boot
// of the test's instance (cloud-init runs its once-per-instance modules on
// the first boot only).
const instanceID = "i-0a1b2c3d4e5f60718"

// Bounds of the real boots under software emulation on a busy machine.
const (
	bootToFingerprint = 15 * time.Minute
	fingerprintToDone = 5 * time.Minute
	idleToPoweroff    = 5 * time.Minute
)

// upgradeVersion is the version the second boot's binary is stamped with.
const upgradeVersion = "bootstrap-upgrade-test"

var (
	fingerprintLine = regexp.MustCompile(regexp.QuoteMeta(wire.FingerprintLinePrefix) + `(sha256:[0-9a-f]{64})`)
	// cloud-init's final module prints this when the final stage is over
	// (after runcmd).
	cloudInitFinished = regexp.MustCompile(`Cloud-init v\. \S+ finished at [^\n]*Datasource (\S+)`)
	// What cloud-init prints to the console when a module fails, and what
	// the bootstrap's commands or the daemon's unit print when they fail.
	bootstrapTrouble = regexp.MustCompile(`(?m)^.*(\[WARNING\]|Failed to run|Traceback|sha256sum: WARNING|FAILED|curl: \(\d+\)|Failed to start autoami).*$`)
	// The kernel's last words when the guest powers off.
	powerDown = regexp.MustCompile(`reboot: Power down`)
	// cloud-init's stage lines and the daemon's fingerprint line, with the
	// guest's uptime the console prefixes them with.
	stageLine = regexp.MustCompile(`\[\s*(\d+\.\d+)\] cloud-init\[\d+\]: Cloud-init v\. \S+ running '([a-z:-]+)'`)
	printedAt = regexp.MustCompile(`\[\s*(\d+\.\d+)\] unpacker\[\d+\]: ` + regexp.QuoteMeta(wire.FingerprintLinePrefix))
)

// TestBootstrapBootsForReal boots Debian 12 (built from Debian packages)
// under qemu with the provider's user-data on a NoCloud cidata volume; real
// cloud-init and systemd run it, and the binary comes from the local S3
// through a presigned URL (qemu's restricted user-mode network forwards
// only that address). It passes when:
//
//   - first boot: the daemon prints its fingerprint on the serial console
//     and answers over mutual TLS, pinned to that fingerprint, through
//     qemu's forward of its port to the host's loopback (a wrong pin and a
//     client of another CA refused), and cloud-init finishes from the NoCloud
//     seed without a warning;
//   - the daemon's idle power-off stops the machine (qemu exits);
//   - second boot of the same disk with the user-data of an upgrade (a binary
//     of another digest, a new client CA), as the provider's stop, new
//     user-data, start does: cloud-init's per-boot bootcmd installs both,
//     runcmd does not run again, the daemon runs the new binary with the
//     same fingerprint, trusts the new client CA and no longer the old one.
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
	// The instance's root volume: the image's bytes, kept across its boots.
	disk := filepath.Join(t.TempDir(), "root.img")
	if out, err := exec.Command("cp", "--sparse=always", img.Path, disk).CombinedOutput(); err != nil {
		t.Fatalf("copy %s: %v: %s", img.Path, err, out)
	}

	store := newBinaryStore(ctx, t, startWorld(t))
	firstBinary, upgradeBinary := buildUnpacker(t, ""), buildUnpacker(t, upgradeVersion)
	firstCA, upgradeCA := testpki.NewCA(t, "client CA of the first boot"), testpki.NewCA(t, "client CA of the upgrade")
	firstCert, upgradeCert := firstCA.ClientCertificate(t, "autoami provider"), upgradeCA.ClientCertificate(t, "autoami provider")
	bootstrapOf := func(binary []byte, ca *testpki.CA) unpackerinstance.Bootstrap {
		return unpackerinstance.Bootstrap{Architecture: unpackerbinary.X86_64, ClientCACertificatePEM: string(ca.PEM),
			BinaryURL: store.serve(ctx, t, binary), BinarySHA256: sha256Hex(binary),
			// Short, so that the daemon stops the machine for the second boot.
			IdlePoweroff: time.Minute}
	}

	// First boot: write_files, packages and runcmd install and start the daemon.
	first := bootInstance(ctx, t, "first boot", disk, store, contractUserData(t, bootstrapOf(firstBinary, firstCA)))
	firstClient := first.pinnedClient(t, firstCert)
	health, err := firstClient.Health(ctx)
	if err != nil {
		t.Fatalf("first boot: health over pinned mTLS at %s: %v", first.address, err)
	}
	if health.Status != "ok" || health.LocalDevices || health.Version == upgradeVersion {
		t.Errorf("first boot: health %+v: want ok, with real devices (no --local-devices), the first binary", health)
	}
	t.Logf("first boot: daemon healthy over pinned mTLS %s after its fingerprint line", time.Since(first.printed).Round(100*time.Millisecond))
	if got, err := client.PeerFingerprint(ctx, first.address, firstCert); err != nil || got != first.fingerprint {
		t.Errorf("the handshake presents %s (%v), the console printed %s", got, err, first.fingerprint)
	}
	wrong, err := client.New(client.Config{Address: first.address, Fingerprint: wire.Fingerprint([]byte("another server")), Certificate: firstCert})
	if err != nil {
		t.Fatal(err)
	}
	var pinErr *client.PinError
	if _, err := wrong.Health(ctx); !errors.As(err, &pinErr) || pinErr.Got != first.fingerprint {
		t.Errorf("a client pinning another fingerprint: %v, want a PinError naming %s", err, first.fingerprint)
	}
	first.refuses(ctx, t, testpki.NewCA(t, "another CA").ClientCertificate(t, "intruder"), "a client certificate of another CA")
	first.finishes(ctx, t)

	// Stopped: the daemon's idle power-off powers the machine off.
	if _, err := first.machine.WaitFor(ctx, powerDown, idleToPoweroff); err != nil {
		t.Fatalf("first boot: the idle daemon did not power the machine off: %v", err)
	}
	if err := first.machine.WaitExit(time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("first boot: idle power-off, machine off %s after the fingerprint line (idle power-off 1m)", time.Since(first.printed).Round(time.Second))

	// Started with the user-data of an upgrade: bootcmd installs the new
	// binary and client CA; the state directory keeps the server key.
	second := bootInstance(ctx, t, "second boot", disk, store, contractUserData(t, bootstrapOf(upgradeBinary, upgradeCA)))
	if second.fingerprint != first.fingerprint {
		t.Errorf("second boot: fingerprint %s, first boot's %s: the server key did not survive", second.fingerprint, first.fingerprint)
	}
	if !strings.Contains(second.console(), "/usr/local/bin/unpacker.new: OK") {
		t.Errorf("second boot: the console does not show bootcmd's checked download of the new binary")
	}
	health, err = second.pinnedClient(t, upgradeCert).Health(ctx)
	if err != nil {
		t.Fatalf("second boot: health with the new client CA's certificate: %v", err)
	}
	if health.Version != upgradeVersion {
		t.Errorf("second boot: the daemon is version %q, want the upgrade's %q", health.Version, upgradeVersion)
	}
	second.refuses(ctx, t, firstCert, "the first boot's client CA")
	second.finishes(ctx, t)
	if strings.Contains(second.console(), "Created symlink") {
		t.Errorf("second boot: runcmd ran again (systemctl enable's output is on the console)")
	}
}

// booted is one boot of the test's instance.
type booted struct {
	name        string
	machine     *qemuboot.Machine
	address     string // the daemon's port forwarded to the host's loopback
	fingerprint string // from the console
	printed     time.Time
}

// bootInstance boots disk (written: a later boot sees what this one left)
// with userData on a NoCloud seed, and waits for the daemon's fingerprint
// line on the serial console. The machine stops when the test ends.
func bootInstance(ctx context.Context, t *testing.T, name, disk string, store *binaryStore, userData []byte) *booted {
	t.Helper()
	if err := ValidateUserData(ctx, userData); err != nil {
		t.Fatalf("%s: the user-data to boot with: %v", name, err)
	}
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed.iso")
	if err := WriteSeed(ctx, seed, userData, MetaData{InstanceID: instanceID, LocalHostname: "autoami-unpacker"}); err != nil {
		t.Fatal(err)
	}
	daemonPort := freePort(t)
	b := &booted{name: name, address: net.JoinHostPort("127.0.0.1", strconv.Itoa(daemonPort))}
	b.machine = qemuboot.MustStart(t, qemuboot.Options{
		Image: disk, Writable: true, Firmware: qemuboot.BIOS, MemoryMiB: 1024, ConsoleLog: filepath.Join(dir, "console.log"),
		ExtraDisks: []qemuboot.ExtraDisk{{Path: seed}},
		Network: &qemuboot.UserNetwork{
			HostForwards:  []qemuboot.HostForward{{HostPort: daemonPort, GuestPort: wire.DefaultPort}},
			GuestForwards: []qemuboot.GuestForward{{GuestAddress: guestS3, GuestPort: store.port, HostPort: store.port}},
		},
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s: serial console (last 150 lines):\n%s", name, qemuboot.LastLines(b.console(), 150))
		}
	})
	res, err := b.machine.WaitFor(ctx, fingerprintLine, bootToFingerprint)
	if err != nil {
		t.Fatalf("%s: no fingerprint line: %v", name, err)
	}
	b.fingerprint, b.printed = fingerprintLine.FindStringSubmatch(res.Match)[1], time.Now()
	t.Logf("%s: qemu start to the daemon's fingerprint line: %s (%s; guest uptime: %s)",
		name, res.Elapsed.Round(100*time.Millisecond), res.Accel, uptimes(res.Console))
	return b
}

func (b *booted) console() string { return b.machine.Console() }

// pinnedClient is a client of the booted daemon pinned to its printed
// fingerprint, retrying while the forwarded port is not yet answering.
func (b *booted) pinnedClient(t *testing.T, cert tls.Certificate) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{Address: b.address, Fingerprint: b.fingerprint, Certificate: cert,
		RetryMax: 20, RetryWaitMax: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// refuses checks that the daemon refuses a client with cert.
func (b *booted) refuses(ctx context.Context, t *testing.T, cert tls.Certificate, what string) {
	t.Helper()
	c, err := client.New(client.Config{Address: b.address, Fingerprint: b.fingerprint, Certificate: cert, RetryMax: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Health(ctx); err == nil {
		t.Errorf("%s: the daemon accepted %s", b.name, what)
	}
}

// finishes waits for cloud-init's final message and checks that it ran
// from the NoCloud seed and that nothing on the console reports trouble.
func (b *booted) finishes(ctx context.Context, t *testing.T) {
	t.Helper()
	done, err := b.machine.WaitFor(ctx, cloudInitFinished, fingerprintToDone)
	if err != nil {
		t.Fatalf("%s: cloud-init did not finish: %v", b.name, err)
	}
	if ds := cloudInitFinished.FindStringSubmatch(done.Match)[1]; !strings.HasPrefix(ds, "DataSourceNoCloud") {
		t.Errorf("%s: cloud-init ran from %s, want the NoCloud seed", b.name, ds)
	}
	if trouble := bootstrapTrouble.FindAllString(done.Console, -1); len(trouble) > 0 {
		t.Errorf("%s: the bootstrap had trouble:\n%s", b.name, strings.Join(trouble, "\n"))
	}
	t.Logf("%s: cloud-init finished %s after qemu start", b.name, done.Elapsed.Round(100*time.Millisecond))
}

// uptimes summarises a console: the guest's uptime at each cloud-init
// stage and at the fingerprint line.
func uptimes(console string) string {
	var parts []string
	for _, m := range stageLine.FindAllStringSubmatch(console, -1) {
		parts = append(parts, fmt.Sprintf("%s %ss", m[2], m[1]))
	}
	if m := printedAt.FindStringSubmatch(console); m != nil {
		parts = append(parts, fmt.Sprintf("fingerprint %ss", m[1]))
	}
	return strings.Join(parts, ", ")
}

// buildUnpacker builds cmd/unpacker as the provider ships it (static),
// stamped with version unless it is empty, and returns its bytes.
func buildUnpacker(t *testing.T, version string) []byte {
	t.Helper()
	repo, err := bootfs.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "unpacker")
	args := []string{"build", "-o", out}
	if version != "" {
		args = append(args, "-ldflags", "-X main.version="+version)
	}
	cmd := exec.Command("go", append(args, "./cmd/unpacker")...)
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

// startWorld starts a local AWS for the test (its S3 serves the binaries).
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

// binaryStore is a bucket of the world's S3 that serves binaries to the
// guest.
type binaryStore struct {
	s3        *s3.Client
	presigner *s3.PresignClient
	bucket    string
	// port is the world's endpoint's port (the fault proxy, which an
	// instance's download passes like any other S3 call); the guest reaches
	// it at guestS3 on the same port.
	port int
}

func newBinaryStore(ctx context.Context, t *testing.T, w *testworld.World) *binaryStore {
	t.Helper()
	const region = "eu-central-1"
	cfg, err := w.Config(ctx, region, moto.DefaultAccountID)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(w.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatalf("endpoint %q has no port: %v", w.Endpoint, err)
	}
	s := &binaryStore{s3: s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }), bucket: "autoami-content", port: port}
	// Presigned for the address the guest reaches the world at.
	s.presigner = s3.NewPresignClient(s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = true
		o.BaseEndpoint = aws.String(fmt.Sprintf("http://%s:%d", guestS3, port))
	}))
	if _, err := s.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.bucket),
		CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(region)}}); err != nil {
		t.Fatal(err)
	}
	return s
}

// serve puts binary into the bucket, by digest, and returns a presigned GET
// URL of it as the guest reaches it.
func (s *binaryStore) serve(ctx context.Context, t *testing.T, binary []byte) string {
	t.Helper()
	key := "unpacker/" + sha256Hex(binary)
	if _, err := s.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key), Body: bytes.NewReader(binary)}); err != nil {
		t.Fatal(err)
	}
	req, err := s.presigner.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)},
		s3.WithPresignExpires(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return req.URL
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
