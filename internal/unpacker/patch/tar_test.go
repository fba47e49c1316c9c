package patch

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
)

// makeTar archives dir with GNU tar in PAX format (nanosecond mtimes,
// xattrs, ACLs, numeric owners, sparse files as such), compressed with
// compressor ("" for none).
func makeTar(t *testing.T, dir, compressor string, extra ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "rootfs.tar")
	args := append([]string{"--format=posix", "--sparse", "--xattrs", "--xattrs-include=*", "--acls", "--numeric-owner"}, extra...)
	args = append(args, "-C", dir, "-cf", out)
	if compressor != "" {
		args = append([]string{"--use-compress-program=" + compressor}, args...)
		out += "." + compressor
		args[len(args)-1] = out
	}
	args = append(args, ".")
	if b, err := exec.Command("tar", args...).CombinedOutput(); err != nil {
		t.Fatalf("tar %v: %v\n%s", args, err, b)
	}
	return out
}

func TestTarSourceGivesSameFilesystemAsDirectory(t *testing.T) {
	requireRoot(t)
	srcA, mA := source(t, buildA)
	srcB, mB := source(t, buildB)
	for _, tc := range []struct{ comp, aclForm string }{{"", "xattr"}, {"gzip", "xattr"}, {"zstd", "xattr"}, {"", "text"}} {
		comp := tc.comp
		t.Run("compression="+comp+",acl="+tc.aclForm, func(t *testing.T) {
			if comp != "" {
				if _, err := exec.LookPath(comp); err != nil {
					t.Fatalf("%s is needed (scripts/test-deps.txt): %v", comp, err)
				}
			}
			var extra []string
			if tc.aclForm == "text" {
				// ACLs only as GNU tar's SCHILY.acl.* text records.
				extra = []string{"--xattrs-exclude=system.*"}
			}
			tarA := makeTar(t, srcA, comp, extra...)
			f, err := os.Open(tarA)
			if err != nil {
				t.Fatal(err)
			}
			mt, err := manifest.FromTar(context.Background(), f, manifest.TarOptions{})
			f.Close()
			if err != nil {
				t.Fatalf("manifest of %s: %v", tarA, err)
			}
			if d := diffManifests(mt, mA); d != "" {
				t.Fatalf("tarball manifest differs from the directory's: %s", d)
			}
			dt, _ := mt.Digest()
			dd, _ := mA.Digest()
			if dt != dd {
				t.Fatalf("tarball revision %s != directory revision %s", dt, dd)
			}

			// Patch a volume holding B to the tarball of A: same as from the directory.
			fs := newLoopFS(t, 128)
			apply(t, fs.mnt, srcB, mB, Options{})
			res, err := Apply(context.Background(), fs.mnt, mt, manifest.TarSource(tarA, mt), Options{AllowDevices: true})
			if err != nil {
				t.Fatalf("apply tarball: %v", err)
			}
			if res.ObjectsFetched == 0 {
				t.Errorf("nothing fetched from the tarball: %+v", res)
			}
			fs.remount(t)
			requireSameTree(t, scan(t, fs.mnt), mA)
		})
	}
}
