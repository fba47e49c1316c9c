package patch

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (loop devices, mount, chown, device nodes); run as root in CI")
	}
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// loopFS is an ext4 file system on a loop device over a sparse file.
type loopFS struct {
	image string
	dev   string
	mnt   string
}

// newLoopFS makes and mounts an ext4 file system of sizeMiB on a fresh loop
// device; cleanup unmounts and detaches exactly this mount and device.
func newLoopFS(t testing.TB, sizeMiB int) *loopFS {
	t.Helper()
	requireRoot(t)
	dir := t.TempDir()
	fs := &loopFS{image: filepath.Join(dir, "disk.img"), mnt: filepath.Join(dir, "mnt")}
	if err := os.WriteFile(fs.image, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(fs.image, int64(sizeMiB)<<20); err != nil {
		t.Fatal(err)
	}
	fs.dev = run(t, "losetup", "-f", "--show", fs.image)
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", fs.dev).CombinedOutput(); err != nil {
			t.Errorf("detach %s: %v %s", fs.dev, err, out)
		}
	})
	run(t, "mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", fs.dev)
	if err := os.Mkdir(fs.mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	fs.mount(t)
	t.Cleanup(func() { fs.unmount(t) })
	return fs
}

// volumeMountOptions are the options the unpacker daemon mounts ext4
// volumes with (daemon.rootMountFlags and rootMountData), so that tests and
// benchmarks (peers included) measure what runs in production.
const volumeMountOptions = "nosuid,nodev,noexec,noatime,noauto_da_alloc"

func (fs *loopFS) mount(t testing.TB) {
	t.Helper()
	run(t, "mount", "-t", "ext4", "-o", volumeMountOptions, fs.dev, fs.mnt)
}

func (fs *loopFS) unmount(t testing.TB) {
	t.Helper()
	if !isMounted(fs.mnt) {
		return
	}
	err := unix.Unmount(fs.mnt, 0)
	if err == nil {
		return
	}
	// Busy: something the test ran still holds a file there. That is a bug
	// to report, not to wait out; a lazy unmount lets the cleanup go on
	// (the loop device is freed when the last file closes).
	t.Errorf("unmount %s: %v (a file on it is still open)", fs.mnt, err)
	if err := unix.Unmount(fs.mnt, unix.MNT_DETACH); err != nil {
		t.Errorf("lazy unmount %s: %v", fs.mnt, err)
	}
}

func (fs *loopFS) remount(t testing.TB) {
	t.Helper()
	fs.unmount(t)
	fs.mount(t)
}

