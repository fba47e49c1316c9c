package server_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// makeTree writes a small root file system: directories with odd modes,
// files of several sizes (some sharing content), an empty file, symlinks, a
// hard link, a fifo, an xattr, a setuid file and a kernel for the boot loader.
// Revision "B" changes, adds and removes some of "A".
func makeTree(t *testing.T, revision string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), revision)
	mtime := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	write := func(name string, data []byte, mode os.FileMode) {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	blob := func(seed string, n int) []byte {
		return bytes.Repeat([]byte(seed), n/len(seed)+1)[:n]
	}
	b := revision == "B"

	write("boot/vmlinuz-6.1.0-99-amd64", blob("kernel", 300<<10), 0o644)
	write("boot/initrd.img-6.1.0-99-amd64", blob("initrd", 200<<10), 0o644)
	write("etc/os-release", []byte("PRETTY_NAME=\"autoami test\"\nID=debian\n"), 0o644)
	write("etc/hostname", []byte("unpacked\n"), 0o644)
	write("usr/bin/tool", blob("tool-v1", 150<<10), 0o755)
	write("usr/bin/su", blob("setuid", 4096), 0o4755)
	write("usr/share/doc/a.txt", blob("doc-a", 5000), 0o644)
	write("usr/share/doc/same.txt", blob("doc-a", 5000), 0o644) // same content as a.txt
	write("var/empty.log", nil, 0o640)
	for i := 0; i < 40; i++ {
		write(fmt.Sprintf("usr/lib/mod/m%02d.so", i), blob(fmt.Sprintf("module-%02d", i), 3000+i*97), 0o644)
	}
	if b {
		// The security update: new content for some files, a new file,
		// removed files, a changed mode, a directory that became a file.
		write("usr/bin/tool", blob("tool-v2", 160<<10), 0o755)
		write("etc/hostname", []byte("unpacked-b\n"), 0o644)
		write("usr/lib/mod/m07.so", blob("module-07-patched", 3100), 0o644)
		write("usr/lib/mod/new.so", blob("brand-new", 70<<10), 0o644)
		for _, n := range []string{"usr/lib/mod/m30.so", "usr/lib/mod/m31.so", "usr/share/doc/same.txt"} {
			os.Remove(filepath.Join(root, n))
		}
		os.Chmod(filepath.Join(root, "var/empty.log"), 0o600)
		write("opt/thing", []byte("opt is a file in B\n"), 0o644)
	} else {
		write("opt/thing/inside", []byte("opt/thing is a directory in A\n"), 0o644)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink("boot/vmlinuz-6.1.0-99-amd64", filepath.Join(root, "vmlinuz")))
	must(os.Symlink("../bin/tool", filepath.Join(root, "usr/lib/tool-link")))
	must(os.Link(filepath.Join(root, "usr/bin/tool"), filepath.Join(root, "usr/bin/tool-hardlink")))
	must(unix.Mkfifo(filepath.Join(root, "var/fifo"), 0o600))
	must(unix.Lsetxattr(filepath.Join(root, "usr/bin/tool"), "user.autoami.test", []byte(revision), 0))
	must(os.MkdirAll(filepath.Join(root, "tmp"), 0o755))
	must(os.Chmod(filepath.Join(root, "tmp"), 0o1777))
	must(os.Chown(filepath.Join(root, "var/empty.log"), 0, 4))
	return root
}
