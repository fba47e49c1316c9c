package daemon

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// idleTimer powers the machine off when no request came for a while and no
// unpack runs. With the instance's shutdown behaviour "stop" this stops the
// instance, without the unpacker needing AWS.
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
		if t.d.anyBusy() {
			t.touch() // an unpack is activity: count idleness from its end
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

// anyBusy reports whether any stream runs an unpack.
func (d *daemon) anyBusy() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.streams {
		if s.currentState().Busy() {
			return true
		}
	}
	return false
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
