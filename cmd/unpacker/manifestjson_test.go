package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// decodeJSON decodes one JSON object and checks that it has exactly keys.
func decodeJSON(t *testing.T, what string, b []byte, keys ...string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: not a JSON object: %v\n%s", what, err, b)
	}
	return checkKeys(t, what, v, keys...)
}

func checkKeys(t *testing.T, what string, v map[string]any, keys ...string) map[string]any {
	t.Helper()
	var got []string
	for k := range v {
		got = append(got, k)
	}
	slices.Sort(got)
	slices.Sort(keys)
	if !slices.Equal(got, keys) {
		t.Fatalf("%s: keys %v, want %v", what, got, keys)
	}
	return v
}

// A tree's -json report: snake_case keys, words for the kind and the entry
// types, every type counted, and the revision the text output shows.
func TestManifestJSONOfATree(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, hdr := range []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./etc/three", Typeflag: tar.TypeReg, Mode: 0o644, Size: 6,
			PAXRecords: map[string]string{"SCHILY.xattr.user.origin": "test"}},
		{Name: "./bin", Typeflag: tar.TypeSymlink, Linkname: "etc", Mode: 0o777},
		{Name: "./etc/one", Typeflag: tar.TypeLink, Linkname: "./etc/three"},
		{Name: "./etc/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
		{Name: "./etc/loop0", Typeflag: tar.TypeBlock, Mode: 0o660, Devmajor: 7},
		{Name: "./etc/fifo", Typeflag: tar.TypeFifo, Mode: 0o600},
	} {
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			if _, err := tw.Write([]byte("three\n")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(t.TempDir(), "tree.tar")
	if err := os.WriteFile(tarball, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	code, out, stderr := runUnpacker(t, "manifest", "-json", tarball)
	if code != 0 {
		t.Fatalf("manifest -json: exit %d: %s", code, stderr)
	}
	v := decodeJSON(t, "report", []byte(out), "revision", "source", "kind", "manifest_bytes", "tree")
	_, text, _ := runUnpacker(t, "manifest", tarball)
	if rev := strings.Fields(revisionLine(t, text))[1]; v["revision"] != rev || !strings.HasPrefix(rev, "sha256:") || len(rev) != 7+64 {
		t.Errorf("revision %v, the text output says %s", v["revision"], rev)
	}
	if v["source"] != "tarball" || v["kind"] != "tree" {
		t.Errorf("source %v, kind %v; want \"tarball\", \"tree\"", v["source"], v["kind"])
	}
	if n, ok := v["manifest_bytes"].(float64); !ok || n <= 0 {
		t.Errorf("manifest_bytes %v", v["manifest_bytes"])
	}
	tree := checkKeys(t, "tree", v["tree"].(map[string]any),
		"entries", "entries_by_type", "xattrs", "content_bytes", "objects", "object_bytes")
	byType := checkKeys(t, "entries_by_type", tree["entries_by_type"].(map[string]any),
		"directory", "file", "symlink", "hardlink", "char_device", "block_device", "fifo")
	wantTypes := map[string]any{"directory": 2.0, "file": 1.0, "symlink": 1.0, "hardlink": 1.0,
		"char_device": 1.0, "block_device": 1.0, "fifo": 1.0}
	if !reflect.DeepEqual(byType, wantTypes) {
		t.Errorf("entries_by_type %v, want %v", byType, wantTypes)
	}
	wantTree := map[string]any{"entries": 8.0, "xattrs": 1.0, "content_bytes": 6.0, "objects": 1.0, "object_bytes": 6.0}
	for k, want := range wantTree {
		if tree[k] != want {
			t.Errorf("tree.%s = %v, want %v", k, tree[k], want)
		}
	}
}

// A raw image's -json report.
func TestManifestJSONOfARawImage(t *testing.T) {
	img := filepath.Join(t.TempDir(), "disk.img")
	const blockSize = 512 << 10
	data := bytes.Repeat([]byte{0}, 2*blockSize+100) // two equal blocks and a short one
	if err := os.WriteFile(img, data, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runUnpacker(t, "manifest", "-raw", "-json", img)
	if code != 0 {
		t.Fatalf("manifest -raw -json: exit %d: %s", code, stderr)
	}
	v := decodeJSON(t, "report", []byte(out), "revision", "source", "kind", "manifest_bytes", "raw_image")
	if v["source"] != "raw_image" || v["kind"] != "raw_image" {
		t.Errorf("source %v, kind %v; want \"raw_image\" for both", v["source"], v["kind"])
	}
	raw := checkKeys(t, "raw_image", v["raw_image"].(map[string]any), "image_bytes", "block_size", "blocks", "objects", "object_bytes")
	want := map[string]any{"image_bytes": float64(len(data)), "block_size": float64(blockSize), "blocks": 3.0,
		"objects": 2.0, "object_bytes": float64(blockSize + 100)}
	if !reflect.DeepEqual(raw, want) {
		t.Errorf("raw_image %v, want %v", raw, want)
	}
}

// The command's help documents every key and word of the JSON shape.
func TestManifestHelpDocumentsTheJSONShape(t *testing.T) {
	code, _, stderr := runUnpacker(t, "manifest", "-h")
	if code != 0 {
		t.Fatalf("manifest -h: exit %d", code)
	}
	for _, word := range []string{"revision", "source", "kind", "manifest_bytes", "tree", "entries", "entries_by_type",
		`"directory"`, `"file"`, `"symlink"`, `"hardlink"`, `"char_device"`, `"block_device"`, `"fifo"`, "xattrs",
		"content_bytes", "objects", "object_bytes", `"raw_image"`, "image_bytes", "block_size", "blocks", `"tarball"`} {
		if !strings.Contains(stderr, word) {
			t.Errorf("manifest -h does not mention %s:\n%s", word, stderr)
		}
	}
}
