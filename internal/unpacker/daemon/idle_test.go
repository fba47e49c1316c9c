package daemon

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// The idle timer's tests run in a synctest bubble: time is fake, and
// advances only when every goroutine of the bubble (the timer's loop
// among them) waits. A time.Sleep there takes no real time and returns
// after everything due until then has run, so "nothing happened by then"
// is an exact statement.

const idleAfter = 200 * time.Millisecond

// idleTick is how often the timer checks (see idleTimer.loop), so that
// the tests can name the instant a power-off is due.
var idleTick = min(max(idleAfter/20, 50*time.Millisecond), 10*time.Second)

func quietDaemon() *daemon {
	return &daemon{log: slog.New(slog.DiscardHandler), streams: map[string]*stream{}}
}

// pass lets d of fake time pass, then waits until the timer's loop has
// done what was due by then (a tick at this very instant included).
func pass(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// poweroffRecorder counts power-offs and remembers the last one's time.
type poweroffRecorder struct {
	calls   atomic.Int64
	lastAtN atomic.Int64 // UnixNano
}

func (p *poweroffRecorder) poweroff(context.Context) error {
	p.calls.Add(1)
	p.lastAtN.Store(time.Now().UnixNano())
	return nil
}

func (p *poweroffRecorder) lastAt() time.Time { return time.Unix(0, p.lastAtN.Load()) }

func TestIdlePoweroff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := quietDaemon()
		var p poweroffRecorder
		timer := newIdleTimer(d, idleAfter, p.poweroff)
		defer timer.stop()

		// Requests keep it up: one every 50 ms for 300 ms.
		for range 6 {
			pass(50 * time.Millisecond)
			timer.touch()
		}
		if p.calls.Load() != 0 {
			t.Fatal("powered off although requests kept coming")
		}
		// A running unpack keeps it up too, for twice the idle period.
		busy := &stream{d: d, name: "busy", state: wire.StateFetching, changed: make(chan struct{})}
		d.mu.Lock()
		d.streams["busy"] = busy
		d.mu.Unlock()
		pass(2 * idleAfter)
		if p.calls.Load() != 0 {
			t.Fatal("powered off during an unpack")
		}
		// Idleness counts from the unpack's end (the last tick that saw it).
		d.mu.Lock()
		delete(d.streams, "busy")
		d.mu.Unlock()
		busyUntil := time.Now()
		pass(idleAfter - idleTick)
		if p.calls.Load() != 0 {
			t.Fatalf("powered off %s after the unpack ended, before an idle period", time.Since(busyUntil))
		}
		pass(idleTick)
		if p.calls.Load() != 1 || !p.lastAt().Equal(busyUntil.Add(idleAfter)) {
			t.Fatalf("power-off called %d times, the last at +%s; want once, an idle period (%s) after the unpack",
				p.calls.Load(), p.lastAt().Sub(busyUntil), idleAfter)
		}
		// Once only, however long it stays idle.
		pass(10 * idleAfter)
		if p.calls.Load() != 1 {
			t.Fatalf("power-off called %d times, want once", p.calls.Load())
		}
	})
}

// TestIdlePoweroffRetriesAfterFailure: a failed power-off is tried again
// after another idle period, not at the next tick.
func TestIdlePoweroffRetriesAfterFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := quietDaemon()
		var calls atomic.Int64
		timer := newIdleTimer(d, idleAfter, func(context.Context) error {
			if calls.Add(1) == 1 {
				return context.DeadlineExceeded // systemctl hung
			}
			return nil
		})
		defer timer.stop()
		pass(idleAfter)
		if calls.Load() != 1 {
			t.Fatalf("power-off called %d times after an idle period, want once", calls.Load())
		}
		pass(idleAfter - idleTick)
		if calls.Load() != 1 {
			t.Fatalf("power-off called %d times before another idle period passed, want once", calls.Load())
		}
		pass(idleTick)
		if calls.Load() != 2 {
			t.Fatalf("power-off called %d times after another idle period, want twice", calls.Load())
		}
	})
}

func TestIdlePoweroffDisabled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := quietDaemon()
		timer := newIdleTimer(d, 0, func(context.Context) error { t.Error("powered off with idle power-off disabled"); return nil })
		defer timer.stop()
		if !timer.deadline().IsZero() {
			t.Errorf("deadline %v with idle power-off disabled", timer.deadline())
		}
		pass(24 * time.Hour)
	})
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
	synctest.Test(t, func(t *testing.T) {
		d := quietDaemon()
		d.streams["waiting"] = &stream{d: d, name: "waiting", state: wire.StateFetching, job: waitingJob(), changed: make(chan struct{})}
		var p poweroffRecorder
		timer := newIdleTimer(d, idleAfter, p.poweroff)
		defer timer.stop()
		pass(idleAfter)
		if p.calls.Load() != 1 {
			t.Fatalf("power-off called %d times an idle period later with only an unpack waiting for URLs, want once", p.calls.Load())
		}
	})
}

// TestIdlePoweroffNotWhileFrozen: a stream frozen for a snapshot keeps the
// machine up; once released, the idle period counts from then.
func TestIdlePoweroffNotWhileFrozen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := quietDaemon()
		frozen := &stream{d: d, name: "frozen", state: wire.StateFrozen, changed: make(chan struct{})}
		d.streams["frozen"] = frozen
		var p poweroffRecorder
		timer := newIdleTimer(d, idleAfter, p.poweroff)
		defer timer.stop()
		pass(3 * idleAfter)
		if p.calls.Load() != 0 {
			t.Fatal("powered off while a stream was frozen for a snapshot")
		}
		if err := frozen.setState(wire.StateClean); err != nil {
			t.Fatal(err)
		}
		released := time.Now()
		pass(idleAfter - idleTick)
		if p.calls.Load() != 0 {
			t.Fatal("powered off less than an idle period after the release")
		}
		pass(idleTick)
		if p.calls.Load() != 1 || !p.lastAt().Equal(released.Add(idleAfter)) {
			t.Fatalf("power-off called %d times, the last at +%s; want once, an idle period after the release",
				p.calls.Load(), p.lastAt().Sub(released))
		}
	})
}
