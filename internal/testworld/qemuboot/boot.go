package qemuboot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
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
	if _, err := os.Stat(opts.Image); err != nil {
		return nil, fmt.Errorf("boot image: %w", err)
	}
	fw := firmwareOr(opts.Firmware)
	ready := opts.Ready
	if ready == nil {
		ready = DefaultReady
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = 3 * time.Minute
	}
	mem := opts.MemoryMiB
	if mem == 0 {
		mem = 512
	}
	work, err := os.MkdirTemp("", "autoami-qemuboot-")
	if err != nil {
		return nil, fmt.Errorf("boot %s: %w", opts.Image, err)
	}
	defer os.RemoveAll(work)
	console := opts.ConsoleLog
	if console == "" {
		console = filepath.Join(work, "console.log")
	}
	if err := os.WriteFile(console, nil, 0o644); err != nil {
		return nil, fmt.Errorf("boot %s: console log: %w", opts.Image, err)
	}

	args := []string{
		"-machine", "pc,accel=" + accel, "-m", fmt.Sprint(mem), "-smp", "1",
		"-display", "none", "-monitor", "none", "-no-reboot", "-nodefaults",
		"-serial", "file:" + console,
	}
	if fw == UEFI {
		code, vars := ovmfFiles(opts)
		varsCopy := filepath.Join(work, "OVMF_VARS.fd")
		if err := copyFile(vars, varsCopy); err != nil {
			return nil, fmt.Errorf("boot %s: %w", opts.Image, err)
		}
		args = append(args,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+code,
			"-drive", "if=pflash,format=raw,unit=1,file="+varsCopy)
	}
	// snapshot=on: writes go to a temporary overlay, never to the image.
	drive := "file=" + opts.Image + ",format=raw,if=none,id=root,snapshot=on"
	switch opts.Disk {
	case "", NVMe:
		args = append(args, "-drive", drive, "-device", "nvme,drive=root,serial=vol0autoami,bootindex=0")
	case Virtio:
		args = append(args, "-drive", drive, "-device", "virtio-blk-pci,drive=root,bootindex=0")
	case IDE:
		args = append(args, "-drive", drive, "-device", "ide-hd,drive=root,bus=ide.0,bootindex=0")
	default:
		return nil, fmt.Errorf("boot %s: unknown disk kind %q", opts.Image, opts.Disk)
	}
	bin := opts.Binary
	if bin == "" {
		bin = "qemu-system-x86_64"
	}
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	log.Info("starting qemu", "image", opts.Image, "firmware", fw, "accel", accel, "args", args)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("boot %s: start qemu: %w", opts.Image, err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		// The whole process group, by the PID we started.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-exited
	}

	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	lastSize, lastChange := -1, time.Now()
	for {
		select {
		case <-ctx.Done():
			stop()
			return nil, fmt.Errorf("boot %s (%s): %w; last console lines:\n%s", opts.Image, fw, ctx.Err(), tailOf(console))
		case <-deadline.C:
			stop()
			return nil, fmt.Errorf("boot %s (%s, %s): no %q on the console within %s; last console lines:\n%s",
				opts.Image, fw, accel, ready, timeout, tailOf(console))
		case err := <-exited:
			// Look once more: the match may have come right before the exit.
			out, _ := os.ReadFile(console)
			if m := ready.Find(out); m != nil {
				return &Result{Elapsed: time.Since(start), Match: string(m), Console: string(out), Accel: accel}, nil
			}
			return nil, fmt.Errorf("boot %s (%s, %s): qemu stopped after %s (%v) before %q appeared; qemu said %q; last console lines:\n%s",
				opts.Image, fw, accel, time.Since(start).Round(time.Millisecond), err, ready,
				strings.TrimSpace(stderr.String()), lastLines(string(out), 25))
		case <-tick.C:
			out, err := os.ReadFile(console)
			if err != nil {
				stop()
				return nil, fmt.Errorf("boot %s: read console: %w", opts.Image, err)
			}
			if loc := ready.FindIndex(out); loc != nil {
				elapsed := time.Since(start)
				stop()
				log.Info("booted", "image", opts.Image, "firmware", fw, "accel", accel, "elapsed", elapsed)
				return &Result{Elapsed: elapsed, Match: string(out[loc[0]:loc[1]]), Console: string(out[:loc[1]]), Accel: accel}, nil
			}
			if len(out) != lastSize {
				lastSize, lastChange = len(out), time.Now()
			} else if watchStall && time.Since(lastChange) > stallLimit {
				stop()
				return nil, fmt.Errorf("boot %s (%s): %w: nothing new for %s; last console lines:\n%s",
					opts.Image, fw, errStalled, stallLimit, lastLines(string(out), 5))
			}
		}
	}
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
