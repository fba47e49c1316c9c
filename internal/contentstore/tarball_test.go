package contentstore

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// An upload from a tarball sends a hard-linked file's object whichever of
// its names sorts first: tar keeps the data in the member it archived first,
// the manifest gives it to the name that sorts first.
func TestUploadTarballWithHardLinks(t *testing.T) {
	for _, tc := range []struct{ name, data, link string }{
		{"link sorts before data", "./etc/three", "./bin/one"},
		{"data sorts before link", "./bin/one", "./etc/three"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			linked, plain := content(1, 3000), content(2, 2000)
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, m := range []struct {
				hdr  tar.Header
				data []byte
			}{
				{tar.Header{Name: tc.data, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(linked))}, linked},
				{tar.Header{Name: tc.link, Typeflag: tar.TypeLink, Mode: 0o644, Linkname: tc.data}, nil},
				{tar.Header{Name: "./etc/plain", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(plain))}, plain},
			} {
				if err := tw.WriteHeader(&m.hdr); err != nil {
					t.Fatal(err)
				}
				if _, err := tw.Write(m.data); err != nil {
					t.Fatal(err)
				}
			}
			if err := tw.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "rootfs.tar")
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := manifest.FromTar(e.ctx, bytes.NewReader(buf.Bytes()), manifest.TarOptions{})
			if err != nil {
				t.Fatal(err)
			}
			s := e.store(Options{})
			missing, err := s.Missing(e.ctx, m.Objects())
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.Upload(e.ctx, manifest.TarSource(path, m), missing)
			if err != nil {
				t.Fatalf("upload from the tarball: %v", err)
			}
			if res.Objects != 2 || res.Bytes != int64(len(linked)+len(plain)) {
				t.Fatalf("upload result %+v, want 2 objects of %d bytes", res, len(linked)+len(plain))
			}
			for _, b := range [][]byte{linked, plain} {
				key := s.ObjectKey(objects.Sum(b))
				if got := e.get(key); !bytes.Equal(got, b) {
					t.Fatalf("stored object %s differs", key)
				}
			}
		})
	}
}
