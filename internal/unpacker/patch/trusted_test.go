package patch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
)

// TestTrustedCurrentRoundTrip patches A → B → A trusting the current
// manifest (no scan of the tree) and checks each result against a fresh
// apply of the same revision, and that unchanged entries were not touched.
func TestTrustedCurrentRoundTrip(t *testing.T) {
	fs := newLoopFS(t, 128)
	fresh := newLoopFS(t, 128)
	srcA, mA := source(t, buildA)
	srcB, mB := source(t, buildB)
	cache := filepath.Join(t.TempDir(), "statcache")
	apply(t, fs.mnt, srcA, mA, Options{StatCachePath: cache})
	fs.remount(t)
	before := statAll(t, fs.mnt, mA)

	res := apply(t, fs.mnt, srcB, mB, Options{StatCachePath: cache, Current: mA})
	t.Logf("A -> B trusted: %+v", res)
	if !res.TrustedCurrent || res.CurrentNotTrusted != "" {
		t.Fatalf("A -> B: current manifest not trusted: %q", res.CurrentNotTrusted)
	}
	if res.Deleted == 0 || res.Created == 0 || res.Updated == 0 || res.Unchanged == 0 || res.ObjectsReused == 0 {
		t.Errorf("A -> B: result %+v: want some of each kind and the moved file reused", res)
	}
	fs.remount(t)
	apply(t, fresh.mnt, srcB, mB, Options{})
	fresh.remount(t)
	gotB := withoutLostFound(scan(t, fs.mnt))
	requireSameTree(t, gotB, mB)
	requireSameTree(t, gotB, withoutLostFound(scan(t, fresh.mnt)))
	for _, p := range []string{"usr/lib/dup1", "usr/lib/dup2", "var/lib/sparse.db", "etc/passwd", "usr/bin/wall", "dev/null", "lib"} {
		after := statAll(t, fs.mnt, &manifest.Manifest{Entries: []manifest.Entry{{Path: p}}})[p]
		if before[p] != after {
			t.Errorf("%s was touched although it did not change: %+v -> %+v", p, before[p], after)
		}
	}
	if _, err := os.Stat(filepath.Join(fs.mnt, StagingDir)); !os.IsNotExist(err) {
		t.Errorf("staging directory left behind: %v", err)
	}

	res = apply(t, fs.mnt, srcA, mA, Options{StatCachePath: cache, Current: mB})
	t.Logf("B -> A trusted: %+v", res)
	if !res.TrustedCurrent {
		t.Fatalf("B -> A: current manifest not trusted: %q", res.CurrentNotTrusted)
	}
	fs.remount(t)
	requireSameTree(t, scan(t, fs.mnt), mA)
	// The stale stat cache is still right: a full patch to A finds nothing to do.
	res = apply(t, fs.mnt, srcA, mA, Options{StatCachePath: cache})
	if res.Unchanged != len(mA.Entries) || res.Created+res.Updated+res.Deleted != 0 || res.TrustedCurrent {
		t.Errorf("full rescan after trusted patches: %+v, want all %d unchanged", res, len(mA.Entries))
	}
}

// TestTrustedCurrentFallsBackWhenTampered changes, behind the engine's back,
// an entry that the A → B patch touches: the engine must notice, scan the
// whole tree and still produce exactly B.
func TestTrustedCurrentFallsBackWhenTampered(t *testing.T) {
	srcA, mA := source(t, buildA)
	srcB, mB := source(t, buildB)
	cases := []struct {
		name   string
		path   string // named in the reason
		tamper func(t *testing.T, root string)
	}{
		{"content of a replaced file", "bin/ping", func(t *testing.T, root string) {
			writeFile(t, filepath.Join(root, "bin/ping"), "tampered ping binary, longer\n")
		}},
		{"mode of a file whose mode changes", "etc/mode-only", func(t *testing.T, root string) {
			if err := unix.Chmod(filepath.Join(root, "etc/mode-only"), 0o666); err != nil {
				t.Fatal(err)
			}
		}},
		{"a file where the patch creates one", "etc/shadow", func(t *testing.T, root string) {
			writeFile(t, filepath.Join(root, "etc/shadow"), "planted\n")
			restoreMtime(t, root, "etc", mA)
		}},
		{"a file added in a directory the patch deletes", "to-delete/deep", func(t *testing.T, root string) {
			writeFile(t, filepath.Join(root, "to-delete/deep/planted"), "x\n")
		}},
		{"content of a moved file, its size and mtime kept", "usr/lib/big-mover", func(t *testing.T, root string) {
			p := filepath.Join(root, "usr/lib/big-mover")
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt([]byte("XXXX"), 1000); err != nil {
				t.Fatal(err)
			}
			f.Close()
			restoreMtime(t, root, "usr/lib/big-mover", mA)
		}},
		{"a hard link broken into a copy", "link", func(t *testing.T, root string) {
			p := filepath.Join(root, "usr/lib/libx-hardlink")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			os.Remove(p)
			writeFile(t, p, string(b))
			e := &mA.Entries[mA.Lookup("usr/lib/libx.so.1")]
			if err := unix.Chmod(p, e.Mode); err != nil {
				t.Fatal(err)
			}
			restoreMtime(t, root, "usr/lib/libx-hardlink", mA)
			restoreMtime(t, root, "usr/lib", mA)
		}},
		{"an immutable flag", "etc/owner-only", func(t *testing.T, root string) {
			run(t, "chattr", "+i", filepath.Join(root, "etc/owner-only"))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := newLoopFS(t, 64)
			apply(t, fs.mnt, srcA, mA, Options{})
			c.tamper(t, fs.mnt)
			res := apply(t, fs.mnt, srcB, mB, Options{Current: mA})
			if res.TrustedCurrent {
				t.Fatalf("tampering with %s went unnoticed: %+v", c.path, res)
			}
			if !strings.Contains(res.CurrentNotTrusted, c.path) {
				t.Errorf("reason %q does not name %s", res.CurrentNotTrusted, c.path)
			}
			t.Logf("fell back: %s", res.CurrentNotTrusted)
			fs.remount(t)
			requireSameTree(t, scan(t, fs.mnt), mB)
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// restoreMtime puts back the mtime m records for path (hiding a change from
// a check of mtimes alone).
func restoreMtime(t *testing.T, root, path string, m *manifest.Manifest) {
	t.Helper()
	e := &m.Entries[m.Lookup(path)]
	if e.Type == manifest.TypeHardLink {
		e = &m.Entries[m.Lookup(e.Link)]
	}
	treeBuilder{t, root}.mtime(path, e.MtimeNs)
}
