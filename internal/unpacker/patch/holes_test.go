package patch

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// holes reports whether the file at p has any hole (SEEK_HOLE before EOF).
func holes(t *testing.T, p string) bool {
	t.Helper()
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	hole, err := unix.Seek(fd, 0, unix.SEEK_HOLE)
	if err != nil {
		t.Fatal(err)
	}
	return hole < st.Size
}

// buildSwap writes a tree with a swap file (zeros, every block allocated),
// a file of zeros and data without holes, and a sparse file.
func buildSwap(t *testing.T, root string) {
	b := treeBuilder{t, root}
	b.dir("", 0o755, 0, 0)
	b.file("swapfile", make([]byte, 4<<20), 0o600, 0, 0)
	b.file("var/lib/prealloc.db", append(make([]byte, 64<<10), []byte("tail")...), 0o644, 0, 0)
	b.sparse("var/lib/sparse.db", 8<<20, map[int64][]byte{0: []byte("head"), 4 << 20: []byte("middle")})
	stampMtimes(t, root, 1_700_000_000_000_000_000)
}

// TestOnlySparseFilesGetHoles: a file whose source had no holes (a swap
// file) is written without holes although it is all zeros; a sparse one
// stays sparse; and a file the engine once wrote with holes gets them
// allocated by the next patch, without being rewritten.
func TestOnlySparseFilesGetHoles(t *testing.T) {
	fs := newLoopFS(t, 64)
	src, m := source(t, buildSwap)
	if i := m.Lookup("swapfile"); m.Entries[i].Sparse {
		t.Fatal("the source's swap file is taken for sparse")
	}
	apply(t, fs.mnt, src, m, Options{})
	fs.remount(t)
	requireSameTree(t, scan(t, fs.mnt), m)
	for p, want := range map[string]bool{"swapfile": false, "var/lib/prealloc.db": false, "var/lib/sparse.db": true} {
		if got := holes(t, filepath.Join(fs.mnt, p)); got != want {
			t.Errorf("%s has holes: %v, want %v", p, got, want)
		}
	}

	// An older engine left the swap file full of holes: the next patch
	// allocates them in place (same inode) and restores its mtime.
	swap := filepath.Join(fs.mnt, "swapfile")
	fd, err := unix.Open(swap, unix.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, 4<<20); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	treeBuilder{t, fs.mnt}.mtime("swapfile", m.Entries[m.Lookup("swapfile")].MtimeNs)
	var before unix.Stat_t
	unix.Stat(swap, &before)
	res := apply(t, fs.mnt, src, m, Options{})
	fs.remount(t)
	requireSameTree(t, scan(t, fs.mnt), m)
	var after unix.Stat_t
	unix.Stat(swap, &after)
	if holes(t, swap) || after.Ino != before.Ino || res.BytesWritten != 0 || res.Updated != 1 {
		t.Errorf("swap file with holes: holes after the patch %v, inode %d -> %d, result %+v; want allocated in place, nothing written",
			holes(t, swap), before.Ino, after.Ino, res)
	}
	if _, err := os.Stat(filepath.Join(fs.mnt, StagingDir)); !os.IsNotExist(err) {
		t.Errorf("staging directory left: %v", err)
	}
}
