package patch

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
)

const bs = manifest.BlockSize

// rawImages returns two images of 9.5 blocks: B changes some of A's blocks,
// moves one, zeroes one, and repeats content, with a short last block.
func rawImages() (a, b []byte) {
	size := 9*bs + bs/2
	a = make([]byte, size)
	for i := 0; i < 9; i++ {
		if i == 4 {
			continue // a zero block
		}
		copy(a[i*bs:], big(bs, byte(i+1)))
	}
	copy(a[9*bs:], big(bs/2, 42))
	b = bytes.Clone(a)
	copy(b[1*bs:2*bs], big(bs, 100)) // new content
	copy(b[2*bs:3*bs], a[3*bs:4*bs]) // content of a block that itself changes...
	copy(b[3*bs:4*bs], big(bs, 101)) // ...here
	copy(b[5*bs:6*bs], a[8*bs:9*bs]) // a copy of a block that stays
	clear(b[6*bs : 7*bs])            // zeroed
	copy(b[9*bs:], big(bs/2, 43))    // short last block changes
	return a, b
}

func rawManifest(t *testing.T, img []byte) *manifest.Manifest {
	t.Helper()
	m, err := manifest.FromRawImage(context.Background(), bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestApplyRawWritesOnlyChangedBlocks(t *testing.T) {
	requireRoot(t)
	fs := newLoopFS(t, 16) // only its loop device matters: unmount and write the device raw
	fs.unmount(t)
	a, b := rawImages()
	mA, mB := rawManifest(t, a), rawManifest(t, b)
	ctx := context.Background()
	if _, err := ApplyRaw(ctx, fs.dev, mA, manifest.RawImageSource(bytes.NewReader(a), mA), Options{}); err != nil {
		t.Fatal(err)
	}
	res, err := ApplyRaw(ctx, fs.dev, mB, manifest.RawImageSource(bytes.NewReader(b), mB), Options{})
	if err != nil {
		t.Fatal(err)
	}
	requireDevice(t, fs.dev, b)
	// Blocks 1, 2, 3, 5, 6 and 9 differ; only 1, 3 and 9 need fetching (2
	// comes from old block 3, kept before it is overwritten; 5 from block 8;
	// 6 is zeros).
	if res.BlocksWritten != 6 || res.ObjectsFetched != 3 || res.ObjectsReused != 1 {
		t.Errorf("result %+v: want 6 blocks written, 3 fetched, 1 reused", res)
	}
	// An unchanged image writes nothing.
	res, err = ApplyRaw(ctx, fs.dev, mB, nil, Options{})
	if err != nil || res.BlocksWritten != 0 {
		t.Errorf("second apply: %+v, %v; want nothing written", res, err)
	}
}

func TestApplyRawToImageFileInterrupted(t *testing.T) {
	a, b := rawImages()
	mA, mB := rawManifest(t, a), rawManifest(t, b)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ApplyRaw(ctx, path, mA, manifest.RawImageSource(bytes.NewReader(a), mA), Options{}); err != nil {
		t.Fatal(err)
	}
	requireDevice(t, path, a)
	for _, p := range []Point{PointScanned, PointStaged, PointFetched, PointCreated, PointSynced} {
		_, err := ApplyRaw(ctx, path, mB, manifest.RawImageSource(bytes.NewReader(b), mB), Options{
			Hook: func(q Point, _ string) error {
				if q == p {
					return errStop
				}
				return nil
			}})
		if !errors.Is(err, ErrInterrupted) {
			t.Fatalf("interrupt at %s: %v", p, err)
		}
		if _, err := ApplyRaw(ctx, path, mB, manifest.RawImageSource(bytes.NewReader(b), mB), Options{}); err != nil {
			t.Fatal(err)
		}
		requireDevice(t, path, b)
		if _, err := ApplyRaw(ctx, path, mA, manifest.RawImageSource(bytes.NewReader(a), mA), Options{}); err != nil {
			t.Fatal(err)
		}
		requireDevice(t, path, a)
	}
}

func requireDevice(t *testing.T, path string, want []byte) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make([]byte, len(want))
	if _, err := f.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(want); i += bs {
		end := min(i+bs, len(want))
		if !bytes.Equal(got[i:end], want[i:end]) {
			t.Fatalf("%s: block %d differs", path, i/bs)
		}
	}
}
