package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/loopdev"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/devices"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/volume"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// plainVolumes is a Volumes whose volumes are a bare ext4 file system on
// the whole device (origin snapshot), so that the test needs no partitions.
type plainVolumes struct{}

func (plainVolumes) Create(context.Context, string, volume.CreateOptions) (*volume.Layout, error) {
	return nil, errors.New("plainVolumes: create is not supported")
}

func (plainVolumes) Find(_ context.Context, disk string, _ volume.FindOptions) (*volume.Layout, error) {
	return &volume.Layout{Disk: disk, Root: volume.Partition{Number: 1, Device: disk, Filesystem: "ext4"}}, nil
}

func (plainVolumes) MakeBootable(context.Context, *volume.Layout, string, volume.BootOptions) (*volume.BootReport, error) {
	return nil, errors.New("plainVolumes: make bootable is not supported")
}

func (plainVolumes) CheckBootable(*manifest.Manifest) error { return nil }

func (plainVolumes) Normalize(context.Context, *volume.Layout, volume.NormalizeOptions) error {
	return errors.New("plainVolumes: normalize is not supported")
}

func (plainVolumes) GrowthNeeded(context.Context, *volume.Layout, volume.GrowOptions) (bool, string, error) {
	return false, "plainVolumes: volumes are not grown", nil
}

func (plainVolumes) Grow(context.Context, *volume.Layout, volume.GrowOptions) (*volume.Layout, *volume.GrowReport, error) {
	return nil, nil, errors.New("plainVolumes: grow is not supported")
}

// revisionServer serves manifests (by revision) and objects (by digest)
// of trees built in directories.
type revisionServer struct {
	srv       *httptest.Server
	manifests map[string][]byte
	objects   map[string]string // digest -> file
}

func newRevisionServer(t *testing.T) *revisionServer {
	rs := &revisionServer{manifests: map[string][]byte{}, objects: map[string]string{}}
	rs.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/manifest/"):
			b, ok := rs.manifests[strings.TrimPrefix(r.URL.Path, "/manifest/")]
			if !ok {
				http.NotFound(w, r)
				return
			}
			w.Write(b)
		case strings.HasPrefix(r.URL.Path, "/object/"):
			p, ok := rs.objects[strings.TrimPrefix(r.URL.Path, "/object/")]
			if !ok {
				http.NotFound(w, r)
				return
			}
			http.ServeFile(w, r, p)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(rs.srv.Close)
	return rs
}

