package devices

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestEnsureNodeChecksNumbers: an existing node is accepted only when it is
// the block device sysfs names; a missing one is created with its numbers.
func TestEnsureNodeChecksNumbers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for mknod (make test runs as root)")
	}
	dir := t.TempDir()
	sys := filepath.Join(dir, "dev")
	if err := os.WriteFile(sys, []byte("7:5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mk := func(name string, mode uint32, major, minor uint32) string {
		p := filepath.Join(dir, name)
		if err := unix.Mknod(p, mode|0o600, int(unix.Mkdev(major, minor))); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if err := ensureNode(mk("right", unix.S_IFBLK, 7, 5), sys); err != nil {
		t.Errorf("the right node: %v", err)
	}
	for _, p := range []string{mk("other-minor", unix.S_IFBLK, 7, 9), mk("other-major", unix.S_IFBLK, 8, 5), mk("char", unix.S_IFCHR, 7, 5), mk("fifo", unix.S_IFIFO, 0, 0)} {
		if err := ensureNode(p, sys); err == nil || !strings.Contains(err.Error(), "is not block device 7:5") {
			t.Errorf("node %s: %v, want it refused", filepath.Base(p), err)
		}
	}
	missing := filepath.Join(dir, "missing")
	if err := ensureNode(missing, sys); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(missing, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK || st.Rdev != unix.Mkdev(7, 5) {
		t.Errorf("created node: %+v, %v; want block device 7:5", st, err)
	}
}
