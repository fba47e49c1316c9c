package patch

import (
	"context"
	"errors"
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

// inodeStat is what must not change for a file the patch leaves alone.
type inodeStat struct {
	ino   uint64
	ctime int64
}

func statAll(t *testing.T, root string, m *manifest.Manifest) map[string]inodeStat {
	t.Helper()
	out := map[string]inodeStat{}
	for _, e := range m.Entries {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, e.Path), &st); err != nil {
			t.Fatal(err)
		}
		out[e.Path] = inodeStat{st.Ino, st.Ctim.Nano()}
	}
	return out
}

func TestIncrementalApplyTouchesOnlyChanges(t *testing.T) {
	fs := newLoopFS(t, 128)
	srcA, mA := source(t, buildA)
	srcB, mB := source(t, buildB)
	apply(t, fs.mnt, srcA, mA, Options{})
	before := statAll(t, fs.mnt, mA)

	res := apply(t, fs.mnt, srcB, mB, Options{})
	t.Logf("A -> B: %+v", res)
	fs.remount(t)
	requireSameTree(t, scan(t, fs.mnt), mB)
	if res.Deleted == 0 || res.Created == 0 || res.Updated == 0 || res.Unchanged == 0 {
		t.Errorf("result %+v: want some of each kind", res)
	}
	// The moved 700 KiB file is reused from the volume, not fetched.
	if res.ObjectsReused == 0 {
		t.Errorf("result %+v: the moved file's content was not reused", res)
	}
	for _, p := range []string{"usr/lib/dup1", "usr/lib/dup2", "var/lib/sparse.db", "etc/passwd", "usr/bin/wall", "dev/null", "lib"} {
		after := statAll(t, fs.mnt, &manifest.Manifest{Entries: []manifest.Entry{{Path: p}}})[p]
		if before[p] != after {
			t.Errorf("%s was touched although it did not change: %+v -> %+v", p, before[p], after)
		}
	}
	if res.BytesWritten > 64<<10 {
		t.Errorf("wrote %d bytes; the changed files hold a few hundred bytes and the moved one is relinked", res.BytesWritten)
	}
}

func TestRoundTripABAEqualsFreshApply(t *testing.T) {
	fs := newLoopFS(t, 128)
	srcA, mA := source(t, buildA)
	srcB, mB := source(t, buildB)
	apply(t, fs.mnt, srcA, mA, Options{})
	apply(t, fs.mnt, srcB, mB, Options{})
	apply(t, fs.mnt, srcA, mA, Options{})
	fs.remount(t)
	requireSameTree(t, scan(t, fs.mnt), mA)

	fresh := newLoopFS(t, 128)
	apply(t, fresh.mnt, srcA, mA, Options{})
	requireSameTree(t, scan(t, fresh.mnt), mA)
	a, _ := withoutLostFound(scan(t, fs.mnt)).Digest()
	b, _ := withoutLostFound(scan(t, fresh.mnt)).Digest()
	if a != b {
		t.Errorf("A->B->A digest %s differs from a fresh apply of A %s", a, b)
	}
}

var errStop = errors.New("stop here")

func TestInterruptedApplyConverges(t *testing.T) {
	fs := newLoopFS(t, 128)
	srcA, mA := source(t, buildA)
	srcB, mB := source(t, buildB)

	// Count how often each point is reached in an A -> B patch.
	apply(t, fs.mnt, srcA, mA, Options{})
	counts := map[Point]int{}
	apply(t, fs.mnt, srcB, mB, Options{Hook: func(p Point, _ string) error { counts[p]++; return nil }})
	for _, p := range []Point{PointScanned, PointStaged, PointFetched, PointDeleted, PointCreated, PointMetadata, PointSynced} {
		if counts[p] == 0 {
			t.Fatalf("point %s never reached in an A -> B patch", p)
		}
	}

	for _, p := range []Point{PointScanned, PointStaged, PointFetched, PointDeleted, PointCreated, PointMetadata, PointSynced} {
		for _, nth := range uniq(1, (counts[p]+1)/2, counts[p]) {
			apply(t, fs.mnt, srcA, mA, Options{})
			seen := 0
			_, err := Apply(context.Background(), fs.mnt, mB, manifest.DirectorySource(srcB, mB), Options{AllowDevices: true,
				Hook: func(q Point, _ string) error {
					if q == p {
						if seen++; seen == nth {
							return errStop
						}
					}
					return nil
				}})
			if !errors.Is(err, ErrInterrupted) || !errors.Is(err, errStop) {
				t.Fatalf("interrupt at %s #%d: got %v, want the hook's error", p, nth, err)
			}
			// A second interruption at a later point, then completion.
			_, err = Apply(context.Background(), fs.mnt, mB, manifest.DirectorySource(srcB, mB), Options{AllowDevices: true,
				Hook: func(q Point, _ string) error {
					if q == PointCreated {
						return errStop
					}
					return nil
				}})
			if err != nil && !errors.Is(err, errStop) {
				t.Fatalf("second run after interrupt at %s #%d: %v", p, nth, err)
			}
			apply(t, fs.mnt, srcB, mB, Options{})
			requireSameTree(t, scan(t, fs.mnt), mB)
			if _, err := os.Lstat(filepath.Join(fs.mnt, StagingDir)); !os.IsNotExist(err) {
				t.Fatalf("after interrupt at %s #%d: staging directory left behind", p, nth)
			}
		}
	}
	fs.remount(t)
	requireSameTree(t, scan(t, fs.mnt), mB)
}

func uniq(xs ...int) []int {
	var out []int
	for _, x := range xs {
		if len(out) == 0 || out[len(out)-1] != x {
			out = append(out, x)
		}
	}
	return out
}
