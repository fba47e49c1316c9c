package cloudinit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

func buildImage(ctx context.Context) (*Image, error) {
	dir, err := imageScript.run(ctx)
	if err != nil {
		return nil, fmt.Errorf("Debian 12 cloud-init image: %w", err)
	}
	img := &Image{Path: filepath.Join(dir, "disk.img"), Packages: map[string]string{}}
	if _, err := os.Stat(img.Path); err != nil {
		return nil, fmt.Errorf("Debian 12 cloud-init image: %w", err)
	}
	kv, err := os.ReadFile(filepath.Join(dir, "kernel-version"))
	if err != nil {
		return nil, fmt.Errorf("Debian 12 cloud-init image: %w", err)
	}
	img.KernelVersion = strings.TrimSpace(string(kv))
	pkgs, err := os.ReadFile(filepath.Join(dir, "packages"))
	if err != nil {
		return nil, fmt.Errorf("Debian 12 cloud-init image: %w", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(pkgs)), "\n") {
		if name, version, ok := strings.Cut(line, " "); ok {
			img.Packages[name] = version
		}
	}
	return img, nil
}
