package imagestream

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// writeHardLinkTarball writes a tarball whose data member is first and
// holds data, and whose second member is a hard link to it, as tar archives
// a group of hard links.
func writeHardLinkTarball(t *testing.T, path, dataName, linkName, data string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, hdr := range []*tar.Header{
		{Name: dataName, Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(data))},
		{Name: linkName, Typeflag: tar.TypeLink, Mode: 0o755, Linkname: dataName},
	} {
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := io.WriteString(tw, data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The upload reads a tarball's objects through Content.Objects. A hard-linked
// file's data is in the member tar archived first, whether or not that
// member's name sorts before the link's (the manifest gives the data to the
// name that sorts first); every object must be served either way, from a
// fresh manifest and from the manifest cache.
func TestTarballObjectsWithHardLinks(t *testing.T) {
	for _, tc := range []struct{ name, data, link string }{
		{"link sorts before data", "./usr/bin/uncompress", "./usr/bin/gunzip"},
		{"data sorts before link", "./usr/bin/gunzip", "./usr/bin/uncompress"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir, cache := t.TempDir(), t.TempDir()
			path := filepath.Join(dir, "rootfs.tar")
			body := "#!/bin/sh\nexec gzip -d \"$@\"\n"
			writeHardLinkTarball(t, path, tc.data, tc.link, body)
			for _, pass := range []string{"fresh manifest", "cached manifest"} {
				c, err := Load(ctx, Source{Kind: KindTree, Tarball: path}, LoadOptions{CacheDir: cache})
				if err != nil {
					t.Fatalf("%s: %v", pass, err)
				}
				if c.Summary.Regular != 1 || c.Summary.HardLinks != 1 {
					t.Fatalf("%s: summary %+v, want one file and one hard link", pass, c.Summary)
				}
				store, err := objects.OpenLocalStore(filepath.Join(t.TempDir(), "store"))
				if err != nil {
					t.Fatal(err)
				}
				if err := c.Objects.Fetch(ctx, c.Manifest.Objects(), store); err != nil {
					t.Fatalf("%s: read the objects to upload: %v", pass, err)
				}
				if ok, err := store.Has(ctx, objects.Sum([]byte(body))); err != nil || !ok {
					t.Fatalf("%s: the linked file's object was not served (%v)", pass, err)
				}
				c.Close()
			}
		})
	}
}
