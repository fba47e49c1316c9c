package devices

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ebsPrefix starts the udev by-id link of an EBS NVMe namespace; the volume
// ID follows without its dash ("vol0123…").
const ebsPrefix = "nvme-Amazon_Elastic_Block_Store_"

type ebsFinder struct {
	devDir, sysDir string
	poll           time.Duration
}

func newEBS(opts EBSOptions) *ebsFinder {
	f := &ebsFinder{devDir: opts.DevDir, sysDir: opts.SysDir, poll: opts.PollInterval}
	if f.devDir == "" {
		f.devDir = "/dev"
	}
	if f.sysDir == "" {
		f.sysDir = "/sys"
	}
	if f.poll <= 0 {
		f.poll = 250 * time.Millisecond
	}
	return f
}

func (f *ebsFinder) Local() bool { return false }

func (f *ebsFinder) Attach(ctx context.Context, req AttachRequest) (Device, error) {
	for {
		dev, err := f.find(req.VolumeID, req.DeviceName)
		if err == nil {
			return dev, nil
		}
		select {
		case <-ctx.Done():
			return Device{}, fmt.Errorf("wait for the device of volume %s: %w (%w)", req.VolumeID, err, ctx.Err())
		case <-time.After(f.poll):
		}
	}
}

func (f *ebsFinder) Lookup(_ context.Context, volumeID string) (Device, error) {
	return f.find(volumeID, "")
}

func (f *ebsFinder) Detach(context.Context, string) error { return nil }

// find looks for the volume, most reliable way first: the udev link, then
// the NVMe serial in sysfs (no udev needed), then the attachment name.
func (f *ebsFinder) find(volumeID, deviceName string) (Device, error) {
	serial := strings.ReplaceAll(volumeID, "-", "")
	if path, ok := f.byIDLink(serial); ok {
		return f.device(volumeID, path)
	}
	if path, ok := f.byNVMeSerial(serial); ok {
		return f.device(volumeID, path)
	}
	if deviceName != "" {
		for _, path := range f.nameCandidates(deviceName) {
			if _, err := os.Stat(path); err == nil {
				return f.device(volumeID, path)
			}
		}
	}
	return Device{}, fmt.Errorf("volume %s: %w (looked for %s%s* in %s, NVMe serial %s in %s, device name %q)",
		volumeID, ErrNotFound, ebsPrefix, serial, filepath.Join(f.devDir, "disk/by-id"), serial, filepath.Join(f.sysDir, "block"), deviceName)
}

func (f *ebsFinder) byIDLink(serial string) (string, bool) {
	dir := filepath.Join(f.devDir, "disk/by-id")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", false
	}
	for _, e := range entries {
		name := e.Name()
		// Links of partitions end in "-partN"; namespaces may carry "_1" or "-ns-1".
		if !strings.HasPrefix(name, ebsPrefix+serial) || strings.Contains(name, "-part") {
			continue
		}
		rest := strings.TrimPrefix(name, ebsPrefix+serial)
		if rest != "" && rest[0] != '_' && rest[0] != '-' {
			continue // a longer volume ID sharing the prefix
		}
		target, err := filepath.EvalSymlinks(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		return target, true
	}
	return "", false
}

func (f *ebsFinder) byNVMeSerial(serial string) (string, bool) {
	entries, err := os.ReadDir(filepath.Join(f.sysDir, "block"))
	if err != nil {
		return "", false
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "nvme") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(f.sysDir, "block", name, "device/serial"))
		if err != nil || strings.TrimSpace(string(b)) != serial {
			continue
		}
		return filepath.Join(f.devDir, name), true
	}
	return "", false
}

// nameCandidates maps an attachment name to the nodes it may appear as:
// Xen instances rename sdX to xvdX.
func (f *ebsFinder) nameCandidates(deviceName string) []string {
	base := filepath.Base(deviceName)
	var out []string
	add := func(n string) { out = append(out, filepath.Join(f.devDir, n)) }
	switch {
	case strings.HasPrefix(base, "sd"):
		add(base)
		add("xvd" + strings.TrimPrefix(base, "sd"))
	case strings.HasPrefix(base, "xvd"):
		add(base)
		add("sd" + strings.TrimPrefix(base, "xvd"))
	default:
		add(base)
	}
	return out
}

func (f *ebsFinder) device(volumeID, path string) (Device, error) {
	size, err := sizeOf(path)
	if err != nil {
		return Device{}, fmt.Errorf("volume %s at %s: %w", volumeID, path, err)
	}
	return Device{VolumeID: volumeID, Path: path, SizeBytes: size}, nil
}
