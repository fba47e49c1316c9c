// Package qemuboot boots a raw disk image under qemu-system-x86_64 and waits
// for it to come up on the serial console: the boot tests' proof that a
// volume the unpacker made would boot as an AMI (bootloader, kernel,
// initramfs, root found by label), with SeaBIOS for BIOS and OVMF for UEFI.
//
// The disk is attached as NVMe, as on EC2 Nitro instances, and opened with
// qemu's -snapshot so the image itself is never written. KVM is used when
// /dev/kvm can be opened, software emulation (TCG) otherwise; a boot that
// stalls under KVM (some nested hosts hang in the guest kernel) is retried
// under TCG, and TCG is used for the rest of the process. Boot kills qemu
// by its own process group before returning, on success and failure alike.
package qemuboot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"testing"
	"time"
)

// Firmware selects the machine's firmware.
type Firmware string

const (
	// BIOS boots with SeaBIOS (qemu's default firmware).
	BIOS Firmware = "bios"
	// UEFI boots with OVMF.
	UEFI Firmware = "uefi"
)

// Disk selects how the image is attached.
type Disk string

const (
	// NVMe attaches the image as an NVMe namespace, like EBS on Nitro.
	NVMe Disk = "nvme"
	// Virtio attaches it as a virtio-blk disk.
	Virtio Disk = "virtio"
	// IDE attaches it to the PIIX IDE controller.
	IDE Disk = "ide"
)

// Default OVMF firmware files of Debian's ovmf package.
const (
	DefaultOVMFCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	DefaultOVMFVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
)

// AccelEnv names the environment variable that, when Options.Accel is
// empty, picks the accelerator ("kvm" or "tcg") instead of the automatic
// choice: CI on a host where KVM is known to stall sets it to tcg.
const AccelEnv = "AUTOAMI_QEMU_ACCEL"

// InstallHint names the Debian packages Boot needs.
const InstallHint = "install qemu-system-x86, ovmf and, for guest forwards, socat (listed in scripts/test-deps.txt)"

// DefaultReady is the console text that means "booted": a login prompt.
var DefaultReady = regexp.MustCompile(`login:`)

// Options configure Boot.
type Options struct {
	// Image is the raw disk image (a file; a loop device's backing file).
	Image string
	// Firmware is BIOS or UEFI; empty means BIOS.
	Firmware Firmware
	// Disk is how the image is attached; empty means NVMe.
	Disk Disk
	// Ready is matched against the console output; empty means DefaultReady.
	Ready *regexp.Regexp
	// Timeout bounds the whole boot; 0 means 3 minutes.
	Timeout time.Duration
	// MemoryMiB is the guest's memory; 0 means 512.
	MemoryMiB int
	// ConsoleLog is the file receiving the serial console; empty means a
	// temporary file that Boot removes.
	ConsoleLog string
	// OVMFCode and OVMFVars override the UEFI firmware files.
	OVMFCode, OVMFVars string
	// Accel is "kvm" or "tcg"; empty means $AUTOAMI_QEMU_ACCEL, else kvm
	// when /dev/kvm can be opened, falling back to tcg when the boot stalls.
	Accel string
	// Binary is the qemu executable; empty means qemu-system-x86_64 on PATH.
	Binary string
	// Logger receives the command line and the outcome; nil discards.
	Logger *slog.Logger
	// Writable makes the machine write the image itself (pass a copy): a
	// later machine on the same file boots what this one left, as an
	// instance does after a stop and start. Otherwise writes are discarded.
	Writable bool
	// ExtraDisks are attached after the image, in order, with writes
	// discarded (a NoCloud seed volume, a data volume).
	ExtraDisks []ExtraDisk
	// Network, when set, gives the machine one virtio NIC on qemu's
	// user-mode network, restricted to its forwards; nil means no NIC.
	Network *UserNetwork
}

// ExtraDisk is a further raw disk image of the machine.
type ExtraDisk struct {
	// Path is the image file (no commas in the name).
	Path string
	// Disk is how it is attached; empty means Virtio.
	Disk Disk
}

// UserNetwork is qemu's user-mode network (the guest gets 10.0.2.15 by
// DHCP), always restricted: the guest reaches nothing outside qemu, neither
// the host nor the internet, except through its forwards. So a test machine
// downloads only what the test serves it.
type UserNetwork struct {
	// HostForwards make guest TCP ports reachable on the host's loopback.
	HostForwards []HostForward
	// GuestForwards make addresses the guest connects to lead to ports on
	// the host's loopback (through socat, one process per connection).
	GuestForwards []GuestForward
}

// HostForward forwards 127.0.0.1:HostPort on the host to GuestPort in the guest.
type HostForward struct {
	HostPort, GuestPort int
}

// GuestForward forwards the guest's TCP connections to GuestAddress:GuestPort
// (an unused address of 10.0.2.0/24, such as 10.0.2.100) to
// 127.0.0.1:HostPort on the host.
type GuestForward struct {
	GuestAddress string
	GuestPort    int
	HostPort     int
}

// Result describes a successful boot.
type Result struct {
	// Elapsed is the wall time from starting qemu to the Ready match.
	Elapsed time.Duration
	// Match is the text Ready matched.
	Match string
	// Console is everything the serial console showed up to the match.
	Console string
	// Accel is the accelerator used ("kvm" or "tcg").
	Accel string
}

