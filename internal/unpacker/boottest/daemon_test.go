package boottest

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/bootfs"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/loopdev"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/qemuboot"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/client"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/server"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/testpki"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// TestDaemonMadeVolumeBoots makes a from-scratch stream's volume the way
// production does: the unpacker daemon in local mode, driven over its
// mutual-TLS API by the provider's client, objects fetched from a content
// server. The volume the daemon prepared for a snapshot (synced, unmounted)
// boots under BIOS and UEFI, at revision 1 and after an in-place patch to
// revision 2.
func TestDaemonMadeVolumeBoots(t *testing.T) {
	loopdev.RequireRoot(t)
	trees := bootfs.MustBuild(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	content := newContentStore(t)
	rev1 := content.addTree(t, trees.Rev1)
	rev2 := content.addTree(t, trees.Rev2)
	d := startDaemon(t)
	c := d.client(t)
	var times bootTimes
	t.Cleanup(func() { t.Logf("boot wall times: %s", times) })

	const stream, volumeID = "boot/daemon", "vol-0b00700000000000a"
	dev, err := c.AttachDevice(ctx, wire.AttachDeviceRequest{VolumeID: volumeID, SizeBytes: volumeSize})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AssociateStream(ctx, wire.AssociateStreamRequest{Stream: stream, VolumeID: volumeID, Origin: wire.OriginEmpty}); err != nil {
		t.Fatal(err)
	}
	for i, rev := range []string{rev1, rev2} {
		n := i + 1
		if n > 1 {
			if _, err := c.Release(ctx, wire.ReleaseRequest{Stream: stream}); err != nil {
				t.Fatal(err)
			}
		}
		st, err := c.Unpack(ctx, wire.UnpackRequest{Stream: stream, Revision: rev, ManifestURL: content.url("/manifests/" + rev)},
			content.sign, client.UnpackOptions{})
		if err != nil {
			t.Fatalf("unpack revision %d: %v", n, err)
		}
		if !st.Done || st.Stream.State != wire.StateClean || st.Stream.Revision != rev {
			t.Fatalf("unpack revision %d ended as %+v", n, st.Stream)
		}
		s, err := c.PrepareForSnapshot(ctx, wire.PrepareForSnapshotRequest{Stream: stream, Revision: rev, Mode: wire.SnapshotUnmount})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("revision %d: stream %s, %s at %s; root %s", n, stream, s.State, s.Revision[:12], s.RootPartition)
		for _, fw := range []qemuboot.Firmware{qemuboot.BIOS, qemuboot.UEFI} {
			name := "rev" + string(rune('0'+n)) + "-" + string(fw)
			t.Run(name, func(t *testing.T) {
				r := qemuboot.MustBoot(t, qemuboot.Options{Image: dev.BackingFile, Firmware: fw})
				times.add(name, r)
				t.Log(markerLine(t, r))
				if n == 1 {
					requireConsole(t, r, `AUTOAMI-INITRAMFS rev=1`, `AUTOAMI-BOOT-OK rev=1 overlay=none root=/dev/nvme0n1p3`,
						`cmdline=\[[^\]]*root=LABEL=autoami-[0-9a-z]+ ro console=tty0 console=ttyS0,115200n8 panic=-1\]`)
				} else {
					requireConsole(t, r, `AUTOAMI-INITRAMFS rev=2`, `AUTOAMI-BOOT-OK rev=2 overlay=none root=/dev/nvme0n1p3`,
						`cmdline=\[[^\]]*root=LABEL=autoami-[0-9a-z]+ ro quiet console=tty0 console=ttyS0,115200n8 panic=-1 autoami.revision=2\]`)
				}
			})
		}
		if t.Failed() {
			return
		}
	}
}

// contentStore plays the content store: manifests and objects over HTTP.
type contentStore struct {
	srv   *httptest.Server
	store *objects.LocalStore
	mu    sync.Mutex
	mans  map[string][]byte
}

func newContentStore(t *testing.T) *contentStore {
	store, err := objects.OpenLocalStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := &contentStore{store: store, mans: map[string][]byte{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /manifests/{rev}", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		b, ok := c.mans[r.PathValue("rev")]
		c.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	})
	mux.HandleFunc("GET /objects/{hash}", func(w http.ResponseWriter, r *http.Request) {
		d, err := objects.ParseDigest(r.PathValue("hash"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f, err := c.store.Open(r.Context(), d)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		io.Copy(w, f)
	})
	c.srv = httptest.NewServer(mux)
	t.Cleanup(c.srv.Close)
	return c
}

// addTree uploads the tree at dir and returns its revision digest.
func (c *contentStore) addTree(t *testing.T, dir string) string {
	t.Helper()
	ctx := context.Background()
	m, err := manifest.FromDirectory(ctx, dir, manifest.DirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := manifest.DirectorySource(dir, m).Fetch(ctx, m.Objects(), c.store); err != nil {
		t.Fatal(err)
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	d, err := m.Digest()
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.mans[d.String()] = b
	c.mu.Unlock()
	return d.String()
}

func (c *contentStore) url(path string) string { return c.srv.URL + path }

// sign is the client.URLSigner; the provider presigns S3 GETs instead.
func (c *contentStore) sign(_ context.Context, hashes []string) (map[string]string, error) {
	out := make(map[string]string, len(hashes))
	for _, h := range hashes {
		out[h] = c.url("/objects/" + h)
	}
	return out, nil
}

// daemonRun is an unpacker daemon running in this process (server.Run, as
// `unpacker serve --local-devices` runs it).
type daemonRun struct {
	addr, fingerprint string
	cert              client.Config // the client certificate and retry settings
}

func startDaemon(t *testing.T) *daemonRun {
	t.Helper()
	dir := t.TempDir()
	stateDir, localDir := filepath.Join(dir, "state"), filepath.Join(dir, "volumes")
	ca := testpki.NewCA(t, "boottest client CA")
	caFile := ca.WritePEM(t, dir, "client-ca.pem")
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logFile, err := os.Create(filepath.Join(dir, "daemon.log"))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		done <- server.Run(ctx, server.Config{
			Listen: "127.0.0.1:0", StateDir: stateDir, ClientCAFile: caFile, LocalDevices: localDir,
			Version: "boottest", Console: pw, Logger: slog.New(slog.NewTextHandler(logFile, nil)),
		})
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("daemon: %v", err)
		}
		logFile.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logFile.Name()); err == nil {
				t.Logf("daemon log:\n%s", b)
			}
		}
		loopdev.CleanupDaemon(t, stateDir, localDir)
	})
	d := &daemonRun{cert: client.Config{Certificate: ca.ClientCertificate(t, "provider"), RetryMax: 2, RetryWaitMax: 200 * time.Millisecond}}
	lines := bufio.NewScanner(pr)
	go func() {
		<-ctx.Done()
		pr.Close()
	}()
	deadline := time.Now().Add(30 * time.Second)
	for d.addr == "" && time.Now().Before(deadline) && lines.Scan() {
		line := lines.Text()
		if fp, ok := strings.CutPrefix(line, wire.FingerprintLinePrefix); ok {
			d.fingerprint = fp
		}
		if a, ok := strings.CutPrefix(line, server.ListeningLinePrefix); ok {
			d.addr = a
		}
	}
	if d.addr == "" || d.fingerprint == "" {
		t.Fatalf("daemon did not print its fingerprint and address")
	}
	go io.Copy(io.Discard, pr) // later console lines
	return d
}

func (d *daemonRun) client(t *testing.T) *client.Client {
	t.Helper()
	cfg := d.cert
	cfg.Address, cfg.Fingerprint = d.addr, d.fingerprint
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
