package patch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
)

// bindMount mounts src over dst for the rest of the test.
func bindMount(t *testing.T, src, dst string) {
	t.Helper()
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount %s over %s: %v", src, dst, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dst, 0); err != nil {
			t.Errorf("unmount bind mount %s: %v", dst, err)
		}
	})
}

// hostDir is a directory outside the volume holding one file the patch
// must never touch.
func hostDir(t *testing.T) (dir, precious string) {
	t.Helper()
	dir = t.TempDir()
	precious = filepath.Join(dir, "precious")
	if err := os.WriteFile(precious, []byte("host data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, precious
}

// TestApplyNeverCrossesMountPoints: a mount inside the root (a host
// directory bind-mounted over ROOT/tmp, a host file over a file of the
// root, a bind mount of the volume's own directory, a mount over the
// staging directory) makes the patch fail with an error naming the mount
// point, and nothing outside the root is changed.
func TestApplyNeverCrossesMountPoints(t *testing.T) {
	srcA, mA := source(t, buildA)
	srcB, mB := source(t, buildB)
	for _, tc := range []struct {
		name  string
		mount func(t *testing.T, root string) (precious string)
		want  string // in the error
	}{
		{"host directory over tmp", func(t *testing.T, root string) string {
			dir, precious := hostDir(t)
			bindMount(t, dir, filepath.Join(root, "tmp"))
			return precious
		}, "tmp"},
		{"host directory over a directory the revision deletes", func(t *testing.T, root string) string {
			dir, precious := hostDir(t)
			bindMount(t, dir, filepath.Join(root, "to-delete/deep"))
			return precious
		}, "to-delete/deep"},
		{"host file over a file", func(t *testing.T, root string) string {
			_, precious := hostDir(t)
			bindMount(t, precious, filepath.Join(root, "etc/passwd"))
			return precious
		}, "etc/passwd"},
		{"volume directory over another", func(t *testing.T, root string) string {
			bindMount(t, filepath.Join(root, "home"), filepath.Join(root, "tmp"))
			return filepath.Join(root, "home/user/notes")
		}, "tmp"},
		{"host directory over the staging directory", func(t *testing.T, root string) string {
			if err := os.Mkdir(filepath.Join(root, StagingDir), 0o700); err != nil {
				t.Fatal(err)
			}
			dir, precious := hostDir(t)
			bindMount(t, dir, filepath.Join(root, StagingDir))
			return precious
		}, StagingDir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := newLoopFS(t, 64)
			apply(t, fs.mnt, srcA, mA, Options{})
			precious := tc.mount(t, fs.mnt)
			before, err := os.ReadFile(precious)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Apply(context.Background(), fs.mnt, mB, manifest.DirectorySource(srcB, mB), Options{AllowDevices: true})
			if err == nil {
				t.Fatal("apply succeeded across a mount point")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "mount") {
				t.Errorf("error %q does not name the mount point %s", err, tc.want)
			}
			after, rerr := os.ReadFile(precious)
			if rerr != nil || string(after) != string(before) {
				t.Fatalf("%s was changed through the mount point: %q, %v (apply said %v)", precious, after, rerr, err)
			}
		})
	}
}

// TestApplyCrossMountErrorIsEXDEV: a mount point met while acting (not
// scanning) is refused by openat2 with EXDEV, which the error keeps.
func TestApplyCrossMountErrorIsEXDEV(t *testing.T) {
	fs := newLoopFS(t, 64)
	srcA, mA := source(t, buildA)
	apply(t, fs.mnt, srcA, mA, Options{})
	dir, _ := hostDir(t)
	bindMount(t, dir, filepath.Join(fs.mnt, "srv"))
	tr, err := openTree(fs.mnt)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.close()
	if _, err := tr.dir("srv"); !errors.Is(err, unix.EXDEV) || !strings.Contains(err.Error(), "mount point") {
		t.Fatalf("opening a mount point beneath the root: %v, want EXDEV explained", err)
	}
}
