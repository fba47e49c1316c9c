package manifest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// benchTree is DIR/large from scripts/bench-rootfs (at least 1 GiB).
func benchTree(b *testing.B) string {
	dir := os.Getenv("AUTOAMI_BENCH_ROOTFS")
	if dir == "" {
		b.Skip("AUTOAMI_BENCH_ROOTFS is not set: build the trees with scripts/bench-rootfs DIR (make bench does)")
	}
	tree := filepath.Join(dir, "large")
	if _, err := os.Stat(tree); err != nil {
		b.Fatalf("benchmark tree missing (run scripts/bench-rootfs %s): %v", dir, err)
	}
	return tree
}

// sha256Throughput measures one core hashing in-memory data, in bytes/s.
func sha256Throughput() float64 {
	buf := bytes.Repeat([]byte("autoami!"), 8<<20) // 64 MiB
	start := time.Now()
	for range 4 {
		sha256.Sum256(buf)
	}
	return float64(4*len(buf)) / time.Since(start).Seconds()
}

// BenchmarkManifestCold builds the manifest of the large tree without a stat
// cache (every file hashed; the page cache is warmed by a first pass so the
// figure is hashing, not the disk) and compares its throughput per core with
// raw single-core SHA-256 measured in the same run.
func BenchmarkManifestCold(b *testing.B) {
	tree := benchTree(b)
	ctx := context.Background()
	m, err := FromDirectory(ctx, tree, DirOptions{}) // warm the page cache
	if err != nil {
		b.Fatal(err)
	}
	size := m.Summarize().Bytes
	b.SetBytes(size)
	b.ResetTimer()
	var elapsed time.Duration
	for range b.N {
		start := time.Now()
		if _, err := FromDirectory(ctx, tree, DirOptions{}); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
	}
	b.StopTimer()
	rate := float64(size) * float64(b.N) / elapsed.Seconds()
	peer := sha256Throughput()
	// One worker against one core: the per-core efficiency, whatever other
	// load shares the machine's cores.
	start := time.Now()
	if _, err := FromDirectory(ctx, tree, DirOptions{Workers: 1}); err != nil {
		b.Fatal(err)
	}
	single := float64(size) / time.Since(start).Seconds()
	peer = (peer + sha256Throughput()) / 2
	b.ReportMetric(single/peer, "one_worker_ratio")
	cores := runtime.GOMAXPROCS(0)
	b.ReportMetric(rate/1e6, "manifest_MB/s")
	b.ReportMetric(peer/1e6, "sha256_1core_MB/s")
	b.ReportMetric(rate/float64(cores)/peer, "per_core_ratio")
	b.Logf("%d bytes in %d entries: %.0f MB/s on %d cores, %.0f MB/s with one worker; single-core SHA-256 %.0f MB/s (load average shares the cores)",
		size, len(m.Entries), rate/1e6, cores, single/1e6, peer/1e6)
}

// BenchmarkManifestWarm rebuilds the manifest of the unchanged large tree
// with a warm stat cache: nothing is read but metadata.
func BenchmarkManifestWarm(b *testing.B) {
	tree := benchTree(b)
	ctx := context.Background()
	cache := filepath.Join(b.TempDir(), "statcache")
	m, err := FromDirectory(ctx, tree, DirOptions{StatCachePath: cache})
	if err != nil {
		b.Fatal(err)
	}
	// The bench tree is older than the racy window, so everything is cached.
	b.ResetTimer()
	var elapsed time.Duration
	for range b.N {
		start := time.Now()
		if _, err := FromDirectory(ctx, tree, DirOptions{StatCachePath: cache}); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
	}
	b.StopTimer()
	per := elapsed / time.Duration(b.N)
	b.ReportMetric(per.Seconds(), "rescan_s")
	b.Logf("warm rescan of %d entries, %d bytes: %s", len(m.Entries), m.Summarize().Bytes, per)
}
