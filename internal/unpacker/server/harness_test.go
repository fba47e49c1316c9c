package server_test

// The tests in this package run the real daemon (server.Run) in a child
// process — this test binary, re-executed with AUTOAMI_UNPACKER_TEST_DAEMON
// set — so that a restart is a real restart and a crash a real SIGKILL.
// Volumes are sparse files on loop devices (local mode). Everything a test
// starts (processes, mounts, loop devices) is stopped by PID or name in
// t.Cleanup, also when the test fails.

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/client"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/devices"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/server"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/testpki"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

const childEnv = "AUTOAMI_UNPACKER_TEST_DAEMON"

// childConfig is what a child daemon is told through childEnv.
type childConfig struct {
	StateDir     string `json:"state_dir"`
	ClientCA     string `json:"client_ca"`
	LocalDevices string `json:"local_devices"`
	// PauseAt is "POINT" or "POINT#N": at the N-th (default first) call of
	// the daemon's hook at POINT the child prints "PAUSED AT POINT" and
	// blocks there until killed.
	PauseAt string `json:"pause_at,omitempty"`
	// URLWait is the daemon's URL wait (a Go duration; "" for the default).
	URLWait string `json:"url_wait,omitempty"`
}

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		os.Exit(runChild(cfg))
	}
	os.Exit(m.Run())
}

func runChild(raw string) int {
	var cfg childConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "child daemon: bad config:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var hook func(string) error
	if cfg.PauseAt != "" {
		point, nth := cfg.PauseAt, 1
		if i := strings.LastIndex(point, "#"); i > 0 {
			nth, _ = strconv.Atoi(point[i+1:])
			point = point[:i]
		}
		var mu sync.Mutex
		seen := 0
		hook = func(p string) error {
			if p != point {
				return nil
			}
			mu.Lock()
			seen++
			n := seen
			mu.Unlock()
			if n == nth {
				fmt.Fprintln(os.Stdout, "PAUSED AT "+cfg.PauseAt)
				select {} // until SIGKILL
			}
			return nil
		}
	}
	var urlWait time.Duration
	if cfg.URLWait != "" {
		var err error
		if urlWait, err = time.ParseDuration(cfg.URLWait); err != nil {
			fmt.Fprintln(os.Stderr, "child daemon: bad url_wait:", err)
			return 2
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	err := server.Run(ctx, server.Config{
		URLWait:      urlWait,
		Listen:       "127.0.0.1:0",
		StateDir:     cfg.StateDir,
		ClientCAFile: cfg.ClientCA,
		LocalDevices: cfg.LocalDevices,
		Version:      "test",
		Console:      os.Stdout,
		Logger:       log,
		Hook:         hook,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child daemon:", err)
		return 1
	}
	return 0
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop devices and mounts (make test runs as root)")
	}
}

// world is one test's daemon environment: PKI, state and volume directories.
type world struct {
	t         testing.TB
	dir       string
	stateDir  string
	localDir  string
	ca        *testpki.CA
	caFile    string
	clientTLS tls.Certificate
}

func newWorld(t testing.TB) *world {
	requireRoot(t)
	dir := t.TempDir()
	w := &world{t: t, dir: dir, stateDir: filepath.Join(dir, "state"), localDir: filepath.Join(dir, "volumes")}
	w.ca = testpki.NewCA(t, "autoami test client CA")
	w.caFile = w.ca.WritePEM(t, dir, "client-ca.pem")
	w.clientTLS = w.ca.ClientCertificate(t, "provider")
	t.Cleanup(w.cleanup)
	return w
}

// cleanup thaws and unmounts whatever the daemon mounted and detaches the
// loop devices of the test's volume files (daemon processes are killed
// before: their cleanups were registered later and run first).
func (w *world) cleanup() {
	mounts, _ := filepath.Glob(filepath.Join(w.stateDir, "mnt", "*"))
	for _, m := range mounts {
		if f, err := os.Open(m); err == nil {
			unix.IoctlSetInt(int(f.Fd()), 0xC0045878, 0) // FITHAW; harmless when not frozen
			f.Close()
		}
		for unix.Unmount(m, 0) == nil {
		}
	}
	files, _ := filepath.Glob(filepath.Join(w.localDir, "*.img"))
	for _, f := range files {
		loops, _ := devices.LoopsOf(context.Background(), f)
		for _, l := range loops {
			if out, err := exec.Command("losetup", "-d", l).CombinedOutput(); err != nil {
				w.t.Errorf("cleanup: losetup -d %s: %v: %s", l, err, out)
			}
		}
	}
}

// daemonProc is a running child daemon.
type daemonProc struct {
	t           testing.TB
	cmd         *exec.Cmd
	addr        string
	fingerprint string
	stderr      *lockedBuffer
	lines       chan string // stdout lines after the start lines
	exited      chan struct{}
}

// start runs a daemon and waits until it listens.
func (w *world) start(pauseAt string) *daemonProc {
	w.t.Helper()
	return w.startWith(childConfig{PauseAt: pauseAt})
}

// startWith runs a daemon configured by cfg (the world's directories are
// filled in) and waits until it listens.
func (w *world) startWith(cc childConfig) *daemonProc {
	t := w.t
	t.Helper()
	cc.StateDir, cc.ClientCA, cc.LocalDevices = w.stateDir, w.caFile, w.localDir
	cfg, _ := json.Marshal(cc)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(cfg))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &daemonProc{t: t, cmd: cmd, stderr: &lockedBuffer{}, lines: make(chan string, 100), exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start daemon: %v", err)
	}
	t.Cleanup(func() {
		p.kill()
		if strings.Contains(p.stderr.String(), "WARNING: DATA RACE") {
			t.Errorf("the daemon (pid %d) ran into a data race", cmd.Process.Pid)
		}
		// Every path a test drives changes stream states only as the
		// daemon's table of transitions allows.
		if strings.Contains(p.stderr.String(), `msg="state transition refused"`) {
			t.Errorf("the daemon (pid %d) refused a state transition of its own", cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("daemon (pid %d) log:\n%s", cmd.Process.Pid, p.stderr.String())
		}
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	go func() { cmd.Wait(); close(p.exited) }()
	deadline := time.After(30 * time.Second)
	for p.addr == "" {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("daemon exited before listening:\n%s", p.stderr.String())
			}
			if fp, ok := strings.CutPrefix(line, wire.FingerprintLinePrefix); ok {
				p.fingerprint = fp
			}
			if a, ok := strings.CutPrefix(line, server.ListeningLinePrefix); ok {
				p.addr = a
			}
		case <-deadline:
			t.Fatalf("daemon did not start listening in 30s:\n%s", p.stderr.String())
		}
	}
	if p.fingerprint == "" {
		t.Fatalf("daemon listened without printing its fingerprint first")
	}
	return p
}

// waitLineOr waits for a stdout line; it returns false if abort is closed first.
func (p *daemonProc) waitLineOr(want string, timeout time.Duration, abort <-chan struct{}) bool {
	p.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case <-abort:
			return false
		case line, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("daemon exited while waiting for %q:\n%s", want, p.stderr.String())
			}
			if line == want {
				return true
			}
		case <-deadline:
			p.t.Fatalf("daemon did not print %q in %s:\n%s", want, timeout, p.stderr.String())
		}
	}
}

