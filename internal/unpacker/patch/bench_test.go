package patch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// benchRootfs returns the directory scripts/bench-rootfs filled.
func benchRootfs(b *testing.B) string {
	dir := os.Getenv("AUTOAMI_BENCH_ROOTFS")
	if dir == "" {
		b.Skip("AUTOAMI_BENCH_ROOTFS is not set: build the trees with scripts/bench-rootfs DIR (make bench does)")
	}
	for _, p := range []string{"base", "security", "security.tar"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			b.Fatalf("benchmark tree incomplete (run scripts/bench-rootfs %s): %v", dir, err)
		}
	}
	requireRoot(b)
	return dir
}

// sectorsWritten reads the write counter of a block device (512-byte sectors).
func sectorsWritten(b *testing.B, dev string) int64 {
	raw, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(dev), "stat"))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(raw))
	n, err := strconv.ParseInt(f[6], 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// blockDigests hashes an image file in 512 KiB blocks.
func blockDigests(b *testing.B, path string) []objects.Digest {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var out []objects.Digest
	buf := make([]byte, manifest.BlockSize)
	for {
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			out = append(out, sha256.Sum256(buf[:n]))
		}
		if err != nil {
			break
		}
	}
	return out
}

func changedBlocks(before, after []objects.Digest) int {
	n := 0
	for i := range after {
		if i >= len(before) || before[i] != after[i] {
			n++
		}
	}
	return n
}

// changedContent sums the sizes of files of to whose content is new at
// their path: the least any in-place update must write.
func changedContent(from, to *manifest.Manifest) (bytes int64, files int) {
	old := map[string]objects.Digest{}
	for _, e := range from.Entries {
		if e.Type == manifest.TypeRegular {
			old[e.Path] = e.Digest
		}
	}
	for _, e := range to.Entries {
		if e.Type == manifest.TypeRegular {
			if d, ok := old[e.Path]; !ok || d != e.Digest {
				bytes += e.Size
				files++
			}
		}
	}
	return bytes, files
}

