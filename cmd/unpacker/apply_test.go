package main

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func runUnpacker(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func writeTree(t *testing.T, root string) {
	t.Helper()
	for p, c := range map[string]string{"etc/hostname": "box\n", "usr/bin/tool": "#!/bin/sh\n", "var/empty/.keep": ""} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("usr/bin", filepath.Join(root, "bin")); err != nil {
		t.Fatal(err)
	}
}

func revisionLine(t *testing.T, out string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "revision") {
			return l
		}
	}
	t.Fatalf("no revision line in %q", out)
	return ""
}

func TestManifestAndApplyCommands(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeTree(t, src)
	tarPath := filepath.Join(dir, "src.tar.gz")
	if out, err := exec.Command("tar", "--format=posix", "--numeric-owner", "-C", src, "-czf", tarPath, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}

	code, outDir, errOut := runUnpacker(t, "manifest", src)
	if code != 0 {
		t.Fatalf("manifest of directory: exit %d: %s", code, errOut)
	}
	code, outTar, errOut := runUnpacker(t, "manifest", tarPath)
	if code != 0 {
		t.Fatalf("manifest of tarball: exit %d: %s", code, errOut)
	}
	if revisionLine(t, outDir) != revisionLine(t, outTar) {
		t.Errorf("directory and tarball revisions differ:\n%s\n%s", outDir, outTar)
	}
	if !strings.Contains(outDir, "3 regular files, 1 symlinks") {
		t.Errorf("summary: %s", outDir)
	}

	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	code, out, errOut := runUnpacker(t, "apply", tarPath, root)
	if code != 0 {
		t.Fatalf("apply: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "created 9, updated 1, deleted 0, unchanged 0") {
		t.Errorf("apply output: %s", out)
	}
	code, outRoot, _ := runUnpacker(t, "manifest", root)
	if code != 0 || revisionLine(t, outRoot) != revisionLine(t, outDir) {
		t.Errorf("applied root has revision %q, want %q", revisionLine(t, outRoot), revisionLine(t, outDir))
	}
	code, out, _ = runUnpacker(t, "apply", "-json", src, root)
	if code != 0 || !strings.Contains(out, `"Unchanged": 10`) {
		t.Errorf("second apply: exit %d, %s", code, out)
	}
}

func TestCommandErrors(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	evil := filepath.Join(dir, "evil.tar")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "../outside", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
	tw.Write([]byte("x"))
	tw.Close()
	os.WriteFile(evil, buf.Bytes(), 0o644)

	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{}, 2, "commands:"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"apply", "only-one"}, 2, "usage: unpacker apply"},
		{[]string{"apply", filepath.Join(dir, "missing"), root}, 1, "no such file or directory"},
		{[]string{"apply", evil, root}, 1, `has a ".." component`},
		{[]string{"manifest", evil}, 1, `member 1 "../outside"`},
		{[]string{"apply", dir, filepath.Join(dir, "evil.tar")}, 1, "not a directory"},
	} {
		code, _, stderr := runUnpacker(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.msg) {
			t.Errorf("unpacker %v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, stderr, tc.code, tc.msg)
		}
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("root written by failed commands: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(dir, "outside")); err == nil {
		t.Error("a file was written outside the root")
	}
}

// Refusing a source's device nodes, apply says how to allow them; with
// -allow-devices it creates them.
func TestApplyDeviceNodesNeedAllowDevices(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, hdr := range []*tar.Header{
		{Name: "./dev/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
	} {
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(dir, "dev.tar")
	if err := os.WriteFile(tarball, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}

	code, _, stderr := runUnpacker(t, "apply", tarball, root)
	if code != 1 || !strings.Contains(stderr, `manifest entry "dev/null": character device nodes are not allowed`) ||
		!strings.Contains(stderr, "pass -allow-devices") {
		t.Fatalf("apply of a device node: exit %d, stderr %q; want exit 1 naming the entry and -allow-devices", code, stderr)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Fatalf("refused apply wrote %v", entries)
	}

	code, _, stderr = runUnpacker(t, "apply", "-allow-devices", tarball, root)
	if code != 0 {
		t.Fatalf("apply -allow-devices: exit %d: %s", code, stderr)
	}
	fi, err := os.Lstat(filepath.Join(root, "dev/null"))
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Fatalf("dev/null after apply -allow-devices: %v, %v", fi, err)
	}
}