// stop ends the daemon with SIGTERM, as systemd does.
func (p *daemonProc) stop() {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.t.Fatalf("daemon did not stop in 30s after SIGTERM:\n%s", p.stderr.String())
	}
}

// kill ends the daemon with SIGKILL: a crash.
func (p *daemonProc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Kill()
	<-p.exited
}

func (p *daemonProc) client(w *world) *client.Client {
	p.t.Helper()
	c, err := client.New(client.Config{Address: p.addr, Fingerprint: p.fingerprint, Certificate: w.clientTLS, RetryMax: 2, RetryWaitMax: 200 * time.Millisecond})
	if err != nil {
		p.t.Fatal(err)
	}
	return c
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// contentServer plays the content store: manifests and objects behind
// "presigned" URLs (HMAC over hash and expiry), counting every object fetch.
type contentServer struct {
	t     testing.TB
	srv   *httptest.Server
	store *objects.LocalStore
	key   []byte

	mu        sync.Mutex
	manifests map[string][]byte
	fetches   map[string]int
	signed    map[string]int
	// expireFirst makes the first URL signed for these objects already
	// expired, as if it waited too long.
	expireFirst map[string]bool
	// failOnce holds the first fetch of an object until its channel is
	// closed (the test says when), then fails it (404).
	failOnce map[string]chan struct{}
}

func newContentServer(t testing.TB) *contentServer {
	store, err := objects.OpenLocalStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := &contentServer{t: t, store: store, key: []byte("test signing key"), manifests: map[string][]byte{},
		fetches: map[string]int{}, signed: map[string]int{}, expireFirst: map[string]bool{}, failOnce: map[string]chan struct{}{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /manifests/{rev}", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		b, ok := c.manifests[r.PathValue("rev")]
		c.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	})
	mux.HandleFunc("GET /objects/{hash}", func(w http.ResponseWriter, r *http.Request) {
		h := r.PathValue("hash")
		exp, _ := strconv.ParseInt(r.URL.Query().Get("exp"), 10, 64)
		if !hmac.Equal([]byte(r.URL.Query().Get("sig")), []byte(c.signature(h, exp))) {
			http.Error(w, "SignatureDoesNotMatch", http.StatusForbidden)
			return
		}
		if time.Now().Unix() > exp {
			http.Error(w, "AccessDenied: Request has expired", http.StatusForbidden)
			return
		}
		d, err := objects.ParseDigest(h)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		release, fail := c.failOnce[h]
		delete(c.failOnce, h)
		c.mu.Unlock()
		if fail {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			http.Error(w, "NoSuchKey (injected)", http.StatusNotFound)
			return
		}
		f, err := c.store.Open(r.Context(), d)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		c.mu.Lock()
		c.fetches[h]++
		c.mu.Unlock()
		io.Copy(w, f)
	})
	c.srv = httptest.NewServer(mux)
	t.Cleanup(c.srv.Close)
	return c
}

func (c *contentServer) signature(hash string, exp int64) string {
	m := hmac.New(sha256.New, c.key)
	fmt.Fprintf(m, "%s\n%d", hash, exp)
	return hex.EncodeToString(m.Sum(nil))
}

// addTree builds the manifest of dir, stores its objects and returns the
// revision digest and the manifest.
func (c *contentServer) addTree(dir string) (string, *manifest.Manifest) {
	c.t.Helper()
	ctx := context.Background()
	m, err := manifest.FromDirectory(ctx, dir, manifest.DirOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	if err := manifest.DirectorySource(dir, m).Fetch(ctx, m.Objects(), c.store); err != nil {
		c.t.Fatal(err)
	}
	b, err := m.Marshal()
	if err != nil {
		c.t.Fatal(err)
	}
	d, err := m.Digest()
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.manifests[d.String()] = b
	c.mu.Unlock()
	return d.String(), m
}

func (c *contentServer) manifestURL(rev string) string {
	return c.srv.URL + "/manifests/" + rev + "?X-Amz-Signature=secret"
}

// sign is the client.URLSigner the provider would implement with S3 presigning.
func (c *contentServer) sign(_ context.Context, hashes []string) (map[string]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]string, len(hashes))
	for _, h := range hashes {
		exp := time.Now().Add(15 * time.Minute).Unix()
		if c.expireFirst[h] && c.signed[h] == 0 {
			exp = time.Now().Add(-time.Minute).Unix()
		}
		c.signed[h]++
		out[h] = fmt.Sprintf("%s/objects/%s?exp=%d&sig=%s", c.srv.URL, h, exp, c.signature(h, exp))
	}
	return out, nil
}

