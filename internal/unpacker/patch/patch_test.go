package patch

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
)

// source builds a revision into a fresh directory and returns it with its manifest.
func source(t *testing.T, build func(*testing.T, string)) (string, *manifest.Manifest) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	build(t, dir)
	return dir, scan(t, dir)
}

func apply(t *testing.T, root, srcDir string, m *manifest.Manifest, opts Options) Result {
	t.Helper()
	opts.AllowDevices = true
	res, err := Apply(context.Background(), root, m, manifest.DirectorySource(srcDir, m), opts)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return res
}

func TestApplyOnLoopDeviceSurvivesRemount(t *testing.T) {
	fs := newLoopFS(t, 128)
	srcA, mA := source(t, buildA)
	res := apply(t, fs.mnt, srcA, mA, Options{})
	if res.Created != len(mA.Entries)-1 || res.Deleted != 0 {
		t.Errorf("fresh apply: %+v, want %d created, 0 deleted", res, len(mA.Entries)-1)
	}
	fs.remount(t)
	requireSameTree(t, scan(t, fs.mnt), mA)
	if _, err := os.Stat(filepath.Join(fs.mnt, StagingDir)); !os.IsNotExist(err) {
		t.Errorf("staging directory left behind: %v", err)
	}
	if _, err := os.Stat(filepath.Join(fs.mnt, "lost+found")); err != nil {
		t.Errorf("lost+found was removed: %v", err)
	}
	// The sparse file keeps its holes: 16 MiB with 12 KiB of data.
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(fs.mnt, "var/lib/sparse.db"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != 16<<20 || st.Blocks*512 > 64<<10 {
		t.Errorf("sparse file: size %d, %d bytes allocated; want 16 MiB with at most 64 KiB allocated", st.Size, st.Blocks*512)
	}
	// A second apply of the same revision changes nothing.
	res = apply(t, fs.mnt, srcA, mA, Options{})
	if res.Unchanged != len(mA.Entries) || res.BytesWritten != 0 || res.Created+res.Updated+res.Deleted != 0 {
		t.Errorf("idempotent apply: %+v, want all %d unchanged", res, len(mA.Entries))
	}
}