func timed(b *testing.B, f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

func runCmd(b *testing.B, name string, args ...string) {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		b.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// BenchmarkIncrementalUnpack patches a loop-mounted ext4 volume holding the
// base tree to the security-updated tree and compares it, in the same run,
// with rsync -aHAX --delete of the same trees onto a copy and with
// extracting security.tar onto a fresh file system (each followed by a
// sync of the file system, as the unpacker's syncfs). The trusted_* metrics
// are the same update with Options.Current (the daemon's fast path for a
// clean stream: no scan of the tree).
func BenchmarkIncrementalUnpack(b *testing.B) {
	dir := benchRootfs(b)
	ctx := context.Background()
	base, security := filepath.Join(dir, "base"), filepath.Join(dir, "security")
	mBase, err := manifest.FromDirectory(ctx, base, manifest.DirOptions{})
	if err != nil {
		b.Fatal(err)
	}
	mSec, err := manifest.FromDirectory(ctx, security, manifest.DirOptions{})
	if err != nil {
		b.Fatal(err)
	}
	minBytes, files := changedContent(mBase, mSec)
	minBlocks := (minBytes + manifest.BlockSize - 1) / manifest.BlockSize
	const volMiB = 2048

	for range b.N {
		// The unpacker: base applied earlier (cache warm, as in the daemon), then the update.
		fs := newLoopFS(b, volMiB)
		cache := filepath.Join(b.TempDir(), "statcache")
		if _, err := Apply(ctx, fs.mnt, mBase, manifest.DirectorySource(base, mBase), Options{AllowDevices: true, StatCachePath: cache}); err != nil {
			b.Fatal(err)
		}
		fs.remount(b)
		fs.unmount(b)
		blocksBefore := blockDigests(b, fs.image)
		fs.mount(b)
		sectors := sectorsWritten(b, fs.dev)
		var res Result
		var plan *Plan
		// Prepare (scan and diff: the daemon does it before the provider
		// sends URLs) and Apply (fetch, patch, syncfs) are timed apart too.
		prepare := timed(b, func() {
			plan, err = Prepare(ctx, fs.mnt, mSec, Options{AllowDevices: true, StatCachePath: cache})
		})
		if err != nil {
			b.Fatal(err)
		}
		applyOnly := timed(b, func() { res, err = plan.Apply(ctx, manifest.DirectorySource(security, mSec)) })
		if err != nil {
			b.Fatal(err)
		}
		ours := prepare + applyOnly
		fs.unmount(b)
		deviceBytes := (sectorsWritten(b, fs.dev) - sectors) * 512
		blocks := changedBlocks(blocksBefore, blockDigests(b, fs.image))
		fs.mount(b)
		if d := diffManifests(withoutLostFound(scan(b, fs.mnt)), mSec); d != "" {
			b.Fatalf("unpacked tree differs from the security tree: %s", d)
		}

		// The same update trusting the manifest the volume is known to hold
		// (the daemon's clean stream): no scan of the tree.
		fsT0 := newLoopFS(b, volMiB)
		cacheT := filepath.Join(b.TempDir(), "statcache")
		if _, err := Apply(ctx, fsT0.mnt, mBase, manifest.DirectorySource(base, mBase), Options{AllowDevices: true, StatCachePath: cacheT}); err != nil {
			b.Fatal(err)
		}
		fsT0.remount(b)
		var resT Result
		var prepareT time.Duration
		trusted := timed(b, func() {
			prepareT = timed(b, func() {
				plan, err = Prepare(ctx, fsT0.mnt, mSec, Options{AllowDevices: true, StatCachePath: cacheT, Current: mBase, Logger: benchLogger(b)})
			})
			if err == nil {
				resT, err = plan.Apply(ctx, manifest.DirectorySource(security, mSec))
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		if !resT.TrustedCurrent {
			b.Fatalf("trusted patch scanned the tree: %s", resT.CurrentNotTrusted)
		}
		fsT0.remount(b)
		if d := diffManifests(withoutLostFound(scan(b, fsT0.mnt)), mSec); d != "" {
			b.Fatalf("trusted patch: unpacked tree differs from the security tree: %s", d)
		}

		// The same update without a stat cache (first patch after a restart).
		fsCold := newLoopFS(b, volMiB)
		if _, err := Apply(ctx, fsCold.mnt, mBase, manifest.DirectorySource(base, mBase), Options{AllowDevices: true}); err != nil {
			b.Fatal(err)
		}
		fsCold.remount(b)
		cold := timed(b, func() {
			_, err = Apply(ctx, fsCold.mnt, mSec, manifest.DirectorySource(security, mSec), Options{AllowDevices: true})
		})
		if err != nil {
			b.Fatal(err)
		}

		// Peer: rsync of the same trees onto a copy of base.
		fsR := newLoopFS(b, volMiB)
		runCmd(b, "rsync", "-aHAX", base+"/", fsR.mnt+"/")
		fsR.remount(b)
		rsync := timed(b, func() {
			runCmd(b, "rsync", "-aHAX", "--delete", security+"/", fsR.mnt+"/")
			runCmd(b, "sync", "-f", fsR.mnt)
		})

		// Peer: extracting the whole tarball onto a fresh file system.
		fsT := newLoopFS(b, volMiB)
		tarTime := timed(b, func() {
			runCmd(b, "tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", filepath.Join(dir, "security.tar"), "-C", fsT.mnt)
			runCmd(b, "sync", "-f", fsT.mnt)
		})

		b.ReportMetric(ours.Seconds(), "unpack_s")
		b.ReportMetric(ours.Seconds()/rsync.Seconds(), "ratio_vs_rsync")
		b.ReportMetric(ours.Seconds()/tarTime.Seconds(), "ratio_vs_tar")
		b.ReportMetric(applyOnly.Seconds()/tarTime.Seconds(), "apply_only_ratio_vs_tar")
		b.ReportMetric(cold.Seconds()/rsync.Seconds(), "cold_ratio_vs_rsync")
		b.ReportMetric(trusted.Seconds(), "trusted_unpack_s")
		b.ReportMetric(trusted.Seconds()/rsync.Seconds(), "trusted_ratio_vs_rsync")
		b.ReportMetric(trusted.Seconds()/tarTime.Seconds(), "trusted_ratio_vs_tar")
		b.ReportMetric(float64(deviceBytes)/float64(minBytes), "device_bytes/changed_bytes")
		b.ReportMetric(float64(blocks)/float64(minBlocks), "blocks/min_blocks")
		b.Logf("security update: %d changed files, %d bytes (%d blocks of 512 KiB minimum)", files, minBytes, minBlocks)
		b.Logf("unpacker %s = prepare %s + apply %s (cold stat cache %s), rsync -aHAX --delete %s, tar -x onto fresh fs %s",
			ours, prepare, applyOnly, cold, rsync, tarTime)
		b.Logf("unpacker result %+v", res)
		b.Logf("trusting the current manifest: %s = prepare %s + apply %s; result %+v", trusted, prepareT, trusted-prepareT, resT)
		b.Logf("device bytes written %d (%.2fx changed bytes); 512 KiB blocks changed %d (%.2fx minimum)",
			deviceBytes, float64(deviceBytes)/float64(minBytes), blocks, float64(blocks)/float64(minBlocks))
	}
}

// BenchmarkSHA256SingleCore is the peer of the manifest benchmarks: raw
// SHA-256 throughput of one core on in-memory data.
func BenchmarkSHA256SingleCore(b *testing.B) {
	buf := bytes.Repeat([]byte("autoami"), (64<<20)/7)
	b.SetBytes(int64(len(buf)))
	for range b.N {
		sha256.Sum256(buf)
	}
}

// benchLogger sends the engine's summary (with its phase timings) to the
// benchmark's log, shown with -v.
func benchLogger(b *testing.B) *slog.Logger {
	return slog.New(slog.NewTextHandler(benchLogWriter{b}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type benchLogWriter struct{ b *testing.B }

func (w benchLogWriter) Write(p []byte) (int, error) {
	w.b.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