func isMounted(dir string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

func scan(t testing.TB, root string) *manifest.Manifest {
	t.Helper()
	m, err := manifest.FromDirectory(context.Background(), root, manifest.DirOptions{})
	if err != nil {
		t.Fatalf("scan %s: %v", root, err)
	}
	return m
}

// withoutLostFound drops a root-level lost+found (and its contents).
func withoutLostFound(m *manifest.Manifest) *manifest.Manifest {
	out := &manifest.Manifest{Kind: m.Kind}
	for _, e := range m.Entries {
		if e.Path == "lost+found" || strings.HasPrefix(e.Path, "lost+found/") {
			continue
		}
		out.Entries = append(out.Entries, e)
	}
	return out
}

// requireSameTree fails with the first difference between two trees.
func requireSameTree(t *testing.T, got, want *manifest.Manifest) {
	t.Helper()
	got = withoutLostFound(got)
	if d := diffManifests(got, want); d != "" {
		t.Fatalf("trees differ: %s", d)
	}
}

func diffManifests(got, want *manifest.Manifest) string {
	gi := map[string]*manifest.Entry{}
	for i := range got.Entries {
		gi[got.Entries[i].Path] = &got.Entries[i]
	}
	for i := range want.Entries {
		w := &want.Entries[i]
		g, ok := gi[w.Path]
		if !ok {
			return fmt.Sprintf("%q (%s) missing", w.Path, w.Type)
		}
		if d := diffEntry(g, w); d != "" {
			return fmt.Sprintf("%q: %s", w.Path, d)
		}
		delete(gi, w.Path)
	}
	for p, g := range gi {
		return fmt.Sprintf("%q (%s) is extra (debris)", p, g.Type)
	}
	return ""
}

func diffEntry(g, w *manifest.Entry) string {
	switch {
	case g.Type != w.Type:
		return fmt.Sprintf("type %s, want %s", g.Type, w.Type)
	case g.Mode != w.Mode:
		return fmt.Sprintf("mode %#o, want %#o", g.Mode, w.Mode)
	case g.UID != w.UID || g.GID != w.GID:
		return fmt.Sprintf("owner %d:%d, want %d:%d", g.UID, g.GID, w.UID, w.GID)
	case g.MtimeNs != w.MtimeNs:
		return fmt.Sprintf("mtime %d, want %d", g.MtimeNs, w.MtimeNs)
	case g.Size != w.Size || g.Digest != w.Digest:
		return fmt.Sprintf("content %d bytes %s, want %d bytes %s", g.Size, g.Digest, w.Size, w.Digest)
	case g.Sparse != w.Sparse:
		return fmt.Sprintf("sparse %v, want %v", g.Sparse, w.Sparse)
	case g.Link != w.Link:
		return fmt.Sprintf("link %q, want %q", g.Link, w.Link)
	case g.DevMajor != w.DevMajor || g.DevMinor != w.DevMinor:
		return fmt.Sprintf("device %d:%d, want %d:%d", g.DevMajor, g.DevMinor, w.DevMajor, w.DevMinor)
	case !xattrsEqual(g.Xattrs, w.Xattrs):
		return fmt.Sprintf("xattrs %s, want %s", fmtXattrs(g.Xattrs), fmtXattrs(w.Xattrs))
	}
	return ""
}

func fmtXattrs(xs []manifest.Xattr) string {
	var b strings.Builder
	for _, x := range xs {
		fmt.Fprintf(&b, "%s=%x ", x.Name, x.Value)
	}
	return "[" + strings.TrimSpace(b.String()) + "]"
}

// treeBuilder writes test trees entry by entry, failing the test on error.
type treeBuilder struct {
	t    *testing.T
	root string
}

func (b treeBuilder) path(p string) string { return filepath.Join(b.root, p) }

func (b treeBuilder) dir(p string, mode uint32, uid, gid int) {
	b.t.Helper()
	if err := os.MkdirAll(b.path(p), 0o755); err != nil {
		b.t.Fatal(err)
	}
	b.meta(p, mode, uid, gid)
}

func (b treeBuilder) file(p string, content []byte, mode uint32, uid, gid int) {
	b.t.Helper()
	if err := os.MkdirAll(filepath.Dir(b.path(p)), 0o755); err != nil {
		b.t.Fatal(err)
	}
	os.Remove(b.path(p))
	if err := os.WriteFile(b.path(p), content, 0o600); err != nil {
		b.t.Fatal(err)
	}
	b.meta(p, mode, uid, gid)
}

func (b treeBuilder) meta(p string, mode uint32, uid, gid int) {
	b.t.Helper()
	if err := os.Lchown(b.path(p), uid, gid); err != nil {
		b.t.Fatal(err)
	}
	if err := unix.Chmod(b.path(p), mode); err != nil {
		b.t.Fatal(err)
	}
}

func (b treeBuilder) symlink(p, target string) {
	b.t.Helper()
	os.Remove(b.path(p))
	if err := os.Symlink(target, b.path(p)); err != nil {
		b.t.Fatal(err)
	}
}

func (b treeBuilder) link(existing, p string) {
	b.t.Helper()
	os.Remove(b.path(p))
	if err := os.Link(b.path(existing), b.path(p)); err != nil {
		b.t.Fatal(err)
	}
}

func (b treeBuilder) mknod(p string, mode uint32, major, minor uint32) {
	b.t.Helper()
	os.Remove(b.path(p))
	if err := unix.Mknod(b.path(p), mode, int(unix.Mkdev(major, minor))); err != nil {
		b.t.Fatal(err)
	}
}

func (b treeBuilder) xattr(p, name string, value []byte) {
	b.t.Helper()
	if err := unix.Lsetxattr(b.path(p), name, value, 0); err != nil {
		b.t.Fatalf("setxattr %s on %s: %v", name, p, err)
	}
}

func (b treeBuilder) mtime(p string, ns int64) {
	b.t.Helper()
	ts := []unix.Timespec{unix.NsecToTimespec(ns), unix.NsecToTimespec(ns)}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, b.path(p), ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		b.t.Fatal(err)
	}
}

