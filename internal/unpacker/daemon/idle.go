package daemon

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// idleTimer powers the machine off when no request came for a while, no
// unpack works and no stream is frozen for a snapshot. An unpack that only
// waits for its caller's object URLs is not work: a caller that went away
// must not keep the instance running (the unpack fails after the URL wait).
// With the instance's shutdown behaviour "stop" this stops the instance,
// without the unpacker needing AWS.
type idleTimer struct {
	d        *daemon
	after    time.Duration
	poweroff func(context.Context) error

	mu      sync.Mutex
	last    time.Time
	fired   bool
	quit    chan struct{}
	stopped chan struct{}
}

func newIdleTimer(d *daemon, after time.Duration, poweroff func(context.Context) error) *idleTimer {
	t := &idleTimer{d: d, after: after, poweroff: poweroff, last: time.Now(),
		quit: make(chan struct{}), stopped: make(chan struct{})}
	if t.poweroff == nil {
		t.poweroff = systemPoweroff
	}
	if after <= 0 {
		close(t.stopped)
		return t
	}
	go t.loop()
	return t
}

func (t *idleTimer) touch() {
	t.mu.Lock()
	t.last = time.Now()
	t.mu.Unlock()
}

func (t *idleTimer) lastRequest() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

// deadline is when the machine powers off if nothing happens; zero when
// idle power-off is disabled.
func (t *idleTimer) deadline() time.Time {
	if t.after <= 0 {
		return time.Time{}
	}
	return t.lastRequest().Add(t.after)
}

func (t *idleTimer) stop() {
	select {
	case <-t.quit:
	default:
		close(t.quit)
	}
	<-t.stopped
}

func (t *idleTimer) loop() {
	defer close(t.stopped)
	tick := min(max(t.after/20, 50*time.Millisecond), 10*time.Second)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for {
		select {
		case <-t.quit:
			return
		case <-ticker.C:
		}
		if t.d.keepsAwake() {
			t.touch() // work of our own: count idleness from its end
			continue
		}
		t.mu.Lock()
		due := !t.fired && time.Since(t.last) >= t.after
		if due {
			t.fired = true
		}
		idle := time.Since(t.last)
		t.mu.Unlock()
		if !due {
			continue
		}
		t.d.log.Warn("idle: powering off", "idle_for", idle.Round(time.Second), "idle_poweroff", t.after)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := t.poweroff(ctx)
		cancel()
		if err != nil {
			t.d.log.Error("idle power-off failed", "err", err)
			t.mu.Lock()
			t.fired = false // try again after another idle period
			t.last = time.Now()
			t.mu.Unlock()
		}
	}
}

// keepsAwake reports whether any stream keeps the machine up: an unpack
// doing work of its own, or a file system frozen for a snapshot (powering
// off would hang on it, and the snapshot is being taken).
func (d *daemon) keepsAwake() bool {
	d.mu.Lock()
	streams := make([]*stream, 0, len(d.streams))
	for _, s := range d.streams {
		streams = append(streams, s)
	}
	d.mu.Unlock()
	for _, s := range streams {
		if s.keepsAwake() {
			return true
		}
	}
	return false
}

func (s *stream) keepsAwake() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.state == wire.StateFrozen:
		return true
	case !s.state.Busy():
		return false
	case s.state == wire.StateFetching && s.job != nil && s.job.queue.waitingForURLs():
		return false
	}
	return true
}

func systemPoweroff(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "systemctl", "poweroff").CombinedOutput()
	if err == nil {
		return nil
	}
	out2, err2 := exec.CommandContext(ctx, "poweroff").CombinedOutput()
	if err2 == nil {
		return nil
	}
	return fmt.Errorf("power off: systemctl poweroff: %v: %s; poweroff: %v: %s",
		err, strings.TrimSpace(string(out)), err2, strings.TrimSpace(string(out2)))
}
