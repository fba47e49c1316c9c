//go:build !linux

package manifest

import (
	"context"
	"fmt"
	"runtime"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// This file stands in for the directory scan (walk_linux.go, statx_linux.go,
// xattr_linux.go, statcache_linux.go, source_directory_linux.go) where it
// cannot be built: the content model, tarballs and raw images work
// everywhere; reading a directory tree is refused with the reason.

func directorySupport() error { return unsupportedOn(runtime.GOOS) }

func fromDirectory(_ context.Context, root string, _ DirOptions) (*Manifest, error) {
	return nil, fmt.Errorf("scan %s: %w", root, directorySupport())
}

func scanDirectory(_ context.Context, root string, _ DirOptions) (*Scan, error) {
	return nil, fmt.Errorf("scan %s: %w", root, directorySupport())
}

func writeStatCache(root string, _ *Manifest, _ string) error {
	return fmt.Errorf("record stat cache of %s: %w", root, directorySupport())
}

type unsupportedDirectorySource struct{ root string }

func newDirectorySource(root string, _ *Manifest) objects.Source {
	return unsupportedDirectorySource{root: root}
}

func (s unsupportedDirectorySource) Fetch(context.Context, []objects.Want, objects.Sink) error {
	return fmt.Errorf("read objects from %s: %w", s.root, directorySupport())
}
