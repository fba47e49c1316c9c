// Package bootfs gives boot tests their small bootable root filesystems,
// built from Debian packages by scripts/bootable-rootfs and cached between
// runs (see that script for what the trees hold and where the cache lives).
package bootfs

import (
	"context"
	"testing"
)

// Trees are the cached root filesystems.
type Trees struct {
	// Dir is the cache directory holding them.
	Dir string
	// Rev1 boots and prints "AUTOAMI-BOOT-OK rev=1 …" then a login prompt.
	Rev1 string
	// Rev2 is the next revision: another /etc/kernel/cmdline (adding
	// autoami.revision=2), another initramfs, and its own GRUB modules in
	// /usr/lib/grub.
	Rev2 string
	// Overlay holds files (etc/autoami-overlay = "layered") to put on top of
	// a base image's root.
	Overlay string
	// KernelVersion is the kernel in the trees ("6.1.0-28-amd64").
	KernelVersion string
}

// Build runs scripts/bootable-rootfs (needs root) and returns the trees;
// cached trees make it take well under a second.
func Build(ctx context.Context) (Trees, error) { return build(ctx) }

// MustBuild is Build for tests: it fails t when the trees cannot be built.
func MustBuild(t testing.TB) Trees {
	t.Helper()
	trees, err := Build(context.Background())
	if err != nil {
		t.Fatalf("bootable root filesystems: %v", err)
	}
	return trees
}

// RepoRoot is the module's root directory: the first directory holding
// go.mod at or above the working directory (where the scripts are).
func RepoRoot() (string, error) { return repoRoot() }
