package imagestream

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkPlanUnchangedTree measures what a terraform plan of an unchanged
// stream costs: Load of a >= 1 GiB root filesystem whose stat cache is warm
// (the brief's target: well under a second, ≤ 0.5 s). It reports the warm
// time against a cold Load of the same tree, measured in the same run.
// Trees come from scripts/bench-rootfs (make bench sets AUTOAMI_BENCH_ROOTFS).
func BenchmarkPlanUnchangedTree(b *testing.B) {
	trees := os.Getenv("AUTOAMI_BENCH_ROOTFS")
	if trees == "" {
		b.Skip("AUTOAMI_BENCH_ROOTFS not set (make bench builds the trees)")
	}
	dir := filepath.Join(trees, "large")
	if _, err := os.Stat(dir); err != nil {
		b.Skipf("no large tree: %v", err)
	}
	ctx := context.Background()
	opts := LoadOptions{CacheDir: b.TempDir()}
	src := Source{Kind: KindTree, Directory: dir}
	start := time.Now()
	cold, err := Load(ctx, src, opts)
	if err != nil {
		b.Fatal(err)
	}
	coldTime := time.Since(start)
	b.ResetTimer()
	var warm time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		c, err := Load(ctx, src, opts)
		if err != nil {
			b.Fatal(err)
		}
		warm += time.Since(start)
		if c.Revision != cold.Revision {
			b.Fatalf("warm revision %s differs from cold %s", c.Revision, cold.Revision)
		}
	}
	perOp := warm / time.Duration(b.N)
	b.ReportMetric(float64(cold.Summary.Bytes)/(1<<30), "GiB")
	b.ReportMetric(perOp.Seconds(), "warm-s")
	b.ReportMetric(coldTime.Seconds(), "cold-s")
	b.ReportMetric(perOp.Seconds()/coldTime.Seconds(), "warm/cold")
}