// Boot starts qemu on opts.Image and waits for opts.Ready on the serial
// console. It returns an error, holding the last console lines, when the
// machine stops (a kernel panic with panic=-1 ends the run through
// -no-reboot) or the timeout passes first. qemu is always stopped.
func Boot(ctx context.Context, opts Options) (*Result, error) { return boot(ctx, opts) }

// Check reports whether qemu and, for UEFI, the OVMF files (for guest
// forwards, socat) are installed, with InstallHint in the error when they
// are not.
func Check(opts Options) error { return check(opts) }

// LastLines returns the last n lines of console output, carriage returns
// and other control characters removed, for failure messages.
func LastLines(console string, n int) string { return lastLines(console, n) }

// MustBoot is Boot for tests: it fails t (with the last console lines) when
// the image does not boot, and logs the wall time when it does.
func MustBoot(t testing.TB, opts Options) *Result {
	t.Helper()
	if err := Check(opts); err != nil {
		t.Fatal(err)
	}
	res, err := Boot(context.Background(), opts)
	if err != nil {
		t.Fatalf("boot %s (%s): %v", opts.Image, firmwareOr(opts.Firmware), err)
	}
	t.Logf("booted %s (%s, %s) to %q in %s", opts.Image, firmwareOr(opts.Firmware), res.Accel, res.Match, res.Elapsed.Round(10*time.Millisecond))
	return res
}

// Machine is a qemu machine started by Start that keeps running until Stop:
// for tests that talk to the guest once it is up (through
// UserNetwork.HostForwards).
type Machine struct {
	impl *machine
}

// Start starts qemu on opts.Image and returns at once; opts.Ready and
// opts.Timeout are not used (see Machine.WaitFor). The accelerator is
// opts.Accel, else $AUTOAMI_QEMU_ACCEL, else KVM when /dev/kvm can be opened
// and no boot of this process stalled under it, else TCG. A running guest
// cannot be moved, so under KVM chosen that way only a console that stays
// empty for SilentKVMLimit (the guest never reached its kernel, so wrote
// nothing) makes WaitFor start the machine again under TCG. The caller must
// call Stop.
func Start(opts Options) (*Machine, error) {
	if err := check(opts); err != nil {
		return nil, err
	}
	accel, err := startAccel(opts)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m, err := startMachine(log, opts, accel)
	if err != nil {
		return nil, err
	}
	if accel == "kvm" && opts.Accel == "" && os.Getenv(AccelEnv) == "" {
		m.silentLimit = SilentKVMLimit
	}
	return &Machine{impl: m}, nil
}

// SilentKVMLimit is how long a machine Start put under automatically chosen
// KVM may show an empty console before WaitFor moves it to TCG: some nested
// hosts hang such guests before the first byte of output. A variable for
// tests.
var SilentKVMLimit = 45 * time.Second

// WaitFor waits until re matches the serial console and returns the match,
// with Elapsed counted from qemu's start. It returns an error, holding the
// last console lines, when the machine stops, ctx ends or timeout passes
// first. The machine keeps running either way.
func (m *Machine) WaitFor(ctx context.Context, re *regexp.Regexp, timeout time.Duration) (*Result, error) {
	started := time.Now()
	res, err := m.impl.waitFor(ctx, re, timeout, false)
	if !errors.Is(err, errStalled) {
		return res, err
	}
	// KVM hung the guest before it printed anything: again under TCG, for
	// this machine and every later one of this process.
	kvmBroken.Store(true)
	old := m.impl
	old.log.Warn("KVM showed nothing on the console; starting the machine again under software emulation (TCG)", "image", old.opts.Image, "error", err)
	old.stop()
	next, serr := startMachine(old.log, old.opts, "tcg")
	if serr != nil {
		return nil, fmt.Errorf("%w; then under TCG: %w", err, serr)
	}
	m.impl = next
	return m.impl.waitFor(ctx, re, timeout-time.Since(started), false)
}

// WaitExit waits until qemu exits by itself (the guest powered off; with
// -no-reboot also a reboot or a panic with panic=-1), at most timeout. It
// returns an error, holding the last console lines, when qemu still runs.
func (m *Machine) WaitExit(timeout time.Duration) error { return m.impl.waitExit(timeout) }

// Console returns the serial console's output so far, as written.
func (m *Machine) Console() string {
	out, _ := os.ReadFile(m.impl.console)
	return string(out)
}

// Accel is the accelerator the machine runs with ("kvm" or "tcg").
func (m *Machine) Accel() string { return m.impl.accel }

// Stop kills qemu's process group (qemu and what it spawned) by the PID
// Start started, waits for it, and removes its temporary files. Calling it
// again does nothing.
func (m *Machine) Stop() { m.impl.stop() }

// MustStart is Start for tests: it fails t when qemu cannot start, and
// stops the machine when the test ends.
func MustStart(t testing.TB, opts Options) *Machine {
	t.Helper()
	m, err := Start(opts)
	if err != nil {
		t.Fatalf("start %s: %v", opts.Image, err)
	}
	t.Cleanup(m.Stop)
	return m
}
