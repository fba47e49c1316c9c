package patch

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// badEnv is the world of one bad-input case: a root holding a small tree
// with a symlink pointing outside it, and an outside directory that must
// never change.
type badEnv struct {
	ctx     context.Context
	root    string
	outside string
}

func dirEntry(p string) manifest.Entry {
	return manifest.Entry{Path: p, Type: manifest.TypeDirectory, Mode: 0o755}
}

func fileEntry(p string, content []byte) manifest.Entry {
	return manifest.Entry{Path: p, Type: manifest.TypeRegular, Mode: 0o644, Size: int64(len(content)),
		Digest: sha256.Sum256(content)}
}

// treeOf assembles a manifest from entries in the given order (not sorted:
// some cases are about order).
func treeOf(entries ...manifest.Entry) *manifest.Manifest {
	return &manifest.Manifest{Kind: manifest.KindTree, Entries: append([]manifest.Entry{dirEntry(".")}, entries...)}
}

// memSource serves fixed bytes for digests, right or wrong.
type memSource map[objects.Digest][]byte

func (s memSource) Fetch(ctx context.Context, want []objects.Want, sink objects.Sink) error {
	for _, w := range want {
		b, ok := s[w.Digest]
		if !ok {
			return objects.ErrNotFound
		}
		if err := sink.Put(ctx, w, bytes.NewReader(b)); err != nil {
			return err
		}
	}
	return nil
}

type tarMember struct {
	hdr  tar.Header
	body []byte
}

// tarball writes members (sizes taken from the header, bodies as given).
func tarball(t *testing.T, members ...tarMember) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		h := m.hdr
		if h.Typeflag == tar.TypeReg && h.Size == 0 {
			h.Size = int64(len(m.body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("tar header %s: %v", h.Name, err)
		}
		if len(m.body) > 0 {
			tw.Write(m.body)
		}
	}
	tw.Flush()
	return buf.Bytes()
}

func fromTar(env badEnv, b []byte) error {
	_, err := manifest.FromTar(env.ctx, bytes.NewReader(b), manifest.TarOptions{})
	return err
}

func applyTo(env badEnv, m *manifest.Manifest, src objects.Source) error {
	_, err := Apply(env.ctx, env.root, m, src, Options{})
	return err
}