// add publishes the tree at dir and returns its revision.
func (rs *revisionServer) add(t *testing.T, dir string) (string, *manifest.Manifest) {
	t.Helper()
	m, err := manifest.FromDirectory(context.Background(), dir, manifest.DirOptions{})
	if err != nil {
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
	rs.manifests[d.String()] = b
	for _, e := range m.Entries {
		if e.Type == manifest.TypeRegular {
			rs.objects[e.Digest.String()] = filepath.Join(dir, e.Path)
		}
	}
	return d.String(), m
}

func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// unpackAndWait runs an unpack to its end, supplying the URLs the daemon asks for.
func unpackAndWait(t *testing.T, d *Daemon, rs *revisionServer, stream, revision string) wire.UnpackStatus {
	t.Helper()
	ctx := context.Background()
	st, err := d.Unpack(ctx, wire.UnpackRequest{Stream: stream, Revision: revision, ManifestURL: rs.srv.URL + "/manifest/" + revision})
	if err != nil {
		t.Fatalf("unpack %s: %v", revision, err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for !st.Done && st.Error == "" {
		if time.Now().After(deadline) {
			t.Fatalf("unpack %s did not finish: %+v", revision, st)
		}
		if len(st.WantedObjects) > 0 {
			urls := map[string]string{}
			for _, h := range st.WantedObjects {
				urls[h] = rs.srv.URL + "/object/" + h
			}
			if st, err = d.SupplyObjectURLs(ctx, wire.ObjectURLsRequest{Stream: stream, Revision: revision, URLs: urls}); err != nil {
				t.Fatalf("supply URLs: %v", err)
			}
			continue
		}
		if st, err = d.UnpackStatus(ctx, wire.UnpackStatusRequest{Stream: stream, Revision: revision, WaitSeconds: 2}); err != nil {
			t.Fatalf("unpack status: %v", err)
		}
	}
	return st
}

// lastResult is the engine's result of the stream's last unpack.
func lastResult(t *testing.T, d *Daemon, stream string) patchOutcome {
	t.Helper()
	s, err := d.impl.streamByName(stream)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	job := s.job
	s.mu.Unlock()
	job.mu.Lock()
	defer job.mu.Unlock()
	return patchOutcome{Trusted: job.result.TrustedCurrent, NotTrusted: job.result.CurrentNotTrusted}
}

// patchOutcome is what the tests read of an unpack's patch.Result.
type patchOutcome struct {
	Trusted    bool
	NotTrusted string
}

// TestUnpackTrustsStoredManifestOfCleanStream: the second unpack of a clean
// stream takes the stored manifest of its revision instead of scanning the
// volume; an unpack of a dirty stream never does. Every result is exact.
func TestUnpackTrustsStoredManifestOfCleanStream(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop devices and mounts (make test runs as root)")
	}
	dir := t.TempDir()
	stateDir, localDir := filepath.Join(dir, "state"), filepath.Join(dir, "volumes")
	finder, err := devices.NewLocal(localDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { loopdev.CleanupDaemon(t, stateDir, localDir) })

	var failDirty atomic.Bool
	d, err := New(context.Background(), Config{
		StateDir: stateDir,
		Devices:  finder,
		Volumes:  plainVolumes{},
		Version:  "test",
		Hook: func(point string) error {
			if point == "patch:deleted" && failDirty.Load() {
				return errors.New("test: stop in the middle of the patch")
			}
			return nil
		},
		Logger: slog.New(slog.NewTextHandler(testLogWriter{t}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })

	ctx := context.Background()
	const vol, stream = "vol-0fastpath", "fast"
	dev, err := d.AttachDevice(ctx, wire.AttachDeviceRequest{VolumeID: vol, SizeBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", dev.Path).CombinedOutput(); err != nil {
		t.Fatalf("mkfs: %v: %s", err, out)
	}
	if _, err := d.AssociateStream(ctx, wire.AssociateStreamRequest{Stream: stream, VolumeID: vol, Origin: wire.OriginSnapshot}); err != nil {
		t.Fatal(err)
	}

	rs := newRevisionServer(t)
	dirA, dirB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	writeTree(t, dirA, map[string]string{"etc/os-release": "A\n", "usr/bin/tool": "tool v1\n", "usr/lib/old": "going away\n", "var/keep": "kept\n"})
	writeTree(t, dirB, map[string]string{"etc/os-release": "B\n", "usr/bin/tool": "tool v2\n", "usr/lib/new": "arrived\n", "var/keep": "kept\n"})
	revA, mA := rs.add(t, dirA)
	revB, mB := rs.add(t, dirB)
	mountDir := d.impl.mountDir(vol)
	requireVolume := func(want *manifest.Manifest, what string) {
		t.Helper()
		got, err := manifest.FromDirectory(ctx, mountDir, manifest.DirOptions{Exclude: []string{"lost+found"}})
		if err != nil {
			t.Fatal(err)
		}
		gd, _ := got.Digest()
		wd, _ := want.Digest()
		if gd != wd {
			t.Fatalf("%s: volume holds revision %s, want %s", what, gd, wd)
		}
	}

	// First unpack: nothing is known of the volume; full scan.
	if st := unpackAndWait(t, d, rs, stream, revA); !st.Done {
		t.Fatalf("unpack A: %+v", st)
	}
	if r := lastResult(t, d, stream); r.Trusted {
		t.Errorf("first unpack trusted a manifest: %+v", r)
	}
	requireVolume(mA, "after A")
	if _, err := os.Stat(d.impl.currentManifestPath(vol)); err != nil {
		t.Fatalf("manifest of the clean revision not stored: %v", err)
	}

	// Second unpack of the clean stream: trusted.
	if st := unpackAndWait(t, d, rs, stream, revB); !st.Done {
		t.Fatalf("unpack B: %+v", st)
	}
	if r := lastResult(t, d, stream); !r.Trusted || r.NotTrusted != "" {
		t.Errorf("unpack of a clean stream scanned the volume: %+v", r)
	}
	requireVolume(mB, "after B")
	if got := metricValue(t, d, "autoami_unpacker_unpack_scans_total", `scan="trusted"`); got != 1 {
		t.Errorf("unpack_scans_total{scan=trusted} = %v, want 1", got)
	}

	// An unpack interrupted in the middle leaves the stream dirty.
	failDirty.Store(true)
	if st := unpackAndWait(t, d, rs, stream, revA); st.Done || st.Error == "" {
		t.Fatalf("interrupted unpack A: %+v", st)
	}
	failDirty.Store(false)
	if st := d.Status(); len(st.Streams) != 1 || st.Streams[0].State != wire.StateDirty {
		t.Fatalf("stream after an interrupted unpack: %+v", st.Streams)
	}
	// The dirty stream's next unpack scans everything.
	if st := unpackAndWait(t, d, rs, stream, revA); !st.Done {
		t.Fatalf("unpack A of the dirty stream: %+v", st)
	}
	if r := lastResult(t, d, stream); r.Trusted || r.NotTrusted != "" {
		t.Errorf("unpack of a dirty stream was offered the stored manifest: %+v", r)
	}
	requireVolume(mA, "after A again")
	if got := metricValue(t, d, "autoami_unpacker_unpack_scans_total", `scan="full"`); got != 2 {
		t.Errorf("unpack_scans_total{scan=full} = %v, want 2", got)
	}
}

// metricValue reads one sample of the daemon's registry.
func metricValue(t *testing.T, d *Daemon, name, labels string) float64 {
	t.Helper()
	families, err := d.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			if strings.Join(ls, ",") == labels {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("metric %s{%s} not found", name, labels)
	return 0
}

// testLogWriter sends the daemon's log to the test's.
type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