// takeFetches returns and resets the per-object fetch counts.
func (c *contentServer) takeFetches() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.fetches
	c.fetches = map[string]int{}
	return f
}

// objectSet lists the distinct object hashes of a manifest that have
// content (the empty object is never fetched).
func objectSet(m *manifest.Manifest) map[string]bool {
	out := map[string]bool{}
	for _, w := range m.Objects() {
		if w.Size > 0 {
			out[w.Digest.String()] = true
		}
	}
	return out
}

// digestOf is the revision digest of the tree at dir (lost+found left out:
// the engine keeps the file system's own).
func digestOf(t testing.TB, dir string) string {
	t.Helper()
	m, err := manifest.FromDirectory(context.Background(), dir, manifest.DirOptions{Exclude: []string{"lost+found"}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := m.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// imageRevision mounts the root partition of a volume image file read-only
// through a loop device of its own and returns the digest of its tree: what
// a snapshot of the volume would hold.
func imageRevision(t *testing.T, file string) string {
	t.Helper()
	ctx := context.Background()
	out, err := exec.Command("losetup", "--find", "--show", "--read-only", "--partscan", file).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup %s: %v: %s", file, err, out)
	}
	loop := strings.TrimSpace(string(out))
	defer func() {
		if out, err := exec.Command("losetup", "-d", loop).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", loop, err, out)
		}
	}()
	parts, err := devices.EnsurePartitionNodes(ctx, loop)
	if err != nil || len(parts) != 3 {
		t.Fatalf("partitions of %s: %v, %v; want 3", file, parts, err)
	}
	mnt := t.TempDir()
	if err := unix.Mount(parts[2], mnt, "ext4", unix.MS_RDONLY, "noload"); err != nil {
		t.Fatalf("mount %s: %v", parts[2], err)
	}
	defer func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	}()
	return digestOf(t, mnt)
}

var errNoStream = errors.New("no such stream")

func streamOf(st wire.Status, name string) (wire.Stream, error) {
	for _, s := range st.Streams {
		if s.Name == name {
			return s, nil
		}
	}
	return wire.Stream{}, errNoStream
}

func asWireError(err error, target **wire.Error) bool { return errors.As(err, target) }