func TestBadInputIsRejectedAndWritesNothing(t *testing.T) {
	requireRoot(t)
	content := []byte("hello world\n")
	good := fileEntry("f", content)
	cases := []struct {
		name    string
		run     func(t *testing.T, env badEnv) error
		wantErr string
	}{
		{"dot-dot path", func(t *testing.T, env badEnv) error {
			return applyTo(env, treeOf(fileEntry("a/../../outside/x", content)), nil)
		}, `has a ".." component`},
		{"absolute path", func(t *testing.T, env badEnv) error {
			return applyTo(env, treeOf(fileEntry("/etc/passwd", content)), nil)
		}, "is absolute"},
		{"NUL in name", func(t *testing.T, env badEnv) error {
			return applyTo(env, treeOf(fileEntry("a\x00b", content)), nil)
		}, "NUL byte"},
		{"empty name", func(t *testing.T, env badEnv) error {
			return applyTo(env, treeOf(fileEntry("", content)), nil)
		}, "empty path"},
		{"empty component", func(t *testing.T, env badEnv) error {
			return applyTo(env, treeOf(dirEntry("a"), fileEntry("a//b", content)), nil)
		}, "empty component"},
		{"duplicate entries", func(t *testing.T, env badEnv) error {
			return applyTo(env, treeOf(good, good), nil)
		}, "duplicate path"},
		{"entries out of order", func(t *testing.T, env badEnv) error {
			return applyTo(env, treeOf(fileEntry("b", content), fileEntry("a", content)), nil)
		}, "out of canonical order"},
		{"missing parent directory", func(t *testing.T, env badEnv) error {
			return applyTo(env, treeOf(fileEntry("nodir/x", content)), nil)
		}, `parent directory "nodir" is missing`},
		{"entry written through a symlink", func(t *testing.T, env badEnv) error {
			return applyTo(env, treeOf(manifest.Entry{Path: "esc", Type: manifest.TypeSymlink, Mode: 0o777, Link: env.outside},
				fileEntry("esc/pwned", content)), nil)
		}, `parent "esc" is a symlink`},
		{"hard link to a missing target", func(t *testing.T, env badEnv) error {
			return applyTo(env, treeOf(manifest.Entry{Path: "l", Type: manifest.TypeHardLink, Link: "nothere"}), nil)
		}, `hard link target "nothere" is missing`},
		{"hard link to outside", func(t *testing.T, env badEnv) error {
			return applyTo(env, treeOf(manifest.Entry{Path: "l", Type: manifest.TypeHardLink, Link: "../outside/secret"}), nil)
		}, `hard link target: path "../outside/secret" has a ".." component`},
		{"hard link to a directory", func(t *testing.T, env badEnv) error {
			return applyTo(env, treeOf(dirEntry("d"), manifest.Entry{Path: "l", Type: manifest.TypeHardLink, Link: "d"}), nil)
		}, `hard link target "d" is a directory`},
		{"device node from an untrusted source", func(t *testing.T, env badEnv) error {
			return applyTo(env, treeOf(manifest.Entry{Path: "sda", Type: manifest.TypeBlockDevice, Mode: 0o666, DevMajor: 8}), nil)
		}, "block device nodes are not allowed"},
		{"reserved staging name", func(t *testing.T, env badEnv) error {
			return applyTo(env, treeOf(dirEntry(StagingDir)), nil)
		}, "reserved"},
		{"mode with file type bits", func(t *testing.T, env badEnv) error {
			e := good
			e.Mode = 0o100644
			return applyTo(env, treeOf(e), nil)
		}, "bits outside 07777"},
		{"unknown xattr namespace", func(t *testing.T, env badEnv) error {
			e := good
			e.Xattrs = []manifest.Xattr{{Name: "weird.attr", Value: []byte("x")}}
			return applyTo(env, treeOf(e), nil)
		}, `unknown namespace "weird"`},
		{"user xattr on a symlink", func(t *testing.T, env badEnv) error {
			return applyTo(env, treeOf(manifest.Entry{Path: "s", Type: manifest.TypeSymlink, Mode: 0o777, Link: "x",
				Xattrs: []manifest.Xattr{{Name: "user.a", Value: []byte("x")}}}), nil)
		}, "user.* attributes exist only on regular files and directories"},
		{"gigantic declared size", func(t *testing.T, env badEnv) error {
			e := good
			e.Size = objects.MaxObjectSize + 1
			return applyTo(env, treeOf(e), nil)
		}, "outside 0.."},
		{"size disagrees with content", func(t *testing.T, env badEnv) error {
			e := good
			e.Size = int64(len(content)) + 5
			return applyTo(env, treeOf(e), memSource{e.Digest: content})
		}, "truncated"},
		{"object whose hash does not match", func(t *testing.T, env badEnv) error {
			wrong := bytes.ToUpper(content)
			return applyTo(env, treeOf(good), memSource{good.Digest: wrong})
		}, "content hashes to"},
		{"truncated download", func(t *testing.T, env badEnv) error {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "12")
				w.Write(content[:5])
			}))
			defer srv.Close()
			src := objects.NewURLSource(objects.NewHTTPFetcher(objects.FetcherOptions{RetryMax: 1}), 2)
			src.Supply(map[objects.Digest]string{good.Digest: srv.URL + "/obj?X-Amz-Signature=secret"})
			src.Done()
			err := applyTo(env, treeOf(good), src)
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("error leaks the presigned URL's query: %v", err)
			}
			return err
		}, "truncated"},
		{"no URL for a missing object", func(t *testing.T, env badEnv) error {
			src := objects.NewURLSource(objects.NewHTTPFetcher(objects.FetcherOptions{}), 2)
			src.Done()
			return applyTo(env, treeOf(good), src)
		}, "no URL was supplied for 1 objects"},
		{"raw image manifest given to a tree patch", func(t *testing.T, env badEnv) error {
			return applyTo(env, &manifest.Manifest{Kind: manifest.KindRawImage,
				Image: &manifest.RawImage{Size: 1, Blocks: []objects.Digest{sha256.Sum256([]byte{0})}}}, nil)
		}, "raw image, not a file tree"},
		{"manifest that is not one", func(t *testing.T, env badEnv) error {
			_, err := manifest.Unmarshal([]byte("#!/bin/sh\necho not a manifest\n"))
			return err
		}, "bad magic"},
		{"truncated manifest", func(t *testing.T, env badEnv) error {
			b, err := treeOf(good).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			_, err = manifest.Unmarshal(b[:len(b)-7])
			return err
		}, "truncated"},
		{"manifest with trailing bytes", func(t *testing.T, env badEnv) error {
			b, err := treeOf(good).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			_, err = manifest.Unmarshal(append(b, 0))
			return err
		}, "trailing bytes"},
		{"tarball that is not one", func(t *testing.T, env badEnv) error {
			return fromTar(env, bytes.Repeat([]byte("definitely not a tar header "), 40))
		}, "not a tarball"},
		{"empty tarball", func(t *testing.T, env badEnv) error {
			return fromTar(env, nil)
		}, "not a tarball"},
		{"tarball member with ..", func(t *testing.T, env badEnv) error {
			return fromTar(env, tarball(t, tarMember{tar.Header{Name: "../../etc/cron.d/x", Typeflag: tar.TypeReg}, content}))
		}, `member 1 "../../etc/cron.d/x": path "../../etc/cron.d/x" has a ".." component`},
		{"tarball member with absolute path", func(t *testing.T, env badEnv) error {
			return fromTar(env, tarball(t, tarMember{tar.Header{Name: "/etc/shadow", Typeflag: tar.TypeReg}, content}))
		}, "is absolute"},
		{"tarball with a duplicate member", func(t *testing.T, env badEnv) error {
			m := tarMember{tar.Header{Name: "etc/motd", Typeflag: tar.TypeReg}, content}
			return fromTar(env, tarball(t, m, m))
		}, `member 2 "etc/motd": duplicate entry`},
		{"tarball writing through a symlink", func(t *testing.T, env badEnv) error {
			return fromTar(env, tarball(t,
				tarMember{tar.Header{Name: "etc", Typeflag: tar.TypeSymlink, Linkname: "/etc"}, nil},
				tarMember{tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg}, content}))
		}, `parent "etc" is a symlink`},
		{"tarball member under a regular file", func(t *testing.T, env badEnv) error {
			return fromTar(env, tarball(t,
				tarMember{tar.Header{Name: "a", Typeflag: tar.TypeReg}, content},
				tarMember{tar.Header{Name: "a/b", Typeflag: tar.TypeDir, Mode: 0o755}, nil}))
		}, `parent "a" is a regular file`},
		{"tarball directory replacing a file", func(t *testing.T, env badEnv) error {
			return fromTar(env, tarball(t,
				tarMember{tar.Header{Name: "a", Typeflag: tar.TypeReg}, content},
				tarMember{tar.Header{Name: "a/", Typeflag: tar.TypeDir, Mode: 0o755}, nil}))
		}, "duplicate entry"},
		{"tarball hard link to a missing target", func(t *testing.T, env badEnv) error {
			return fromTar(env, tarball(t, tarMember{tar.Header{Name: "l", Typeflag: tar.TypeLink, Linkname: "missing"}, nil}))
		}, `hard link to "missing", which is not an earlier member`},
		{"tarball hard link to outside", func(t *testing.T, env badEnv) error {
			return fromTar(env, tarball(t, tarMember{tar.Header{Name: "l", Typeflag: tar.TypeLink, Linkname: "../../etc/shadow"}, nil}))
		}, `hard link target: path "../../etc/shadow" has a ".." component`},
		{"tarball with a gigantic declared size", func(t *testing.T, env badEnv) error {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			tw.WriteHeader(&tar.Header{Name: "huge", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1 << 45})
			return fromTar(env, buf.Bytes()) // header only
		}, "declared size 35184372088832 is outside"},
		{"truncated tarball", func(t *testing.T, env badEnv) error {
			b := tarball(t, tarMember{tar.Header{Name: "big", Typeflag: tar.TypeReg}, bytes.Repeat([]byte("x"), 5000)})
			return fromTar(env, b[:2048])
		}, "unexpected EOF"},
	}
	if len(cases) < 25 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			env := badEnv{ctx: context.Background(), root: filepath.Join(base, "root"), outside: filepath.Join(base, "outside")}
			b := treeBuilder{t, base}
			b.dir("outside", 0o755, 0, 0)
			b.file("outside/secret", []byte("do not touch\n"), 0o600, 0, 0)
			b.dir("root", 0o755, 0, 0)
			b.file("root/existing", []byte("previous revision\n"), 0o644, 0, 0)
			b.symlink("root/esc", env.outside)
			rootBefore, outsideBefore := scan(t, env.root), scan(t, env.outside)
			baseBefore := names(t, base)

			err := tc.run(t, env)
			if err == nil {
				t.Fatalf("no error; want one containing %q", tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q does not contain %q", err, tc.wantErr)
			}
			if d := diffManifests(scan(t, env.root), rootBefore); d != "" {
				t.Errorf("root changed: %s", d)
			}
			if d := diffManifests(scan(t, env.outside), outsideBefore); d != "" {
				t.Errorf("outside changed: %s", d)
			}
			if got := names(t, base); got != baseBefore {
				t.Errorf("next to the root: %s, want %s", got, baseBefore)
			}
		})
	}
}

