package qemuboot

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
)

// qemuArgs is qemu's command line for opts: the machine, the firmware (UEFI
// variables copied into work), the image, the extra disks, the network and
// the serial console into the file console.
func qemuArgs(opts Options, accel, work, console string) ([]string, error) {
	mem := opts.MemoryMiB
	if mem == 0 {
		mem = 512
	}
	args := []string{
		"-machine", "pc,accel=" + accel, "-m", fmt.Sprint(mem), "-smp", "1",
		"-display", "none", "-monitor", "none", "-no-reboot", "-nodefaults",
		"-serial", "file:" + console,
	}
	if firmwareOr(opts.Firmware) == UEFI {
		code, vars := ovmfFiles(opts)
		varsCopy := filepath.Join(work, "OVMF_VARS.fd")
		if err := copyFile(vars, varsCopy); err != nil {
			return nil, err
		}
		args = append(args,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+code,
			"-drive", "if=pflash,format=raw,unit=1,file="+varsCopy)
	}
	// snapshot=on: writes go to a temporary overlay, never to the image
	// (unless the caller wants them kept: Writable).
	drive := "file=" + opts.Image + ",format=raw,if=none,id=root"
	if !opts.Writable {
		drive += ",snapshot=on"
	}
	switch opts.Disk {
	case "", NVMe:
		args = append(args, "-drive", drive, "-device", "nvme,drive=root,serial=vol0autoami,bootindex=0")
	case Virtio:
		args = append(args, "-drive", drive, "-device", "virtio-blk-pci,drive=root,bootindex=0")
	case IDE:
		args = append(args, "-drive", drive, "-device", "ide-hd,drive=root,bus=ide.0,bootindex=0")
	default:
		return nil, fmt.Errorf("unknown disk kind %q", opts.Disk)
	}
	for i, d := range opts.ExtraDisks {
		if d.Path == "" || strings.Contains(d.Path, ",") {
			return nil, fmt.Errorf("extra disk %d: path %q: want a file name without commas", i, d.Path)
		}
		id := fmt.Sprintf("extra%d", i)
		args = append(args, "-drive", "file="+d.Path+",format=raw,if=none,id="+id+",snapshot=on")
		switch d.Disk {
		case "", Virtio:
			args = append(args, "-device", "virtio-blk-pci,drive="+id)
		case NVMe:
			args = append(args, "-device", fmt.Sprintf("nvme,drive=%s,serial=vol%dautoami", id, i+1))
		case IDE:
			// The root, when on IDE, is ide.0; extra disks take the next bus.
			args = append(args, "-device", fmt.Sprintf("ide-hd,drive=%s,bus=ide.%d", id, i+1))
		default:
			return nil, fmt.Errorf("extra disk %d (%s): unknown disk kind %q", i, d.Path, d.Disk)
		}
	}
	if opts.Network != nil {
		netdev, err := opts.Network.netdev()
		if err != nil {
			return nil, err
		}
		args = append(args, "-netdev", netdev, "-device", "virtio-net-pci,netdev=net0")
	}
	return args, nil
}

// guestNetwork is the network of qemu's user-mode stack; guest forwards must
// name an address inside it that is not one of qemu's own (.2 host, .3 DNS)
// nor the guest's (.15).
var guestNetwork = netip.MustParsePrefix("10.0.2.0/24")

// netdev is the -netdev value: user-mode networking, restricted (the guest
// reaches nothing outside qemu but what the forwards say), with its forwards.
func (n *UserNetwork) netdev() (string, error) {
	parts := []string{"user", "id=net0", "restrict=on"}
	for i, f := range n.HostForwards {
		if f.HostPort <= 0 || f.HostPort > 65535 || f.GuestPort <= 0 || f.GuestPort > 65535 {
			return "", fmt.Errorf("network: host forward %d: ports %d -> %d: want 1..65535", i, f.HostPort, f.GuestPort)
		}
		parts = append(parts, fmt.Sprintf("hostfwd=tcp:127.0.0.1:%d-:%d", f.HostPort, f.GuestPort))
	}
	for i, f := range n.GuestForwards {
		addr, err := netip.ParseAddr(f.GuestAddress)
		if err != nil || !guestNetwork.Contains(addr) || addr.As4()[3] < 4 || addr.As4()[3] == 15 {
			return "", fmt.Errorf("network: guest forward %d: address %q: want an unused address of %s (not .0-.3 or .15)", i, f.GuestAddress, guestNetwork)
		}
		if f.HostPort <= 0 || f.HostPort > 65535 || f.GuestPort <= 0 || f.GuestPort > 65535 {
			return "", fmt.Errorf("network: guest forward %d: ports %d -> %d: want 1..65535", i, f.GuestPort, f.HostPort)
		}
		// qemu spawns the command for every connection the guest opens (a
		// chardev target would carry one connection only), in qemu's
		// process group, so stopping qemu stops it too.
		parts = append(parts, fmt.Sprintf("guestfwd=tcp:%s:%d-cmd:socat STDIO TCP:127.0.0.1:%d", addr, f.GuestPort, f.HostPort))
	}
	return strings.Join(parts, ","), nil
}
