package daemon

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

func TestIdlePoweroff(t *testing.T) {
	d := &daemon{log: slog.New(slog.NewTextHandler(io.Discard, nil)), streams: map[string]*stream{}}
	var calls atomic.Int64
	timer := newIdleTimer(d, 200*time.Millisecond, func(context.Context) error { calls.Add(1); return nil })
	defer timer.stop()

	// Requests keep it up.
	for range 6 {
		time.Sleep(50 * time.Millisecond)
		timer.touch()
	}
	if calls.Load() != 0 {
		t.Fatal("powered off although requests kept coming")
	}
	// A running unpack keeps it up too.
	busy := &stream{d: d, name: "busy", state: wire.StateFetching, changed: make(chan struct{})}
	d.mu.Lock()
	d.streams["busy"] = busy
	d.mu.Unlock()
	time.Sleep(400 * time.Millisecond)
	if calls.Load() != 0 {
		t.Fatal("powered off during an unpack")
	}
	d.mu.Lock()
	delete(d.streams, "busy")
	d.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if calls.Load() != 1 {
		t.Fatalf("power-off called %d times after the idle period, want once", calls.Load())
	}
	time.Sleep(300 * time.Millisecond)
	if calls.Load() != 1 {
		t.Fatalf("power-off called %d times, want once", calls.Load())
	}
}

func TestIdlePoweroffDisabled(t *testing.T) {
	d := &daemon{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	timer := newIdleTimer(d, 0, func(context.Context) error { t.Error("powered off with idle power-off disabled"); return nil })
	defer timer.stop()
	if !timer.deadline().IsZero() {
		t.Errorf("deadline %v with idle power-off disabled", timer.deadline())
	}
}

// waitingJob is an unpack whose fetch waits for its caller's URLs.
func waitingJob() *unpackJob {
	q := newURLQueue(nil, 1, time.Hour, func() {})
	d := objects.Sum([]byte("wanted"))
	q.fetching, q.remaining = true, 1
	q.pending[d] = objects.Want{Digest: d, Size: 6}
	return &unpackJob{revision: "r", queue: q}
}

// TestIdlePoweroffIgnoresUnpackWaitingForURLs: an unpack abandoned by its
// caller (waiting for URLs, nothing downloading) does not keep the machine up.
func TestIdlePoweroffIgnoresUnpackWaitingForURLs(t *testing.T) {
	d := &daemon{log: slog.New(slog.NewTextHandler(io.Discard, nil)), streams: map[string]*stream{}}
	d.streams["waiting"] = &stream{d: d, name: "waiting", state: wire.StateFetching, job: waitingJob(), changed: make(chan struct{})}
	var calls atomic.Int64
	timer := newIdleTimer(d, 200*time.Millisecond, func(context.Context) error { calls.Add(1); return nil })
	defer timer.stop()
	deadline := time.Now().Add(5 * time.Second)
	for calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if calls.Load() != 1 {
		t.Fatalf("power-off called %d times with only an unpack waiting for URLs, want once", calls.Load())
	}
}

// TestIdlePoweroffNotWhileFrozen: a stream frozen for a snapshot keeps the
// machine up; once released, the idle period counts from then.
func TestIdlePoweroffNotWhileFrozen(t *testing.T) {
	d := &daemon{log: slog.New(slog.NewTextHandler(io.Discard, nil)), streams: map[string]*stream{}}
	frozen := &stream{d: d, name: "frozen", state: wire.StateFrozen, changed: make(chan struct{})}
	d.streams["frozen"] = frozen
	var calls atomic.Int64
	timer := newIdleTimer(d, 200*time.Millisecond, func(context.Context) error { calls.Add(1); return nil })
	defer timer.stop()
	time.Sleep(600 * time.Millisecond)
	if calls.Load() != 0 {
		t.Fatal("powered off while a stream was frozen for a snapshot")
	}
	frozen.setState(wire.StateClean)
	deadline := time.Now().Add(5 * time.Second)
	for calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if calls.Load() != 1 {
		t.Fatalf("power-off called %d times after the release, want once", calls.Load())
	}
}
