package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// tarTree packs the members of dir, in the order given, with GNU tar.
func tarTree(t *testing.T, dir, out string, flags []string, members ...string) {
	t.Helper()
	args := append(append([]string{}, flags...), "-C", dir, "-cf", out)
	args = append(args, members...)
	if b, err := exec.Command("tar", args...).CombinedOutput(); err != nil {
		t.Fatalf("tar %v: %v\n%s", args, err, b)
	}
}

// applyAndCompare applies tarball to a fresh root and checks that the root
// then has the revision of the directory src.
func applyAndCompare(t *testing.T, tarball, src string, applyFlags ...string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runUnpacker(t, append(append([]string{"apply"}, applyFlags...), tarball, root)...)
	if code != 0 {
		t.Fatalf("apply %s: exit %d: %s", filepath.Base(tarball), code, errOut)
	}
	_, outSrc, _ := runUnpacker(t, "manifest", src)
	_, outTar, _ := runUnpacker(t, "manifest", tarball)
	_, outRoot, _ := runUnpacker(t, "manifest", root)
	if want := revisionLine(t, outSrc); revisionLine(t, outTar) != want || revisionLine(t, outRoot) != want {
		t.Fatalf("revisions differ:\n source directory %s\n tarball          %s\n applied root     %s",
			want, revisionLine(t, outTar), revisionLine(t, outRoot))
	}
	return root
}

// GNU tar stores a group of hard links' data in the member it archives
// first and the other names as links to it. Applying the tarball must work
// whether the link's name sorts before the data member's (the manifest then
// gives the data to the link's name) or after it.
func TestApplyTarballWithHardLinks(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	for _, d := range []string{"etc", "bin"} {
		if err := os.MkdirAll(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "etc/three"), []byte("three\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(src, "etc/three"), filepath.Join(src, "bin/one")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		members []string
		dataIn  string // the member tar gives the data to
	}{
		{"link sorts before data", []string{".", "./etc", "./etc/three", "./bin", "./bin/one"}, "./etc/three"},
		{"data sorts before link", []string{".", "./bin", "./bin/one", "./etc", "./etc/three"}, "./bin/one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tarball := filepath.Join(t.TempDir(), "links.tar")
			tarTree(t, src, tarball, []string{"--format=posix", "--no-recursion", "--numeric-owner"}, tc.members...)
			list, err := exec.Command("tar", "-tvf", tarball).Output()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(list), "link to "+tc.dataIn) {
				t.Fatalf("tar did not put the data in %s:\n%s", tc.dataIn, list)
			}
			root := applyAndCompare(t, tarball, src)
			var one, three syscall.Stat_t
			if err := syscall.Lstat(filepath.Join(root, "bin/one"), &one); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Lstat(filepath.Join(root, "etc/three"), &three); err != nil {
				t.Fatal(err)
			}
			if one.Ino != three.Ino || one.Nlink != 2 {
				t.Fatalf("bin/one (inode %d, %d links) and etc/three (inode %d) are not one file", one.Ino, one.Nlink, three.Ino)
			}
		})
	}
}

// makeRootfsTrees is the directory of fixtures/make-rootfs's trees (base/,
// security/), found as the benchmarks find it: $AUTOAMI_BENCH_ROOTFS, else
// $AUTOAMI_CACHE_DIR/make-rootfs, else <repo>/.cache/autoami/make-rootfs.
// Without the trees the test is skipped, as the benchmarks are.
func makeRootfsTrees(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("AUTOAMI_BENCH_ROOTFS")
	if dir == "" && os.Getenv("AUTOAMI_CACHE_DIR") != "" {
		dir = filepath.Join(os.Getenv("AUTOAMI_CACHE_DIR"), "make-rootfs")
	}
	if dir == "" {
		dir, _ = filepath.Abs("../../.cache/autoami/make-rootfs")
	}
	if _, err := os.Stat(filepath.Join(dir, "base")); err != nil {
		t.Skipf("no make-rootfs trees in %s (build them with fixtures/make-rootfs DIR and set AUTOAMI_BENCH_ROOTFS=DIR)", dir)
	}
	if os.Geteuid() != 0 {
		t.Fatal("applying a Debian root filesystem needs root (owners, device nodes)")
	}
	return dir
}

// A Debian root filesystem made by debootstrap (hard links such as
// usr/bin/perl and perl5.36.0, device nodes, xattrs), packed as a user
// would, applies to a directory that then has the tree's revision.
func TestApplyDebootstrapTarball(t *testing.T) {
	base := filepath.Join(makeRootfsTrees(t), "base")
	tarball := filepath.Join(t.TempDir(), "base.tar")
	tarTree(t, base, tarball, []string{"--numeric-owner", "--xattrs", "--acls"}, ".")
	applyAndCompare(t, tarball, base, "-allow-devices")
}
