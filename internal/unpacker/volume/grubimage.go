package volume

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// grubPlatform is one GRUB target platform.
type grubPlatform struct {
	// dir is the platform directory's name under /usr/lib/grub.
	dir string
	// modules are built into the image: it loads nothing from disk, so it
	// boots whatever modules (or none) the root carries.
	modules []string
	// files must exist in the platform directory besides the modules.
	files []string
}

// commonModules boot Linux from a GPT or MBR disk with an ext4 or XFS root
// found by label, with a menu on the serial console, from an embedded config.
var commonModules = []string{
	"normal", "configfile", "linux", "echo", "test", "sleep", "serial", "terminal",
	"part_gpt", "part_msdos", "ext2", "xfs", "search", "search_label", "search_fs_uuid",
	"memdisk", "tar",
}

var grubPlatforms = map[Firmware]grubPlatform{
	BIOS: {
		dir:     "i386-pc",
		modules: append([]string{"biosdisk"}, commonModules...),
		files:   []string{"kernel.img", "moddep.lst", "boot.img", "diskboot.img", "lzma_decompress.img"},
	},
	UEFI: {
		dir:     "x86_64-efi",
		modules: append([]string{"efi_gop"}, commonModules...),
		files:   []string{"kernel.img", "moddep.lst"},
	},
}

// memdiskPrefix is where the image finds its grub.cfg: in the memdisk.
const memdiskPrefix = "(memdisk)/boot/grub"

// moduleDirs returns the GRUB platform directories to try, best first: the
// image's own (when it holds everything needed, inside the root), then the
// host's. Modules that match the image's GRUB packages are what the
// distribution tested; the host's are the fallback for images without GRUB.
func moduleDirs(log *slog.Logger, rootDir, hostDir string, p grubPlatform) []string {
	var dirs []string
	own := filepath.Join(rootDir, "usr/lib/grub", p.dir)
	if err := completeModuleDir(rootDir, own, p); err == nil {
		dirs = append(dirs, own)
	} else if _, statErr := os.Lstat(filepath.Join(rootDir, "usr/lib/grub", p.dir)); statErr == nil {
		log.Warn("not using the image's GRUB modules", "platform", p.dir, "reason", err)
	}
	if hostDir == "" {
		hostDir = "/usr/lib/grub"
	}
	return append(dirs, filepath.Join(hostDir, p.dir))
}

// completeModuleDir checks that dir, inside rootDir, holds every file and
// module p needs as regular files.
func completeModuleDir(rootDir, dir string, p grubPlatform) error {
	if err := beneath(rootDir, dir); err != nil {
		return err
	}
	names := append([]string(nil), p.files...)
	for _, m := range p.modules {
		names = append(names, m+".mod")
	}
	for _, n := range names {
		st, err := os.Lstat(filepath.Join(dir, n))
		if err != nil {
			return fmt.Errorf("%s lacks %s", dir, n)
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s/%s is not a regular file", dir, n)
		}
	}
	return nil
}

// memdiskTar returns a tarball holding boot/grub/grub.cfg, with fixed
// owners and times so that the same config gives the same image bytes.
func memdiskTar(cfg string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(0, 0)
	for _, d := range []string{"boot/", "boot/grub/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime, Format: tar.FormatUSTAR}); err != nil {
			return nil, err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: "boot/grub/grub.cfg", Typeflag: tar.TypeReg, Mode: 0o644,
		Size: int64(len(cfg)), ModTime: mtime, Format: tar.FormatUSTAR}); err != nil {
		return nil, err
	}
	if _, err := tw.Write([]byte(cfg)); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// buildGRUBImage runs grub-mkimage for fw with the memdisk and returns the
// image and the module directory it was built from, trying the image's own
// modules first.
func buildGRUBImage(ctx context.Context, log *slog.Logger, device string, fw Firmware, rootDir, hostDir string, memdisk []byte) ([]byte, string, error) {
	p := grubPlatforms[fw]
	tmp, err := os.MkdirTemp("", "autoami-grub-")
	if err != nil {
		return nil, "", fmt.Errorf("build GRUB %s image: %w", p.dir, err)
	}
	defer os.RemoveAll(tmp)
	md := filepath.Join(tmp, "memdisk.tar")
	if err := os.WriteFile(md, memdisk, 0o600); err != nil {
		return nil, "", fmt.Errorf("build GRUB %s image: %w", p.dir, err)
	}
	out := filepath.Join(tmp, "image")
	var errs []error
	for _, dir := range moduleDirs(log, rootDir, hostDir, p) {
		args := append([]string{"-O", p.dir, "-d", dir, "-o", out, "-m", md, "-p", memdiskPrefix}, p.modules...)
		if _, err := run(ctx, log, command{device: device, name: "grub-mkimage", args: args}); err != nil {
			log.Warn("building GRUB image failed; trying the next module directory", "platform", p.dir, "dir", dir, "error", err)
			errs = append(errs, err)
			continue
		}
		img, err := os.ReadFile(out)
		if err != nil {
			return nil, "", fmt.Errorf("build GRUB %s image: %w", p.dir, err)
		}
		if len(img) < 1024 {
			return nil, "", fmt.Errorf("build GRUB %s image from %s: image of %d bytes is too small", p.dir, dir, len(img))
		}
		return img, dir, nil
	}
	return nil, "", fmt.Errorf("build GRUB %s image: %w", p.dir, errors.Join(errs...))
}
