package volume

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
)

func makeBootable(ctx context.Context, layout *Layout, rootDir string, opts BootOptions) (*BootReport, error) {
	if layout == nil {
		return nil, fmt.Errorf("make volume bootable: no layout")
	}
	log := loggerOr(opts.Logger).With("device", layout.Disk, "root_dir", rootDir)
	fail := func(err error) (*BootReport, error) {
		return nil, fmt.Errorf("make %s bootable: %w", layout.Disk, err)
	}
	firmware := opts.Firmware
	if len(firmware) == 0 {
		firmware = []Firmware{BIOS, UEFI}
	}
	for _, fw := range firmware {
		switch fw {
		case BIOS:
			if layout.BIOSBoot == nil {
				return fail(fmt.Errorf("BIOS boot needs a GPT BIOS boot partition; the disk has none"))
			}
		case UEFI:
			if layout.ESP == nil {
				return fail(fmt.Errorf("UEFI boot needs an EFI system partition; the disk has none"))
			}
		default:
			return fail(fmt.Errorf("unknown firmware %q (want %q or %q)", fw, BIOS, UEFI))
		}
	}
	label := opts.RootLabel
	if label == "" {
		label = layout.Root.Label
	}
	if err := checkLabel(label); err != nil {
		return fail(err)
	}
	entries, err := findKernels(rootDir)
	if err != nil {
		return fail(err)
	}
	args, dropped, err := kernelArgs(rootDir, opts.DefaultArgs)
	if err != nil {
		return fail(err)
	}
	if len(dropped) > 0 {
		log.Warn("dropped arguments from etc/kernel/cmdline: the layout decides the root", "dropped", dropped)
	}
	cfg := grubConfig{rootLabel: label, osName: osName(rootDir), args: args, entries: entries, timeout: opts.Timeout}
	memdisk, err := memdiskTar(cfg.render())
	if err != nil {
		return fail(fmt.Errorf("build GRUB memdisk: %w", err))
	}
	rep := &BootReport{Entries: entries, CommandLine: cfg.commandLine(), ModulesFrom: map[Firmware]string{}}
	for _, fw := range firmware {
		img, dir, err := buildGRUBImage(ctx, log, layout.Disk, fw, rootDir, opts.HostGRUBDir, memdisk)
		if err != nil {
			return fail(err)
		}
		rep.ModulesFrom[fw] = dir
		switch fw {
		case BIOS:
			written, err := installBIOS(layout, dir, img)
			if err != nil {
				return fail(err)
			}
			rep.Written = append(rep.Written, written...)
		case UEFI:
			wrote, err := writeESPFile(ctx, log, layout.ESP.Device, espBootPath, img)
			if err != nil {
				return fail(err)
			}
			if wrote {
				if err := syncDevice(layout.ESP.Device); err != nil {
					return fail(err)
				}
				rep.Written = append(rep.Written, "esp:"+espBootPath)
			}
		}
	}
	log.Info("made volume bootable", "firmware", firmware, "default_kernel", entries[0].Kernel,
		"kernels", len(entries), "cmdline", rep.CommandLine, "grub_modules", rep.ModulesFrom, "written", rep.Written)
	return rep, nil
}

// installBIOS writes core.img into the BIOS boot partition and boot.img into
// the MBR, each only when it differs from what is there, and flushes.
func installBIOS(layout *Layout, moduleDir string, core []byte) ([]string, error) {
	f, err := os.OpenFile(layout.Disk, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("install GRUB for BIOS: %w", err)
	}
	defer f.Close()
	mbr := make([]byte, sectorSize)
	if _, err := f.ReadAt(mbr, 0); err != nil {
		return nil, fmt.Errorf("install GRUB for BIOS: read MBR of %s: %w", layout.Disk, err)
	}
	imgs, err := embedCore(moduleDir, core, mbr, layout.BIOSBoot)
	if err != nil {
		return nil, fmt.Errorf("install GRUB for BIOS on %s: %w", layout.Disk, err)
	}
	// Core first, then the MBR that points at it.
	var written []string
	for _, part := range []struct {
		name string
		off  int64
		data []byte
	}{
		{"bios-boot", layout.BIOSBoot.Start, imgs.core},
		{"mbr", 0, imgs.mbr},
	} {
		old := make([]byte, len(part.data))
		if _, err := f.ReadAt(old, part.off); err != nil && err != io.EOF {
			return nil, fmt.Errorf("install GRUB for BIOS: read %s of %s: %w", part.name, layout.Disk, err)
		}
		if bytes.Equal(old, part.data) {
			continue
		}
		if _, err := f.WriteAt(part.data, part.off); err != nil {
			return nil, fmt.Errorf("install GRUB for BIOS: write %s of %s: %w", part.name, layout.Disk, err)
		}
		written = append(written, part.name)
	}
	if len(written) > 0 {
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("install GRUB for BIOS: flush %s: %w", layout.Disk, err)
		}
	}
	return written, nil
}

// syncDevice flushes a block device's written pages to the disk.
func syncDevice(dev string) error {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("flush %s: %w", dev, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("flush %s: %w", dev, err)
	}
	return nil
}
