package qemuboot

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNetdev checks the user-mode network's qemu option: restricted, with
// its forwards, and refused when a forward names a port or address qemu
// cannot use.
func TestNetdev(t *testing.T) {
	n := &UserNetwork{
		HostForwards:  []HostForward{{HostPort: 40001, GuestPort: 6975}},
		GuestForwards: []GuestForward{{GuestAddress: "10.0.2.100", GuestPort: 80, HostPort: 40002}},
	}
	got, err := n.netdev()
	if err != nil {
		t.Fatal(err)
	}
	want := "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:40001-:6975,guestfwd=tcp:10.0.2.100:80-cmd:socat STDIO TCP:127.0.0.1:40002"
	if got != want {
		t.Errorf("netdev = %q, want %q", got, want)
	}
	for _, tc := range []struct {
		name string
		net  UserNetwork
		want string
	}{
		{"host port 0", UserNetwork{HostForwards: []HostForward{{HostPort: 0, GuestPort: 22}}}, "host forward 0: ports 0 -> 22"},
		{"guest port too big", UserNetwork{HostForwards: []HostForward{{HostPort: 2222, GuestPort: 70000}}}, "want 1..65535"},
		{"qemu's host address", UserNetwork{GuestForwards: []GuestForward{{GuestAddress: "10.0.2.2", GuestPort: 80, HostPort: 8080}}}, `address "10.0.2.2"`},
		{"the guest's address", UserNetwork{GuestForwards: []GuestForward{{GuestAddress: "10.0.2.15", GuestPort: 80, HostPort: 8080}}}, `address "10.0.2.15"`},
		{"outside the network", UserNetwork{GuestForwards: []GuestForward{{GuestAddress: "192.168.1.9", GuestPort: 80, HostPort: 8080}}}, "want an unused address of 10.0.2.0/24"},
		{"no address", UserNetwork{GuestForwards: []GuestForward{{GuestPort: 80, HostPort: 8080}}}, `address ""`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.net.netdev(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("netdev error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestQemuArgsExtraDisks checks how extra disks are attached, and that a
// path qemu would split at its comma is refused.
func TestQemuArgsExtraDisks(t *testing.T) {
	args, err := qemuArgs(Options{Image: "/img/root.img", ExtraDisks: []ExtraDisk{{Path: "/img/seed.iso"}, {Path: "/img/data.img", Disk: NVMe}}}, "tcg", t.TempDir(), "/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(args, " ")
	for _, want := range []string{
		"-drive file=/img/seed.iso,format=raw,if=none,id=extra0,snapshot=on -device virtio-blk-pci,drive=extra0",
		"-drive file=/img/data.img,format=raw,if=none,id=extra1,snapshot=on -device nvme,drive=extra1,serial=vol2autoami",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("qemu arguments lack %q:\n%s", want, line)
		}
	}
	if strings.Contains(line, "-netdev") {
		t.Errorf("a machine without Network got a NIC: %s", line)
	}
	if !strings.Contains(line, "file=/img/root.img,format=raw,if=none,id=root,snapshot=on ") {
		t.Errorf("the image is not opened with snapshot=on: %s", line)
	}
	writable, err := qemuArgs(Options{Image: "/img/root.img", Writable: true}, "tcg", t.TempDir(), "/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	if line := strings.Join(writable, " "); !strings.Contains(line, "file=/img/root.img,format=raw,if=none,id=root ") {
		t.Errorf("a Writable image is opened with snapshot=on: %s", line)
	}
	if _, err := qemuArgs(Options{Image: "/img/root.img", ExtraDisks: []ExtraDisk{{Path: "/img/a,b.iso"}}}, "tcg", t.TempDir(), "/dev/null"); err == nil ||
		!strings.Contains(err.Error(), "extra disk 0") {
		t.Errorf("a path with a comma: %v, want an error naming extra disk 0", err)
	}
	if _, err := qemuArgs(Options{Image: "/img/root.img", ExtraDisks: []ExtraDisk{{Path: "/img/x.img", Disk: "floppy"}}}, "tcg", t.TempDir(), "/dev/null"); err == nil ||
		!strings.Contains(err.Error(), `unknown disk kind "floppy"`) {
		t.Errorf("an unknown disk kind: %v", err)
	}
}

// TestStartKeepsRunning starts a machine on a blank disk under OVMF, waits
// for the firmware's boot manager, and checks that the machine still runs
// after WaitFor returns and is gone (its process group too) after Stop.
func TestStartKeepsRunning(t *testing.T) {
	opts := Options{Image: t.TempDir() + "/blank.img", Accel: "tcg", Firmware: UEFI,
		Network: &UserNetwork{HostForwards: []HostForward{{HostPort: freePortForTest(t), GuestPort: 22}}}}
	if err := os.WriteFile(opts.Image, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	m := MustStart(t, opts)
	res, err := m.WaitFor(context.Background(), regexp.MustCompile(`BdsDxe`), 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accel != "tcg" || res.Elapsed <= 0 || !strings.Contains(m.Console(), "BdsDxe") {
		t.Errorf("result %+v, console %q", res, LastLines(m.Console(), 3))
	}
	pid := m.impl.pid
	if err := syscall.Kill(-pid, 0); err != nil {
		t.Fatalf("qemu's process group %d is gone after WaitFor: %v", pid, err)
	}
	_, err = m.WaitFor(context.Background(), regexp.MustCompile(`AUTOAMI-NEVER`), time.Second)
	if err == nil || !strings.Contains(err.Error(), "within 1s") {
		t.Errorf("WaitFor for what never comes: %v", err)
	}
	if err := m.WaitExit(time.Second); err == nil || !strings.Contains(err.Error(), "qemu still runs after 1s") {
		t.Errorf("WaitExit of a running machine: %v", err)
	}
	m.Stop()
	m.Stop()
	if err := syscall.Kill(-pid, 0); err != syscall.ESRCH {
		t.Errorf("qemu's process group %d after Stop: %v, want ESRCH", pid, err)
	}
}

// freePortForTest returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePortForTest(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// A machine Start put under automatically chosen KVM whose console stays
// empty (a host that hangs KVM guests before their first byte) is started
// again under TCG by WaitFor, and later machines of the process start
// under TCG. Needs a usable /dev/kvm (the CI machines have one); an empty
// disk prints nothing under either accelerator.
func TestStartMovesASilentKVMMachineToTCG(t *testing.T) {
	if !kvmUsable() {
		t.Skip("no usable /dev/kvm: the fallback from KVM cannot be exercised here")
	}
	t.Setenv(AccelEnv, "")
	savedLimit, savedBroken := SilentKVMLimit, kvmBroken.Load()
	SilentKVMLimit = 2 * time.Second
	t.Cleanup(func() { SilentKVMLimit = savedLimit; kvmBroken.Store(savedBroken) })
	kvmBroken.Store(false)
	disk := filepath.Join(t.TempDir(), "empty.img")
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	m := MustStart(t, Options{Image: disk})
	if m.Accel() != "kvm" {
		t.Fatalf("started under %s, want kvm (chosen automatically)", m.Accel())
	}
	_, err := m.WaitFor(context.Background(), regexp.MustCompile("never printed"), 8*time.Second)
	if err == nil || !strings.Contains(err.Error(), "tcg") {
		t.Errorf("WaitFor: %v; want a timeout under tcg after the fallback", err)
	}
	if m.Accel() != "tcg" || !kvmBroken.Load() {
		t.Errorf("after the silent console: accel %s, KVM marked broken %v; want tcg, true", m.Accel(), kvmBroken.Load())
	}
	if next := MustStart(t, Options{Image: disk}); next.Accel() != "tcg" {
		t.Errorf("a later machine started under %s, want tcg", next.Accel())
	}
}
