package imagestream

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestManifestCacheSeesAReplacedFile: a tarball replaced by another file of
// the same path, size and mtime (a rebuild whose tool puts the mtime back)
// is read again, not served from the manifest cache: the cache key holds
// the file's identity (inode, device, change time).
func TestManifestCacheSeesAReplacedFile(t *testing.T) {
	ctx := context.Background()
	dir, cache := t.TempDir(), t.TempDir()
	tarball := filepath.Join(dir, "rootfs.tar")
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	write := func(path, body string) {
		t.Helper()
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := tw.WriteHeader(&tar.Header{Name: "motd", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	write(tarball, "one")
	src := Source{Kind: KindTree, Tarball: tarball}
	first, err := Load(ctx, src, LoadOptions{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	again, err := Load(ctx, src, LoadOptions{CacheDir: cache})
	if err != nil || again.Revision != first.Revision {
		t.Fatalf("unchanged tarball: %v, revision %s vs %s", err, again.Revision, first.Revision)
	}
	// Written beside it and renamed over it: a new inode while the old one
	// still exists, same size and mtime.
	next := filepath.Join(dir, "next.tar")
	write(next, "two")
	if err := os.Rename(next, tarball); err != nil {
		t.Fatal(err)
	}
	replaced, err := Load(ctx, src, LoadOptions{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if replaced.Revision == first.Revision {
		t.Fatal("a replaced tarball of the same size and mtime was served from the manifest cache")
	}
}
