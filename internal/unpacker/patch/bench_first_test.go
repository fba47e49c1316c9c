package patch

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
)

// BenchmarkFirstUnpack patches an empty loop-mounted ext4 volume to the base
// tree (a from-scratch stream's first unpack: every object fetched,
// allocated in manifest order, see Deterministic placement) and compares
// it, in the same run, with extracting base.tar onto a fresh file system.
func BenchmarkFirstUnpack(b *testing.B) {
	dir := benchRootfs(b)
	ctx := context.Background()
	base := filepath.Join(dir, "base")
	m, err := manifest.FromDirectory(ctx, base, manifest.DirOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		fs := newLoopFS(b, 2048)
		var res Result
		ours := timed(b, func() {
			res, err = Apply(ctx, fs.mnt, m, manifest.DirectorySource(base, m), Options{AllowDevices: true})
		})
		if err != nil {
			b.Fatal(err)
		}
		fsT := newLoopFS(b, 2048)
		tarTime := timed(b, func() {
			runCmd(b, "tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", filepath.Join(dir, "base.tar"), "-C", fsT.mnt)
			runCmd(b, "sync", "-f", fsT.mnt)
		})
		b.ReportMetric(ours.Seconds(), "first_unpack_s")
		b.ReportMetric(ours.Seconds()/tarTime.Seconds(), "first_ratio_vs_tar")
		b.Logf("first unpack %s (fetched %d objects, %d bytes), tar -x onto fresh fs %s", ours, res.ObjectsFetched, res.BytesFetched, tarTime)
	}
}