// sparse writes a file of size bytes with data only at the given offsets.
func (b treeBuilder) sparse(p string, size int64, chunks map[int64][]byte) {
	b.t.Helper()
	f, err := os.Create(b.path(p))
	if err != nil {
		b.t.Fatal(err)
	}
	defer f.Close()
	for off, data := range chunks {
		if _, err := f.WriteAt(data, off); err != nil {
			b.t.Fatal(err)
		}
	}
	if err := f.Truncate(size); err != nil {
		b.t.Fatal(err)
	}
}

// fileCapability is the security.capability value of `setcap cap_net_raw+ep`.
// (VFS_CAP_REVISION_2|effective as little-endian 0x02000001, then bit 13
// in the first permitted word).
var fileCapability = []byte{1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

// acl encodes a POSIX ACL xattr: entries of (tag, perm, id).
func acl(entries ...[3]uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, uint16(e[0]))
		b = binary.LittleEndian.AppendUint16(b, uint16(e[1]))
		b = binary.LittleEndian.AppendUint32(b, e[2])
	}
	return b
}

const noID = 0xffffffff

// big returns n deterministic, incompressible-ish bytes.
func big(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

// buildA writes revision A of the test tree: every entry type, xattrs
// (capability, ACLs, user, trusted), setuid/setgid/sticky, hard links,
// a sparse file, odd names and nanosecond mtimes.
func buildA(t *testing.T, root string) {
	b := treeBuilder{t, root}
	b.dir("", 0o755, 0, 0)
	b.dir("bin", 0o755, 0, 0)
	b.file("bin/ping", []byte("ping version 1\n"), 0o755, 0, 0)
	b.xattr("bin/ping", "security.capability", fileCapability)
	b.file("bin/su", []byte("su binary\n"), 0o4755, 0, 0)
	b.dir("usr/bin", 0o755, 0, 0)
	b.file("usr/bin/wall", []byte("wall\n"), 0o2755, 0, 5)
	b.dir("tmp", 0o1777, 0, 0)
	b.dir("etc", 0o755, 0, 0)
	b.file("etc/passwd", []byte("root:x:0:0::/root:/bin/sh\n"), 0o644, 0, 0)
	b.file("etc/acl-file", []byte("acl\n"), 0o640, 0, 0)
	b.xattr("etc/acl-file", "system.posix_acl_access",
		acl([3]uint32{1, 6, noID}, [3]uint32{2, 4, 1000}, [3]uint32{4, 4, noID}, [3]uint32{0x10, 4, noID}, [3]uint32{0x20, 0, noID}))
	b.dir("srv/shared", 0o2775, 0, 100)
	b.xattr("srv/shared", "system.posix_acl_default",
		acl([3]uint32{1, 7, noID}, [3]uint32{4, 5, noID}, [3]uint32{8, 7, 100}, [3]uint32{0x10, 7, noID}, [3]uint32{0x20, 5, noID}))
	b.file("srv/data", []byte("data file becomes a directory\n"), 0o644, 0, 0)
	b.file("home/user/notes", []byte("notes\n"), 0o600, 1000, 1000)
	b.meta("home/user", 0o700, 1000, 1000)
	b.xattr("home/user/notes", "user.comment", []byte("hello"))
	b.xattr("etc", "trusted.marker", []byte{0, 1, 2, 0})
	b.dir("usr/lib", 0o755, 0, 0)
	b.file("usr/lib/libx.so.1", big(300<<10, 1), 0o644, 0, 0)
	b.link("usr/lib/libx.so.1", "usr/lib/libx-hardlink")
	b.link("usr/lib/libx.so.1", "bin/libx-third-name")
	b.file("usr/lib/big-mover", big(700<<10, 2), 0o644, 0, 0)
	b.file("usr/lib/dup1", []byte("same content\n"), 0o644, 0, 0)
	b.file("usr/lib/dup2", []byte("same content\n"), 0o600, 0, 0)
	b.file("usr/lib/empty", nil, 0o644, 0, 0)
	b.symlink("lib", "usr/lib")
	b.symlink("etc/localtime", "/usr/share/zoneinfo/UTC")
	b.symlink("etc/dangling", "../nowhere/at/all")
	b.dir("dev", 0o755, 0, 0)
	b.mknod("dev/null", unix.S_IFCHR|0o666, 1, 3)
	b.mknod("dev/loop9", unix.S_IFBLK|0o660, 7, 9)
	b.meta("dev/loop9", 0o660, 0, 6)
	b.mknod("dev/initctl", unix.S_IFIFO|0o600, 0, 0)
	b.dir("var/lib", 0o755, 0, 0)
	b.sparse("var/lib/sparse.db", 16<<20, map[int64][]byte{0: []byte("head"), 8 << 20: big(8192, 3)})
	b.file("var/lib/weird\xffname with space", []byte("odd name\n"), 0o644, 0, 0)
	b.dir("opt/thing/sub", 0o755, 0, 0)
	b.file("opt/thing/sub/file", []byte("inside a directory that becomes a file\n"), 0o644, 0, 0)
	b.file("etc/mode-only", []byte("mode changes\n"), 0o644, 0, 0)
	b.file("etc/owner-only", []byte("owner changes\n"), 0o644, 0, 0)
	b.file("etc/mtime-only", []byte("mtime changes\n"), 0o644, 0, 0)
	b.file("etc/xattr-gone", []byte("xattr removed\n"), 0o644, 0, 0)
	b.xattr("etc/xattr-gone", "user.old", []byte("x"))
	b.symlink("etc/alternative", "/usr/bin/one")
	b.symlink("etc/becomes-file", "/somewhere")
	b.file("to-delete/deep/file", []byte("bye\n"), 0o644, 0, 0)
	stampMtimes(t, root, 1_600_000_000_123_456_789)
}

// buildB writes revision B: A after an update touching every kind of change.
func buildB(t *testing.T, root string) {
	buildA(t, root)
	b := treeBuilder{t, root}
	b.file("bin/ping", []byte("ping version 2, a security fix\n"), 0o755, 0, 0)
	b.xattr("bin/ping", "security.capability", fileCapability)
	b.file("etc/shadow", []byte("root:*:19000:0:99999:7:::\n"), 0o640, 0, 42)
	os.RemoveAll(b.path("to-delete"))
	os.RemoveAll(b.path("opt/thing"))
	b.file("opt/thing", []byte("now a file\n"), 0o644, 0, 0)
	os.Remove(b.path("srv/data"))
	b.dir("srv/data/x", 0o750, 0, 0)
	b.symlink("etc/alternative", "/usr/bin/two")
	os.Remove(b.path("etc/becomes-file"))
	b.file("etc/becomes-file", []byte("was a symlink\n"), 0o644, 0, 0)
	os.Remove(b.path("bin/libx-third-name"))
	b.link("usr/lib/libx.so.1", "usr/lib/libx-new-name")
	b.dir("usr/lib64", 0o755, 0, 0)
	if err := os.Rename(b.path("usr/lib/big-mover"), b.path("usr/lib64/big-mover")); err != nil {
		t.Fatal(err)
	}
	b.meta("etc/mode-only", 0o600, 0, 0)
	b.meta("etc/owner-only", 0o644, 33, 33)
	if err := unix.Lremovexattr(b.path("etc/xattr-gone"), "user.old"); err != nil {
		t.Fatal(err)
	}
	b.mknod("dev/loop9", unix.S_IFBLK|0o660, 7, 10)
	b.meta("dev/loop9", 0o660, 0, 6)
	stampMtimes(t, root, 1_600_000_000_123_456_789)
	b.mtime("etc/mtime-only", 1_650_000_000_000_000_001)
}

// stampMtimes gives every entry a distinct, deterministic mtime (directories
// last, deepest first, so stamping children does not move them).
func stampMtimes(t *testing.T, root string, base int64) {
	t.Helper()
	var paths []string
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := len(paths) - 1; i >= 0; i-- {
		rel, _ := filepath.Rel(root, paths[i])
		ns := base + int64(len(rel))*1_000_003 + int64(bytes.Count([]byte(rel), []byte("/")))
		ts := []unix.Timespec{unix.NsecToTimespec(ns), unix.NsecToTimespec(ns)}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, paths[i], ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
	}
}
