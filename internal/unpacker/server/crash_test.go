package server_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/client"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// TestCrashDuringUnpack kills the daemon (SIGKILL) at points all through an
// unpack, restarts it, and checks that the stream is either clean at its old
// revision (nothing was changed yet) or dirty, never clean at the new one;
// that unpacking again gives exactly the revision; and that no status ever
// said "clean at R" before the unpack of R completed.
func TestCrashDuringUnpack(t *testing.T) {
	w := newWorld(t)
	content := newContentServer(t)
	revA, _ := content.addTree(makeTree(t, "A"))
	revB, _ := content.addTree(makeTree(t, "B"))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	mountDir := filepath.Join(w.stateDir, "mnt", testVolume)

	p := w.start("")
	c := p.client(w)
	if _, err := c.AttachDevice(ctx, wire.AttachDeviceRequest{VolumeID: testVolume, SizeBytes: 256 << 20}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AssociateStream(ctx, wire.AssociateStreamRequest{Stream: testStream, VolumeID: testVolume, Origin: wire.OriginEmpty}); err != nil {
		t.Fatal(err)
	}
	unpack := func(c *client.Client, rev string) wire.UnpackStatus {
		t.Helper()
		st, err := c.Unpack(ctx, wire.UnpackRequest{Stream: testStream, Revision: rev, ManifestURL: content.manifestURL(rev)}, content.sign, client.UnpackOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	unpack(c, revA)
	p.stop()
	content.takeFetches()

	current := revA
	for _, tc := range []struct {
		point string
		// reboot unmounts the file system after the kill, as a machine
		// restart would: the daemon must check and mount it again.
		reboot bool
	}{
		{point: "manifest"},
		{point: "dirty"},
		{point: "patch:scanned"},
		{point: "patch:staged#3"},
		{point: "patch:fetched"},
		{point: "patch:deleted#1"},
		{point: "patch:created#2", reboot: true},
		{point: "patch:created#4"},
		{point: "patch:metadata#5"},
		{point: "patch:synced"},
		{point: "bootable", reboot: true},
		{point: "clean"},
	} {
		target := revB
		if current == revB {
			target = revA
		}
		name := map[string]string{revA: "A", revB: "B"}
		t.Logf("kill at %s of the unpack %s → %s (reboot: %v)", tc.point, name[current], name[target], tc.reboot)

		p = w.start(tc.point)
		c = p.client(w)
		// Watch every status while the unpack runs, one request after
		// another (paced by a ticker, so as not to take a core from the
		// daemon), until the daemon is killed.
		var (
			mu        sync.Mutex
			early     []wire.Stream
			observed  int
			pollDone  = make(chan struct{})
			stopPoll  = make(chan struct{})
			unpackEnd = make(chan struct{})
			// paused is closed when the daemon said it paused; the poller
			// closes sawPaused after a status it asked for after that.
			paused    = make(chan struct{})
			sawPaused = make(chan struct{})
		)
		go func() {
			defer close(pollDone)
			tick := time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
			for {
				afterPause := isClosed(paused)
				if st, err := c.Status(ctx); err == nil {
					if s, err := streamOf(st, testStream); err == nil {
						mu.Lock()
						observed++
						if s.Revision == target {
							early = append(early, s)
						}
						mu.Unlock()
						if afterPause && !isClosed(sawPaused) {
							close(sawPaused)
						}
					}
				}
				select {
				case <-stopPoll:
					return
				case <-tick.C:
				}
			}
		}()
		uctx, ucancel := context.WithCancel(ctx)
		go func() {
			defer close(unpackEnd)
			c.Unpack(uctx, wire.UnpackRequest{Stream: testStream, Revision: target, ManifestURL: content.manifestURL(target)}, content.sign, client.UnpackOptions{Attempts: 1})
		}()
		if !p.waitLineOr("PAUSED AT "+tc.point, time.Minute, unpackEnd) {
			t.Fatalf("%s: the unpack ended without reaching the point", tc.point)
		}
		close(paused)
		select { // the poller sees the paused daemon before it dies
		case <-sawPaused:
		case <-ctx.Done():
			t.Fatalf("%s: the poller got no status of the paused daemon: %v", tc.point, ctx.Err())
		}
		p.kill()
		close(stopPoll)
		<-pollDone
		ucancel()
		<-unpackEnd
		mu.Lock()
		if len(early) > 0 {
			t.Errorf("%s: a status reported the target revision before the unpack completed: %+v", tc.point, early[0])
		}
		if observed == 0 {
			t.Errorf("%s: the poller observed no status", tc.point)
		}
		mu.Unlock()
		if tc.reboot {
			for unix.Unmount(mountDir, 0) == nil {
			}
		}

		p = w.start("")
		c = p.client(w)
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s, err := streamOf(st, testStream)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case tc.point == "manifest":
			// Nothing was changed yet: still clean at the old revision.
			if s.State != wire.StateClean || s.Revision != current {
				t.Errorf("%s: after restart %s at %q, want clean at the old revision", tc.point, s.State, s.Revision)
			}
			if got := digestOf(t, mountDir); got != current {
				t.Errorf("%s: volume holds %s, want the old revision %s", tc.point, got, current)
			}
		case s.State != wire.StateDirty || s.Revision != "" || s.TargetRevision != target:
			t.Errorf("%s: after restart %s at %q (target %q), want dirty towards %s", tc.point, s.State, s.Revision, s.TargetRevision, target)
		}
		if _, err := c.PrepareForSnapshot(ctx, wire.PrepareForSnapshotRequest{Stream: testStream, Revision: target, Mode: wire.SnapshotFreeze}); !isCode(err, wire.CodeConflict) {
			t.Errorf("%s: prepare for snapshot of an unfinished revision: %v, want conflict", tc.point, err)
		}

		content.takeFetches()
		done := unpack(c, target)
		if done.Stream.State != wire.StateClean || done.Stream.Revision != target {
			t.Fatalf("%s: unpack again ended %s at %q", tc.point, done.Stream.State, done.Stream.Revision)
		}
		if got := digestOf(t, mountDir); got != target {
			t.Fatalf("%s: after unpacking again the volume holds %s, want %s", tc.point, got, target)
		}
		if fetched := len(content.takeFetches()); int64(fetched) != done.MissingObjects {
			t.Errorf("%s: fetched %d objects, the daemon found %d missing", tc.point, fetched, done.MissingObjects)
		}
		p.stop()
		current = target
	}
}

// isClosed reports whether ch is closed (it is only ever closed, never sent on).
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
