package manifest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestFromDirectoryRefusesMountPoints: a directory or file bind-mounted into
// the tree (even from the same file system) is an error naming it, never
// content of the manifest.
func TestFromDirectoryRefusesMountPoints(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to bind-mount; make test runs as root")
	}
	for _, tc := range []struct{ name, target string }{
		{"directory", "tree/sub/mnt"},
		{"file", "tree/sub/file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, d := range []string{"tree/sub/mnt", "outside"} {
				if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range []string{"tree/sub/file", "outside/secret"} {
				if err := os.WriteFile(filepath.Join(dir, f), []byte(f), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			src := filepath.Join(dir, "outside")
			if tc.name == "file" {
				src = filepath.Join(dir, "outside/secret")
			}
			target := filepath.Join(dir, tc.target)
			if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := unix.Unmount(target, 0); err != nil {
					t.Errorf("unmount %s: %v", target, err)
				}
			})
			m, err := FromDirectory(context.Background(), filepath.Join(dir, "tree"), DirOptions{})
			if err == nil {
				t.Fatalf("scan crossed the mount point at %s: %d entries", tc.target, len(m.Entries))
			}
			if !errors.Is(err, errOtherMount) || !strings.Contains(err.Error(), tc.target) {
				t.Fatalf("error %q: want one naming %s as a mount point", err, tc.target)
			}
		})
	}
}
