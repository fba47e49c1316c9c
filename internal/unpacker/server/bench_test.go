package server_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/client"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// benchTrees is the directory of fixtures/make-rootfs's trees (base/ and
// security/: Debian bookworm before and after its security updates):
// $AUTOAMI_BENCH_ROOTFS, else $AUTOAMI_CACHE_DIR/make-rootfs, else
// <repo>/.cache/autoami/make-rootfs.
func benchTrees(b *testing.B) string {
	dir := os.Getenv("AUTOAMI_BENCH_ROOTFS")
	if dir == "" && os.Getenv("AUTOAMI_CACHE_DIR") != "" {
		dir = filepath.Join(os.Getenv("AUTOAMI_CACHE_DIR"), "make-rootfs")
	}
	if dir == "" {
		dir, _ = filepath.Abs("../../../.cache/autoami/make-rootfs")
	}
	if _, err := os.Stat(filepath.Join(dir, "security")); err != nil {
		b.Skipf("no make-rootfs trees in %s (build them with fixtures/make-rootfs DIR and set AUTOAMI_BENCH_ROOTFS=DIR)", dir)
	}
	return dir
}

// BenchmarkSecurityUpdate measures an unpack over the API of the real
// security update (base → security) against the engine's own
// `unpacker apply` of the same update, both on a loop-mounted ext4 volume
// brought to base first, both with warm scan caches. Reported: seconds of
// each, their ratio (the daemon's overhead: manifest and object fetching
// over HTTP, the API round trips), and objects missing vs fetched.
func BenchmarkSecurityUpdate(b *testing.B) {
	trees := benchTrees(b)
	w := newWorld(b)
	content := newContentServer(b)
	base, security := filepath.Join(trees, "base"), filepath.Join(trees, "security")
	revBase, _ := content.addTree(base)
	revSec, _ := content.addTree(security)
	ctx := context.Background()

	// The daemon's volume: a whole-disk ext4, as a base snapshot may be
	// (origin "snapshot": no boot loader; minbase trees carry no kernel).
	const size = 4 << 30
	volFile := filepath.Join(w.localDir, testVolume+".img")
	mkfsFile(b, volFile, size)
	p := w.start("")
	c := p.client(w)
	if _, err := c.AttachDevice(ctx, wire.AttachDeviceRequest{VolumeID: testVolume}); err != nil {
		b.Fatal(err)
	}
	if _, err := c.AssociateStream(ctx, wire.AssociateStreamRequest{Stream: testStream, VolumeID: testVolume, Origin: wire.OriginSnapshot}); err != nil {
		b.Fatal(err)
	}
	unpack := func(rev string) wire.UnpackStatus {
		st, err := c.Unpack(ctx, wire.UnpackRequest{Stream: testStream, Revision: rev, ManifestURL: content.manifestURL(rev)}, content.sign, client.UnpackOptions{})
		if err != nil {
			b.Fatal(err)
		}
		return st
	}

	// The peer: `unpacker apply` onto its own loop-mounted ext4.
	bin := filepath.Join(w.dir, "unpacker")
	if out, err := exec.Command("go", "build", "-o", bin, "../../../cmd/unpacker").CombinedOutput(); err != nil {
		b.Fatalf("build unpacker: %v: %s", err, out)
	}
	peerFile := filepath.Join(w.localDir, "peer.img") // detached by the world's cleanup
	mkfsFile(b, peerFile, size)
	peerRoot := mountLoop(b, peerFile)
	rootCache, srcCache := filepath.Join(w.dir, "peer-root.cache"), filepath.Join(w.dir, "peer-src.cache")
	apply := func(src string) time.Duration {
		start := time.Now()
		out, err := exec.Command(bin, "apply", "-allow-devices", "-cache", rootCache, "-source-cache", srcCache, src, peerRoot).CombinedOutput()
		if err != nil {
			b.Fatalf("unpacker apply %s: %v: %s", src, err, out)
		}
		return time.Since(start)
	}

	var apiTotal, applyTotal time.Duration
	var missing, fetched int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		unpack(revBase)
		apply(base)
		apply(security) // warm the peer's source cache for security too
		apply(base)
		content.takeFetches()
		b.StartTimer()

		start := time.Now()
		st := unpack(revSec)
		apiTotal += time.Since(start)
		missing += st.MissingObjects
		fetched += int64(len(content.takeFetches()))

		b.StopTimer()
		applyTotal += apply(security)
		b.StartTimer()
	}
	mountDir := filepath.Join(w.stateDir, "mnt", testVolume)
	if got := digestOf(b, mountDir); got != revSec {
		b.Fatalf("daemon volume holds %s, want security %s", got, revSec)
	}
	n := float64(b.N)
	b.ReportMetric(apiTotal.Seconds()/n, "api-s/op")
	b.ReportMetric(applyTotal.Seconds()/n, "apply-s/op")
	b.ReportMetric(apiTotal.Seconds()/applyTotal.Seconds(), "api/apply")
	b.ReportMetric(float64(missing)/n, "objects-missing/op")
	b.ReportMetric(float64(fetched)/n, "objects-fetched/op")
}

func mkfsFile(b *testing.B, file string, size int64) {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		b.Fatal(err)
	}
	f.Close()
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-E", "nodiscard,lazy_itable_init=0", file).CombinedOutput(); err != nil {
		b.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
}

// mountLoop attaches file to a loop device and mounts it; both are undone
// in cleanup (the unmount here, the loop device by the world's cleanup).
func mountLoop(b *testing.B, file string) string {
	out, err := exec.Command("losetup", "--find", "--show", file).CombinedOutput()
	if err != nil {
		b.Fatalf("losetup: %v: %s", err, out)
	}
	loop := strings.TrimSpace(string(out))
	dir := b.TempDir()
	if err := unix.Mount(loop, dir, "ext4", 0, ""); err != nil {
		b.Fatalf("mount %s: %v", loop, err)
	}
	b.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			b.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}
