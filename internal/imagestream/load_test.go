package imagestream

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadDirectoryAndCache(t *testing.T) {
	ctx := context.Background()
	dir, cache := t.TempDir(), t.TempDir()
	writeFiles(t, dir, map[string]string{"etc/a": "one", "etc/b": "two"})
	src := Source{Kind: KindTree, Directory: dir}
	first, err := Load(ctx, src, LoadOptions{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if first.Summary.Regular != 2 || first.Revision != first.ManifestDigest.String() {
		t.Fatalf("summary %+v revision %s digest %s", first.Summary, first.Revision, first.ManifestDigest)
	}
	if matches, _ := filepath.Glob(filepath.Join(cache, "statcache", "*.statcache")); len(matches) != 1 {
		t.Fatalf("stat cache files: %v", matches)
	}
	again, err := Load(ctx, src, LoadOptions{CacheDir: cache})
	if err != nil || again.Revision != first.Revision {
		t.Fatalf("unchanged tree: %v, revision %s vs %s", err, again.Revision, first.Revision)
	}
	// Same size, new content: the stat cache must not hide the change.
	time.Sleep(10 * time.Millisecond)
	writeFiles(t, dir, map[string]string{"etc/a": "uno"})
	changed, err := Load(ctx, src, LoadOptions{CacheDir: cache})
	if err != nil || changed.Revision == first.Revision {
		t.Fatalf("changed tree kept revision %s (%v)", changed.Revision, err)
	}
}

func TestLoadRawImageCacheFollowsTheFile(t *testing.T) {
	ctx := context.Background()
	img, cache := filepath.Join(t.TempDir(), "disk.img"), t.TempDir()
	data := make([]byte, 3*manifest.BlockSize)
	if err := os.WriteFile(img, data, 0o644); err != nil {
		t.Fatal(err)
	}
	src := Source{Kind: KindRawImage, RawImage: img}
	first, err := Load(ctx, src, LoadOptions{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if first.Summary.Bytes != int64(len(data)) {
		t.Fatalf("size %d", first.Summary.Bytes)
	}
	if matches, _ := filepath.Glob(filepath.Join(cache, "manifests", "*.manifest")); len(matches) != 1 {
		t.Fatalf("manifest cache files: %v", matches)
	}
	data[manifest.BlockSize] = 1
	time.Sleep(10 * time.Millisecond)
	if err := os.WriteFile(img, data, 0o644); err != nil {
		t.Fatal(err)
	}
	second, err := Load(ctx, src, LoadOptions{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if second.Revision == first.Revision {
		t.Fatal("a changed image was served from the manifest cache")
	}
}

func TestLayeredRevision(t *testing.T) {
	ctx := context.Background()
	base := Source{Kind: KindLayered, BaseImageName: "al2023-1"}
	plain, err := Load(ctx, base, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if plain.Summary.Entries != 1 || len(plain.Manifest.Objects()) != 0 {
		t.Fatalf("empty overlay: %+v", plain.Summary)
	}
	seen := map[string]string{plain.Revision: "plain"}
	for name, src := range map[string]Source{
		"other base": {Kind: KindLayered, BaseImageName: "al2023-2"},
		"trigger":    {Kind: KindLayered, BaseImageName: "al2023-1", RebuildTrigger: "x"},
	} {
		c, err := Load(ctx, src, LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if prev, dup := seen[c.Revision]; dup {
			t.Errorf("%s has the revision of %s", name, prev)
		}
		seen[c.Revision] = name
	}
	again, _ := Load(ctx, base, LoadOptions{})
	if again.Revision != plain.Revision {
		t.Error("layered revision is not stable")
	}
	if _, err := Load(ctx, Source{Kind: KindLayered}, LoadOptions{}); err == nil {
		t.Error("a layered stream without a base image name loaded")
	}
}

func TestLoadErrorsNameTheSource(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, []byte("x"), 0o644)
	for _, tc := range []struct {
		src  Source
		want string
	}{
		{Source{Kind: KindTree, Directory: "/no/such/dir"}, "root_filesystem.directory /no/such/dir: cannot read the directory"},
		{Source{Kind: KindTree, Directory: file}, "root_filesystem.directory " + file + ": not a directory"},
		{Source{Kind: KindTree, Tarball: file}, "root_filesystem.tarball " + file},
		{Source{Kind: KindLayered, BaseImageName: "b", Tarball: "/no/overlay.tar"}, "overlay.tarball /no/overlay.tar"},
		{Source{Kind: KindRawImage, RawImage: "/no/disk.img"}, "raw_image.path /no/disk.img"},
		{Source{Kind: KindTree}, "no source"},
	} {
		_, err := Load(ctx, tc.src, LoadOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.src, err, tc.want)
		}
	}
}
