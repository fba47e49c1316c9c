package server_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/client"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// waitUnpack long-polls the status of an unpack until until(status) holds.
func waitUnpack(ctx context.Context, t *testing.T, c *client.Client, rev string, what string, until func(wire.UnpackStatus) bool) wire.UnpackStatus {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := c.UnpackStatus(ctx, wire.UnpackStatusRequest{Stream: testStream, Revision: rev, WaitSeconds: 2})
		if err != nil {
			t.Fatal(err)
		}
		if until(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("unpack of %s: still not %s after a minute: %+v", rev, what, st)
		}
	}
}

// attachAndAssociate prepares the test stream on a fresh empty volume.
func attachAndAssociate(ctx context.Context, t *testing.T, c *client.Client) {
	t.Helper()
	if _, err := c.AttachDevice(ctx, wire.AttachDeviceRequest{VolumeID: testVolume, SizeBytes: 256 << 20}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AssociateStream(ctx, wire.AssociateStreamRequest{Stream: testStream, VolumeID: testVolume, Origin: wire.OriginEmpty}); err != nil {
		t.Fatal(err)
	}
}

// TestAbandonedUnpackFailsAndCancelStops: an unpack whose caller never
// supplies the object URLs it asked for fails after the daemon's URL wait
// (dirty, the last error says why) instead of holding the stream for ever;
// cancel-unpack stops a running unpack at once; either way the stream then
// takes an unpack of any revision.
func TestAbandonedUnpackFailsAndCancelStops(t *testing.T) {
	w := newWorld(t)
	content := newContentServer(t)
	revA, _ := content.addTree(makeTree(t, "A"))
	revB, _ := content.addTree(makeTree(t, "B"))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := w.startWith(childConfig{URLWait: "2s"})
	c := p.client(w)
	attachAndAssociate(ctx, t, c)

	// Abandoned: asked for URLs, none come.
	if _, err := c.StartUnpack(ctx, wire.UnpackRequest{Stream: testStream, Revision: revA, ManifestURL: content.manifestURL(revA)}); err != nil {
		t.Fatal(err)
	}
	st := waitUnpack(ctx, t, c, revA, "failed", func(s wire.UnpackStatus) bool { return s.Error != "" || s.Done })
	if st.Done || !strings.Contains(st.Error, "no object URLs were supplied for 2s") {
		t.Fatalf("abandoned unpack ended as %+v, want the URL-wait error", st)
	}
	if st.Stream.State != wire.StateDirty || !strings.Contains(st.Stream.LastError, "no object URLs") || st.Stream.Revision != "" {
		t.Fatalf("stream after the abandoned unpack: %+v, want dirty with the reason", st.Stream)
	}
	// A caller that comes back unpacks again, to the end.
	if st, err := c.Unpack(ctx, wire.UnpackRequest{Stream: testStream, Revision: revA, ManifestURL: content.manifestURL(revA)}, content.sign, client.UnpackOptions{}); err != nil || !st.Done {
		t.Fatalf("unpack after the abandoned one: %+v, %v", st, err)
	}

	// Cancelled: an unpack of B waiting for URLs is stopped by request.
	if _, err := c.StartUnpack(ctx, wire.UnpackRequest{Stream: testStream, Revision: revB, ManifestURL: content.manifestURL(revB)}); err != nil {
		t.Fatal(err)
	}
	waitUnpack(ctx, t, c, revB, "asking for URLs", func(s wire.UnpackStatus) bool { return len(s.WantedObjects) > 0 || s.Error != "" })
	_, err := c.StartUnpack(ctx, wire.UnpackRequest{Stream: testStream, Revision: revA, ManifestURL: content.manifestURL(revA)})
	if !isCode(err, wire.CodeConflict) || !strings.Contains(err.Error(), "cancel-unpack") {
		t.Fatalf("unpack of A while B runs: %v, want a conflict that names cancel-unpack", err)
	}
	if _, err := c.CancelUnpack(ctx, wire.CancelUnpackRequest{Stream: testStream, Revision: revA}); !isCode(err, wire.CodeConflict) {
		t.Fatalf("cancel of A while B runs: %v, want conflict", err)
	}
	start := time.Now()
	s, err := c.CancelUnpack(ctx, wire.CancelUnpackRequest{Stream: testStream, Revision: revB})
	if err != nil {
		t.Fatal(err)
	}
	if s.State != wire.StateDirty || !strings.Contains(s.LastError, "cancelled by request") {
		t.Fatalf("stream after cancel: %+v, want dirty, cancelled by request", s)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("cancel took %s: it must not wait for the URL wait", el)
	}
	if s, err := c.CancelUnpack(ctx, wire.CancelUnpackRequest{Stream: testStream, Revision: revB}); err != nil || s.State != wire.StateDirty {
		t.Fatalf("cancel again: %+v, %v; want a no-op", s, err)
	}
	if st, err := c.Unpack(ctx, wire.UnpackRequest{Stream: testStream, Revision: revA, ManifestURL: content.manifestURL(revA)}, content.sign, client.UnpackOptions{}); err != nil || !st.Done {
		t.Fatalf("unpack after the cancelled one: %+v, %v", st, err)
	}
	if err := c.ForgetStream(ctx, wire.ForgetStreamRequest{Stream: testStream}); err != nil {
		t.Fatal(err)
	}
}

// TestRetryAfterFailedFetchResumes: when a fetch breaks off (an object the
// store does not have), the objects fetched so far stay staged on the
// volume, and the next unpack of the revision fetches only the rest.
func TestRetryAfterFailedFetchResumes(t *testing.T) {
	w := newWorld(t)
	content := newContentServer(t)
	revA, mA := content.addTree(makeTree(t, "A"))
	objs := objectSet(mA)
	var broken string
	for h := range objs {
		if broken == "" || h < broken {
			broken = h
		}
	}
	// The broken object fails only once every other one is in: no download
	// is cut off by the failure, so the objects the daemon counts done are
	// exactly those staged.
	release := make(chan struct{})
	content.failOnce[broken] = release
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := w.start("")
	c := p.client(w)
	attachAndAssociate(ctx, t, c)

	// First attempt: every URL supplied, one object missing from the store.
	req := wire.UnpackRequest{Stream: testStream, Revision: revA, ManifestURL: content.manifestURL(revA)}
	if _, err := c.StartUnpack(ctx, req); err != nil {
		t.Fatal(err)
	}
	var st wire.UnpackStatus
	released := false
	othersIn := func(s wire.UnpackStatus) bool {
		return s.Stream.Progress != nil && s.Stream.Progress.ObjectsDone == int64(len(objs)-1)
	}
	for {
		st = waitUnpack(ctx, t, c, revA, "asking for URLs, done with all objects but one, or ended", func(s wire.UnpackStatus) bool {
			return len(s.WantedObjects) > 0 || s.Error != "" || s.Done || !released && othersIn(s)
		})
		if st.Error != "" || st.Done {
			break
		}
		if !released && othersIn(st) {
			close(release)
			released = true
		}
		if len(st.WantedObjects) == 0 {
			continue
		}
		urls, _ := content.sign(ctx, st.WantedObjects)
		if _, err := c.SupplyObjectURLs(ctx, wire.ObjectURLsRequest{Stream: testStream, Revision: revA, URLs: urls}); err != nil {
			t.Fatal(err)
		}
	}
	if st.Done || !strings.Contains(st.Error, "404") || st.Stream.State != wire.StateDirty {
		t.Fatalf("first attempt ended as %+v, want a failed fetch (404) and a dirty stream", st)
	}
	fetchedBefore := st.Stream.Progress.ObjectsDone
	if fetchedBefore == 0 || fetchedBefore >= int64(len(objs)) {
		t.Fatalf("first attempt fetched %d of %d objects; the test needs some but not all", fetchedBefore, len(objs))
	}
	first := content.takeFetches()

	// The retry fetches only what the first attempt did not get.
	st, err := c.Unpack(ctx, req, content.sign, client.UnpackOptions{})
	if err != nil || !st.Done {
		t.Fatalf("retry: %+v, %v", st, err)
	}
	again := content.takeFetches()
	if want := int64(len(objs)) - fetchedBefore; st.MissingObjects != want || int64(len(again)) != want {
		t.Errorf("retry: %d objects missing, %d fetched; want %d (%d of %d were fetched before)",
			st.MissingObjects, len(again), want, fetchedBefore, len(objs))
	}
	if again[broken] != 1 {
		t.Errorf("the object that failed was fetched %d times by the retry, want once", again[broken])
	}
	for h := range again {
		if h != broken && first[h] > 0 {
			t.Errorf("object %s was fetched again although the first attempt fetched it", h)
		}
	}
	if got := imageRevisionMounted(t, w); got != revA {
		t.Errorf("volume holds %s after the retry, want A %s", got, revA)
	}
}

// imageRevisionMounted is the revision of the test stream's mounted volume.
func imageRevisionMounted(t *testing.T, w *world) string {
	t.Helper()
	return digestOf(t, w.stateDir+"/mnt/"+testVolume)
}

// TestUnbootableRevisionRefusedBeforeChange: on a from-scratch volume (made
// bootable after every unpack) a revision without a kernel is refused
// before anything changes, naming what is missing; the stream stays clean
// at its revision instead of being left dirty.
func TestUnbootableRevisionRefusedBeforeChange(t *testing.T) {
	w := newWorld(t)
	content := newContentServer(t)
	revA, _ := content.addTree(makeTree(t, "A"))
	noKernel := makeTree(t, "B")
	for _, p := range []string{"boot/vmlinuz-6.1.0-99-amd64", "vmlinuz"} {
		if err := os.Remove(filepath.Join(noKernel, p)); err != nil {
			t.Fatal(err)
		}
	}
	revB, _ := content.addTree(noKernel)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := w.start("")
	c := p.client(w)
	attachAndAssociate(ctx, t, c)
	if st, err := c.Unpack(ctx, wire.UnpackRequest{Stream: testStream, Revision: revA, ManifestURL: content.manifestURL(revA)}, content.sign, client.UnpackOptions{}); err != nil || !st.Done {
		t.Fatalf("unpack A: %+v, %v", st, err)
	}
	content.takeFetches()
	if _, err := c.StartUnpack(ctx, wire.UnpackRequest{Stream: testStream, Revision: revB, ManifestURL: content.manifestURL(revB)}); err != nil {
		t.Fatal(err)
	}
	st := waitUnpack(ctx, t, c, revB, "ended", func(s wire.UnpackStatus) bool { return s.Error != "" || s.Done })
	if st.Done || !strings.Contains(st.Error, "cannot be made bootable") || !strings.Contains(st.Error, "vmlinuz") {
		t.Fatalf("unpack of a revision without a kernel: %+v, want an error naming the missing kernel", st)
	}
	if st.Stream.State != wire.StateClean || st.Stream.Revision != revA {
		t.Fatalf("stream after the refused unpack: %s at %q, want still clean at A", st.Stream.State, st.Stream.Revision)
	}
	if f := content.takeFetches(); len(f) != 0 {
		t.Errorf("fetched %d objects for a revision that was refused", len(f))
	}
	if got := imageRevisionMounted(t, w); got != revA {
		t.Errorf("volume holds %s, want A untouched", got)
	}
}
