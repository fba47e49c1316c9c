package daemon

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/loopdev"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/devices"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/volume"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// unbootableVolumes lays out, finds and normalizes volumes with the volume
// package (partitions, a root created from the stream's seed), but makes
// nothing bootable: the test's tree has no kernel, and boot loaders are
// the volume package's own test's business.
type unbootableVolumes struct{ volumePackage }

func (unbootableVolumes) CheckBootable(*manifest.Manifest) error { return nil }

func (unbootableVolumes) MakeBootable(context.Context, *volume.Layout, string, volume.BootOptions) (*volume.BootReport, error) {
	return &volume.BootReport{}, nil
}

// writeVariedTree writes, from a fixed seed, a tree with what makes an
// unpack allocate inodes and blocks: nested directories (one big enough for
// an htree index), files from empty to a few MiB, content shared by
// several files (copied from one staged object), runs of zeros inside
// non-sparse files, a sparse file, a symlink too long for the inode, and
// hard links.
func writeVariedTree(t *testing.T, dir string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	shared := [][]byte{bytes.Repeat([]byte("shared licence text\n"), 300), []byte("#!/bin/sh\nexit 0\n")}
	files := map[string][]byte{}
	for i := range 400 {
		p := fmt.Sprintf("usr/share/d%02d/s%d/file-with-a-longish-name-%03d", i%17, i%3, i)
		var b []byte
		k := rng.IntN(10)
		switch {
		case k == 0:
			b = nil
		case k <= 2:
			b = shared[rng.IntN(len(shared))]
		case k <= 7:
			b = make([]byte, 1+rng.IntN(40<<10))
		case k == 8:
			b = make([]byte, 64<<10+rng.IntN(600<<10))
		default:
			b = make([]byte, 1<<20+rng.IntN(3<<20))
		}
		if k > 2 {
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
			if len(b) > 5*4096 {
				clear(b[4096 : 3*4096]) // zeros in a file that has no holes
			}
		}
		files[p] = b
	}
	for i := range 300 {
		files[fmt.Sprintf("usr/lib/many/entry-%03d", i)] = []byte(fmt.Sprintf("entry %d\n", i))
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for p := range files {
			if !yield(p) {
				return
			}
		}
	})
	for _, p := range names {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, files[p], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sparse, err := os.Create(filepath.Join(dir, "var/log/lastlog"))
	if os.IsNotExist(err) {
		os.MkdirAll(filepath.Join(dir, "var/log"), 0o755)
		sparse, err = os.Create(filepath.Join(dir, "var/log/lastlog"))
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 1 << 20, 5 << 20} {
		if _, err := sparse.WriteAt(bytes.Repeat([]byte{0x5a}, 8192), off); err != nil {
			t.Fatal(err)
		}
	}
	sparse.Close()
	if err := os.Symlink(strings.Repeat("../", 10)+"usr/share/d01/s1/file-with-a-longish-name-001", filepath.Join(dir, "usr/long-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "usr/lib/many/entry-007"), filepath.Join(dir, "usr/lib/hardlink-to-7")); err != nil {
		t.Fatal(err)
	}
}

// orderRecorder remembers the order in which one daemon requested objects.
type orderRecorder struct {
	mu    sync.Mutex
	order map[string][]string // daemon -> digests in request order
}

func (o *orderRecorder) record(who, digest string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.order[who] = append(o.order[who], digest)
}

// TestSameRevisionGivesIdenticalVolumesWhateverTheFetchOrder: two daemons
// unpack the same revision onto from-scratch volumes of the same stream;
// one gets all the URLs it asks for at once (and fetches them 8 at a time),
// the other gets one URL at a time, in the reverse of the order it asks
// for them. After prepare-for-snapshot in unmount mode the two disks are
// equal to the byte: where an inode or a block lands does not depend on
// the order objects arrive in.
func TestSameRevisionGivesIdenticalVolumesWhateverTheFetchOrder(t *testing.T) {
	loopdev.RequireRoot(t)
	ctx := context.Background()
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	writeVariedTree(t, tree)
	rs := newRevisionServer(t)
	rev, m := rs.add(t, tree)
	t.Logf("revision %s: %d entries", rev, len(m.Entries))
	orders := &orderRecorder{order: map[string][]string{}}
	serveObjects := rs.srv.Config.Handler
	rs.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if who, digest, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/by/"), "/object/"); ok {
			orders.record(who, digest)
			r.URL.Path = "/object/" + digest
		}
		serveObjects.ServeHTTP(w, r)
	})

	const stream = "web/debian"
	disks := map[string][]byte{}
	for _, who := range []string{"all-at-once", "one-by-one-reversed"} {
		stateDir, localDir := filepath.Join(dir, who, "state"), filepath.Join(dir, who, "volumes")
		t.Cleanup(func() { loopdev.CleanupDaemon(t, stateDir, localDir) })
		finder, err := devices.NewLocal(localDir)
		if err != nil {
			t.Fatal(err)
		}
		d, err := New(ctx, Config{StateDir: stateDir, Devices: finder, Volumes: unbootableVolumes{}, Version: "test",
			Logger: slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		vol := "vol-" + strings.ReplaceAll(who, "-", "")
		if _, err := d.AttachDevice(ctx, wire.AttachDeviceRequest{VolumeID: vol, SizeBytes: 320 << 20}); err != nil {
			t.Fatal(err)
		}
		if _, err := d.AssociateStream(ctx, wire.AssociateStreamRequest{Stream: stream, VolumeID: vol, Origin: wire.OriginEmpty}); err != nil {
			t.Fatal(err)
		}
		st := unpackHandingOutURLs(t, d, rs.srv.URL, who, stream, rev, who == "one-by-one-reversed")
		if !st.Done {
			t.Fatalf("%s: unpack: %+v", who, st)
		}
		if st, err := d.PrepareForSnapshot(ctx, wire.PrepareForSnapshotRequest{Stream: stream, Revision: rev, Mode: wire.SnapshotUnmount}); err != nil || st.State != wire.StateUnmountedForSnapshot {
			t.Fatalf("%s: prepare for snapshot: %v, %s (%s)", who, err, st.State, st.LastError)
		}
		s, err := d.impl.streamByName(stream)
		if err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		disk := s.layout.Disk
		s.mu.Unlock()
		if disks[who], err = os.ReadFile(disk); err != nil {
			t.Fatal(err)
		}
	}
	a, b := orders.order["all-at-once"], orders.order["one-by-one-reversed"]
	if len(a) != len(b) || slices.Equal(a, b) {
		t.Fatalf("the daemons fetched %d and %d objects, in the same order: the test proves nothing", len(a), len(b))
	}
	if d := diffBytes(disks["all-at-once"], disks["one-by-one-reversed"]); d != "" {
		t.Fatalf("the two volumes differ: %s", d)
	}
}

// unpackHandingOutURLs runs an unpack to its end like unpackAndWait, with
// object URLs naming who; reversed hands out one URL per request, for the
// last object the daemon asked for.
func unpackHandingOutURLs(t *testing.T, d *Daemon, server, who, stream, revision string, reversed bool) wire.UnpackStatus {
	t.Helper()
	ctx := context.Background()
	base := server + "/by/" + who
	st, err := d.Unpack(ctx, wire.UnpackRequest{Stream: stream, Revision: revision, ManifestURL: server + "/manifest/" + revision})
	if err != nil {
		t.Fatalf("unpack %s: %v", revision, err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for !st.Done && st.Error == "" {
		if time.Now().After(deadline) {
			t.Fatalf("unpack %s did not finish: %+v", revision, st)
		}
		if len(st.WantedObjects) > 0 {
			wanted := st.WantedObjects
			if reversed {
				wanted = wanted[len(wanted)-1:]
			}
			urls := map[string]string{}
			for _, h := range wanted {
				urls[h] = base + "/object/" + h
			}
			if st, err = d.SupplyObjectURLs(ctx, wire.ObjectURLsRequest{Stream: stream, Revision: revision, URLs: urls}); err != nil {
				t.Fatalf("supply URLs: %v", err)
			}
			if !reversed || len(st.WantedObjects) > 0 {
				continue
			}
		}
		if st, err = d.UnpackStatus(ctx, wire.UnpackStatusRequest{Stream: stream, Revision: revision, WaitSeconds: 2}); err != nil {
			t.Fatalf("unpack status: %v", err)
		}
	}
	return st
}

// diffBytes describes where a and b differ ("" when they are equal): how
// many bytes, and the first regions as offset+length.
func diffBytes(a, b []byte) string {
	if bytes.Equal(a, b) {
		return ""
	}
	if len(a) != len(b) {
		return fmt.Sprintf("sizes %d and %d", len(a), len(b))
	}
	var regions []string
	n := 0
	for i := 0; i < len(a); i++ {
		if a[i] == b[i] {
			continue
		}
		j := i
		for j < len(a) && a[j] != b[j] {
			j++
		}
		n += j - i
		if len(regions) < 30 {
			regions = append(regions, fmt.Sprintf("%d+%d", i, j-i))
		}
		i = j
	}
	return fmt.Sprintf("%d bytes differ, at %s", n, strings.Join(regions, " "))
}
