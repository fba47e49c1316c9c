package qemuboot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"time"
)

func firmwareOr(f Firmware) Firmware {
	if f == "" {
		return BIOS
	}
	return f
}

func check(opts Options) error {
	bin := opts.Binary
	if bin == "" {
		bin = "qemu-system-x86_64"
	}
	if _, err := exec.LookPath(bin); err != nil {
		return fmt.Errorf("qemu not found (%s): %s", bin, InstallHint)
	}
	if firmwareOr(opts.Firmware) == UEFI {
		code, vars := ovmfFiles(opts)
		for _, f := range []string{code, vars} {
			if _, err := os.Stat(f); err != nil {
				return fmt.Errorf("UEFI firmware %s missing: %s", f, InstallHint)
			}
		}
	}
	if opts.Network != nil && len(opts.Network.GuestForwards) > 0 {
		if _, err := exec.LookPath("socat"); err != nil {
			return fmt.Errorf("socat not found (guest forwards run it): %s", InstallHint)
		}
	}
	return nil
}

func ovmfFiles(opts Options) (string, string) {
	code, vars := opts.OVMFCode, opts.OVMFVars
	if code == "" {
		code = DefaultOVMFCode
	}
	if vars == "" {
		vars = DefaultOVMFVars
	}
	return code, vars
}

// kvmUsable reports whether this process can open /dev/kvm.
func kvmUsable() bool {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// stallLimit is how long a boot under automatically chosen KVM may show no
// new console output before Boot gives up on KVM: some nested hosts run
// firmware and GRUB under KVM but hang in the guest kernel.
const stallLimit = 10 * time.Second

// kvmBroken remembers, for this process, that KVM stalled a boot.
var kvmBroken atomic.Bool

// errStalled says a boot under KVM stopped making console progress.
var errStalled = errors.New("console output stalled under KVM")

func boot(ctx context.Context, opts Options) (*Result, error) {
	if err := check(opts); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	accel := opts.Accel
	if accel == "" {
		accel = os.Getenv(AccelEnv)
	}
	switch accel {
	case "kvm", "tcg":
		return bootWith(ctx, log, opts, accel, false)
	case "":
	default:
		return nil, fmt.Errorf("boot %s: accelerator %q: want kvm or tcg", opts.Image, accel)
	}
	if kvmUsable() && !kvmBroken.Load() {
		res, err := bootWith(ctx, log, opts, "kvm", true)
		if !errors.Is(err, errStalled) {
			return res, err
		}
		kvmBroken.Store(true)
		log.Warn("KVM stalled the boot; using software emulation (TCG) from now on", "image", opts.Image, "error", err)
	}
	return bootWith(ctx, log, opts, "tcg", false)
}

// bootWith boots once with the given accelerator; watchStall makes a console
// silent for stallLimit an errStalled failure.
func bootWith(ctx context.Context, log *slog.Logger, opts Options, accel string, watchStall bool) (*Result, error) {
	ready := opts.Ready
	if ready == nil {
		ready = DefaultReady
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = 3 * time.Minute
	}
	m, err := startMachine(log, opts, accel)
	if err != nil {
		return nil, err
	}
	defer m.stop()
	res, err := m.waitFor(ctx, ready, timeout, watchStall)
	if err != nil {
		return nil, err
	}
	log.Info("booted", "image", opts.Image, "firmware", m.fw, "accel", accel, "elapsed", res.Elapsed)
	return res, nil
}

func tailOf(console string) string {
	out, err := os.ReadFile(console)
	if err != nil {
		return fmt.Sprintf("(console unreadable: %v)", err)
	}
	return lastLines(string(out), 25)
}

// ansiEscape matches the terminal control sequences firmware and GRUB print.
var ansiEscape = regexp.MustCompile(`\x1b(\[[0-9;?]*[A-Za-z]|[()][0-9A-Za-z]|[=>c])`)

func lastLines(console string, n int) string {
	console = ansiEscape.ReplaceAllString(console, "")
	console = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' || r >= ' ' && r != 0x7f {
			return r
		}
		return -1
	}, console)
	lines := strings.Split(strings.TrimRight(console, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return "(the console showed nothing)"
	}
	return strings.Join(lines, "\n")
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}
