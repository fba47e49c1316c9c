package qemuboot

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// machine is one running qemu process.
type machine struct {
	opts    Options
	fw      Firmware
	accel   string
	log     *slog.Logger
	work    string // temporary directory, removed by stop
	console string // the serial console's file
	start   time.Time
	pid     int
	stderr  bytes.Buffer // qemu's own output; read only after done
	done    chan struct{}
	exitErr error // set before done is closed
	once    sync.Once
	// silentLimit, when set, makes a console that stays empty that long an
	// errStalled failure (a machine Start put under automatically chosen KVM).
	silentLimit time.Duration
}

// startMachine starts qemu with opts and accel and returns at once.
func startMachine(log *slog.Logger, opts Options, accel string) (m *machine, err error) {
	if _, err := os.Stat(opts.Image); err != nil {
		return nil, fmt.Errorf("boot image: %w", err)
	}
	m = &machine{opts: opts, fw: firmwareOr(opts.Firmware), accel: accel, log: log, done: make(chan struct{})}
	if m.work, err = os.MkdirTemp("", "autoami-qemuboot-"); err != nil {
		return nil, fmt.Errorf("boot %s: %w", opts.Image, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(m.work)
		}
	}()
	m.console = opts.ConsoleLog
	if m.console == "" {
		m.console = filepath.Join(m.work, "console.log")
	}
	if err := os.WriteFile(m.console, nil, 0o644); err != nil {
		return nil, fmt.Errorf("boot %s: console log: %w", opts.Image, err)
	}
	args, err := qemuArgs(opts, accel, m.work, m.console)
	if err != nil {
		return nil, fmt.Errorf("boot %s: %w", opts.Image, err)
	}
	bin := opts.Binary
	if bin == "" {
		bin = "qemu-system-x86_64"
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &m.stderr, &m.stderr
	// Its own process group: stop kills qemu and whatever it spawned (the
	// socat of guest forwards) by the PID started here.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	log.Info("starting qemu", "image", opts.Image, "firmware", m.fw, "accel", accel, "args", args)
	m.start = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("boot %s: start qemu: %w", opts.Image, err)
	}
	m.pid = cmd.Process.Pid
	go func() {
		m.exitErr = cmd.Wait()
		close(m.done)
	}()
	return m, nil
}

// stop kills qemu's process group, waits for qemu and removes the temporary
// files; later calls do nothing.
func (m *machine) stop() {
	m.once.Do(func() {
		_ = syscall.Kill(-m.pid, syscall.SIGKILL)
		<-m.done
		os.RemoveAll(m.work)
	})
}

// waitFor waits until ready matches the console, the machine stops, ctx
// ends or timeout passes; watchStall makes a console silent for stallLimit
// an errStalled failure. It leaves the machine running.
func (m *machine) waitFor(ctx context.Context, ready *regexp.Regexp, timeout time.Duration, watchStall bool) (*Result, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	lastSize, lastChange := -1, time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("boot %s (%s): %w; last console lines:\n%s", m.opts.Image, m.fw, ctx.Err(), tailOf(m.console))
		case <-deadline.C:
			return nil, fmt.Errorf("boot %s (%s, %s): no %q on the console within %s; last console lines:\n%s",
				m.opts.Image, m.fw, m.accel, ready, timeout, tailOf(m.console))
		case <-m.done:
			// Look once more: the match may have come right before the exit.
			out, _ := os.ReadFile(m.console)
			if loc := ready.FindIndex(out); loc != nil {
				return &Result{Elapsed: time.Since(m.start), Match: string(out[loc[0]:loc[1]]), Console: string(out[:loc[1]]), Accel: m.accel}, nil
			}
			return nil, fmt.Errorf("boot %s (%s, %s): qemu stopped after %s (%v) before %q appeared; qemu said %q; last console lines:\n%s",
				m.opts.Image, m.fw, m.accel, time.Since(m.start).Round(time.Millisecond), m.exitErr, ready,
				strings.TrimSpace(m.stderr.String()), lastLines(string(out), 25))
		case <-tick.C:
			out, err := os.ReadFile(m.console)
			if err != nil {
				return nil, fmt.Errorf("boot %s: read console: %w", m.opts.Image, err)
			}
			if loc := ready.FindIndex(out); loc != nil {
				return &Result{Elapsed: time.Since(m.start), Match: string(out[loc[0]:loc[1]]), Console: string(out[:loc[1]]), Accel: m.accel}, nil
			}
			if m.silentLimit > 0 && len(out) == 0 && time.Since(m.start) > m.silentLimit {
				return nil, fmt.Errorf("boot %s (%s): %w: the console stayed empty for %s", m.opts.Image, m.fw, errStalled, m.silentLimit)
			}
			if len(out) != lastSize {
				lastSize, lastChange = len(out), time.Now()
			} else if watchStall && time.Since(lastChange) > stallLimit {
				return nil, fmt.Errorf("boot %s (%s): %w: nothing new for %s; last console lines:\n%s",
					m.opts.Image, m.fw, errStalled, stallLimit, lastLines(string(out), 5))
			}
		}
	}
}

// waitExit waits up to timeout for qemu to exit by itself.
func (m *machine) waitExit(timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-m.done:
		return nil
	case <-t.C:
		return fmt.Errorf("boot %s (%s, %s): qemu still runs after %s; last console lines:\n%s",
			m.opts.Image, m.fw, m.accel, timeout, tailOf(m.console))
	}
}

// startAccel is the accelerator of Start: opts.Accel, else $AUTOAMI_QEMU_ACCEL,
// else KVM when usable and no boot of this process stalled under it, else TCG.
func startAccel(opts Options) (string, error) {
	accel := opts.Accel
	if accel == "" {
		accel = os.Getenv(AccelEnv)
	}
	switch accel {
	case "kvm", "tcg":
		return accel, nil
	case "":
		if kvmUsable() && !kvmBroken.Load() {
			return "kvm", nil
		}
		return "tcg", nil
	default:
		return "", fmt.Errorf("boot %s: accelerator %q: want kvm or tcg", opts.Image, accel)
	}
}
