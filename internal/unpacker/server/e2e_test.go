package server_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/client"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

const (
	testStream = "web/test"
	testVolume = "vol-0e2e000000000000a"
)

// TestEndToEnd drives the daemon over its API as the provider would:
// attach → associate → unpack A → prepare for snapshot → the image holds
// exactly A → release → unpack B → exactly B, restarting the daemon between
// steps (its state must survive).
func TestEndToEnd(t *testing.T) {
	tStart := time.Now()
	last := tStart
	step := func(what string) {
		t.Logf("%-28s %s", what, time.Since(last).Round(time.Millisecond))
		last = time.Now()
	}
	defer step("rest")
	w := newWorld(t)
	content := newContentServer(t)
	revA, mA := content.addTree(makeTree(t, "A"))
	revB, mB := content.addTree(makeTree(t, "B"))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	p := w.start("")
	fingerprint := p.fingerprint
	c := p.client(w)
	dev, err := c.AttachDevice(ctx, wire.AttachDeviceRequest{VolumeID: testVolume, SizeBytes: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if dev.Path == "" || dev.SizeBytes != 256<<20 || dev.BackingFile != filepath.Join(w.localDir, testVolume+".img") {
		t.Fatalf("attached %+v", dev)
	}

	restart := func() {
		t.Helper()
		p.stop()
		p = w.start("")
		if p.fingerprint != fingerprint {
			t.Fatalf("fingerprint changed across restart: %s then %s (the key must be kept)", fingerprint, p.fingerprint)
		}
		c = p.client(w)
	}
	expectStream := func(state wire.StreamState, revision string) wire.Stream {
		t.Helper()
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s, err := streamOf(st, testStream)
		if err != nil {
			t.Fatalf("status has no stream %s: %+v", testStream, st)
		}
		if s.State != state || s.Revision != revision {
			t.Fatalf("stream is %s at %q, want %s at %q (last error %q)", s.State, s.Revision, state, revision, s.LastError)
		}
		return s
	}

	restart()
	if st, err := c.Status(ctx); err != nil || len(st.Devices) != 1 || st.Devices[0].VolumeID != testVolume || st.Devices[0].Path == "" {
		t.Fatalf("after restart: devices %+v, %v", st.Devices, err)
	}

	s, err := c.AssociateStream(ctx, wire.AssociateStreamRequest{Stream: testStream, VolumeID: testVolume, Origin: wire.OriginEmpty})
	if err != nil {
		t.Fatal(err)
	}
	if s.State != wire.StateMounted || s.Revision != "" || !strings.HasSuffix(s.RootPartition, "p3") {
		t.Fatalf("associated stream: %+v", s)
	}
	// Associating again is a no-op; another volume for the stream is a conflict.
	if _, err := c.AssociateStream(ctx, wire.AssociateStreamRequest{Stream: testStream, VolumeID: testVolume, Origin: wire.OriginEmpty}); err != nil {
		t.Fatalf("repeated association: %v", err)
	}
	if _, err := c.AssociateStream(ctx, wire.AssociateStreamRequest{Stream: testStream, VolumeID: "vol-0other", Origin: wire.OriginEmpty}); !isCode(err, wire.CodeNotFound) {
		t.Fatalf("association with an unattached volume: %v, want not-found", err)
	}
	step("associate")
	restart()
	expectStream(wire.StateMounted, "")

	// Snapshot before any unpack: refused.
	if _, err := c.PrepareForSnapshot(ctx, wire.PrepareForSnapshotRequest{Stream: testStream, Revision: revA, Mode: wire.SnapshotUnmount}); !isCode(err, wire.CodeConflict) {
		t.Fatalf("prepare for snapshot of a never-unpacked stream: %v, want conflict", err)
	}

	// Unpack A: on a fresh volume every object of A is missing and fetched
	// exactly once, though the first URL of two objects has expired.
	objsA := objectSet(mA)
	expired := 0
	for h := range objsA {
		if expired < 2 {
			content.expireFirst[h] = true
			expired++
		}
	}
	var batches int
	st, err := c.Unpack(ctx, wire.UnpackRequest{Stream: testStream, Revision: revA, ManifestURL: content.manifestURL(revA)}, content.sign,
		client.UnpackOptions{Progress: func(s wire.UnpackStatus) {
			if len(s.WantedObjects) > 0 {
				batches++
			}
			if s.Stream.State == wire.StateClean && s.Stream.Revision == revA && !s.Done {
				t.Errorf("clean at A reported without Done")
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if !st.Done || st.Stream.Revision != revA || st.Stream.State != wire.StateClean {
		t.Fatalf("unpack A ended as %+v", st)
	}
	if st.MissingObjects != int64(len(objsA)) {
		t.Errorf("missing objects %d, want all %d of A", st.MissingObjects, len(objsA))
	}
	fetches := content.takeFetches()
	for h := range objsA {
		if fetches[h] != 1 {
			t.Errorf("object %s of A fetched %d times, want once", h, fetches[h])
		}
	}
	if len(fetches) != len(objsA) {
		t.Errorf("fetched %d distinct objects, want %d", len(fetches), len(objsA))
	}
	if p := st.Stream.Progress; p == nil || p.ObjectsDone != int64(len(objsA)) || p.ObjectsTotal != int64(len(objsA)) || p.BytesDone != p.BytesTotal {
		t.Errorf("progress after unpack A: %+v", p)
	}
	t.Logf("unpack A: %d objects missing, %d fetched in %d URL batches (2 URLs expired and were asked for again)", st.MissingObjects, len(fetches), batches)
	// Unpacking the revision the stream is clean at is a no-op.
	if st, err := c.StartUnpack(ctx, wire.UnpackRequest{Stream: testStream, Revision: revA, ManifestURL: content.manifestURL(revA)}); err != nil || !st.Done {
		t.Fatalf("unpack of the clean revision again: %+v, %v", st, err)
	}

	step("unpack A")
	restart()
	expectStream(wire.StateClean, revA)
	if _, err := c.PrepareForSnapshot(ctx, wire.PrepareForSnapshotRequest{Stream: testStream, Revision: revB, Mode: wire.SnapshotUnmount}); !isCode(err, wire.CodeConflict) {
		t.Fatalf("prepare for snapshot of the wrong revision: %v, want conflict", err)
	}
	if _, err := c.PrepareForSnapshot(ctx, wire.PrepareForSnapshotRequest{Stream: testStream, Revision: revA, Mode: wire.SnapshotUnmount}); err != nil {
		t.Fatal(err)
	}
	restart()
	expectStream(wire.StateUnmountedForSnapshot, revA)
	if _, err := c.StartUnpack(ctx, wire.UnpackRequest{Stream: testStream, Revision: revB, ManifestURL: content.manifestURL(revB)}); !isCode(err, wire.CodeConflict) {
		t.Fatalf("unpack while prepared for a snapshot: %v, want conflict", err)
	}

	// The image, as a snapshot would copy it, holds exactly A, with the
	// from-scratch layout.
	image := filepath.Join(w.localDir, testVolume+".img")
	if got := imageRevision(t, image); got != revA {
		t.Fatalf("image holds revision %s, want A %s", got, revA)
	}
	step("image A")
	checkLayout(t, image)

	if _, err := c.Release(ctx, wire.ReleaseRequest{Stream: testStream}); err != nil {
		t.Fatal(err)
	}
	expectStream(wire.StateClean, revA)
	restart()
	expectStream(wire.StateClean, revA)

	step("release")
	// Unpack B: only objects the volume lacks are fetched.
	st, err = c.Unpack(ctx, wire.UnpackRequest{Stream: testStream, Revision: revB, ManifestURL: content.manifestURL(revB)}, content.sign, client.UnpackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !st.Done || st.Stream.Revision != revB {
		t.Fatalf("unpack B ended as %+v", st)
	}
	newInB := 0
	for h := range objectSet(mB) {
		if !objsA[h] {
			newInB++
		}
	}
	fetches = content.takeFetches()
	if st.MissingObjects != int64(newInB) || len(fetches) != newInB {
		t.Errorf("unpack B: %d missing, %d fetched; want %d (objects of B not in A)", st.MissingObjects, len(fetches), newInB)
	}
	t.Logf("unpack B: %d objects missing, %d fetched, of %d in B", st.MissingObjects, len(fetches), len(objectSet(mB)))

	// Metrics count what happened since the last start.
	text, err := c.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`autoami_unpacker_unpacks_finished_total{result="ok"} 1`,
		`autoami_unpacker_stream_state{state="clean",stream="web/test"} 1`,
		`autoami_unpacker_objects_fetched_total ` + strconv.Itoa(newInB),
		`autoami_unpacker_stream_clean_info{revision="` + revB + `",stream="web/test"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	step("unpack B")
	// Freeze this time: the image holds exactly B while frozen.
	if _, err := c.PrepareForSnapshot(ctx, wire.PrepareForSnapshotRequest{Stream: testStream, Revision: revB, Mode: wire.SnapshotFreeze}); err != nil {
		t.Fatal(err)
	}
	restart()
	expectStream(wire.StateFrozen, revB)
	if got := imageRevision(t, image); got != revB {
		t.Fatalf("image holds revision %s, want B %s", got, revB)
	}
	step("image B")
	if _, err := c.Release(ctx, wire.ReleaseRequest{Stream: testStream}); err != nil {
		t.Fatal(err)
	}
	s = expectStream(wire.StateClean, revB)
	if got := digestOf(t, filepath.Join(w.stateDir, "mnt", testVolume)); got != revB {
		t.Fatalf("mounted volume holds %s after release, want B", got)
	}

	step("release B")
	// Forget the stream and detach the device: idempotent, and the volume
	// is unmounted and its loop device gone.
	if err := c.DetachDevice(ctx, wire.DetachDeviceRequest{VolumeID: testVolume}); !isCode(err, wire.CodeConflict) {
		t.Fatalf("detach of a device in use: %v, want conflict", err)
	}
	for range 2 {
		if err := c.ForgetStream(ctx, wire.ForgetStreamRequest{Stream: testStream}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.DetachDevice(ctx, wire.DetachDeviceRequest{VolumeID: testVolume}); err != nil {
		t.Fatal(err)
	}
	restart()
	if st, err := c.Status(ctx); err != nil || len(st.Streams) != 0 || len(st.Devices) != 0 {
		t.Fatalf("after forget and detach: %+v, %v", st, err)
	}
	if s.RootPartition == "" || s.Device == "" {
		t.Errorf("stream status lacks its devices: %+v", s)
	}
}

// checkLayout inspects the partition table and root label of a from-scratch
// volume (the boot loaders themselves are the volume package's tests).
func checkLayout(t *testing.T, image string) {
	t.Helper()
	out, err := exec.Command("sgdisk", "-p", image).CombinedOutput()
	if err != nil {
		t.Fatalf("sgdisk -p: %v: %s", err, out)
	}
	for _, code := range []string{"EF02", "EF00", "8304"} {
		if !strings.Contains(string(out), code) {
			t.Errorf("partition table lacks a partition of type %s:\n%s", code, out)
		}
	}
}

func isCode(err error, code wire.ErrorCode) bool {
	var we *wire.Error
	return err != nil && asWireError(err, &we) && we.Code == code
}