func names(t *testing.T, dir string) string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return strings.Join(out, ",")
}

// A previous revision's symlink pointing outside must never be followed,
// whatever the new revision puts at or under its name.
func TestSymlinkInPreviousRevisionIsNeverFollowed(t *testing.T) {
	fs := newLoopFS(t, 32)
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	b := treeBuilder{t, base}
	b.dir("outside/etc", 0o755, 0, 0)
	b.file("outside/etc/passwd", []byte("outside\n"), 0o644, 0, 0)
	outsideBefore := scan(t, outside)
	for _, link := range []string{"etc", "bin", "data", "file"} {
		if err := os.Symlink(filepath.Join(outside, "etc"), filepath.Join(fs.mnt, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(outside, "etc/passwd"), filepath.Join(fs.mnt, "passwd")); err != nil {
		t.Fatal(err)
	}
	content := []byte("inside\n")
	m := treeOf(dirEntry("bin"), fileEntry("bin/sh", content), dirEntry("etc"), fileEntry("etc/passwd", content),
		fileEntry("file", content), fileEntry("passwd", content))
	m.Sort()
	res, err := Apply(context.Background(), fs.mnt, m, memSource{sha256.Sum256(content): content}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d := diffManifests(scan(t, outside), outsideBefore); d != "" {
		t.Fatalf("outside changed: %s", d)
	}
	requireSameTree(t, scan(t, fs.mnt), m)
	// "data" goes; the "etc" and "bin" symlinks give way to directories;
	// "file" and "passwd" are replaced by rename; the root's mtime changes.
	if res.Deleted != 3 || res.Created != 4 || res.Updated != 3 {
		t.Errorf("result %+v: want 3 deleted, 4 created, 3 updated", res)
	}
	got, err := os.ReadFile(filepath.Join(fs.mnt, "etc/passwd"))
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("etc/passwd inside the root: %q, %v", got, err)
	}
}
