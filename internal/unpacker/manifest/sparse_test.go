package manifest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// goldenSampleDigest is the digest of the sample manifest as serialized
// before sparse files were recorded: recording them must not change the
// serialization of any entry that is not sparse.
const goldenSampleDigest = "44bcc1481614a07bcdabd5d4f603a7e90f806941e4a2fd0386a8af832678d9ca"

func validSample(t *testing.T) *Manifest {
	t.Helper()
	m := sampleManifest()
	m.Sort()
	m.Entries[6], m.Entries[7] = m.Entries[7], m.Entries[6]
	m.Entries[6].Path, m.Entries[7].Path = "a/link", "a.b"
	m.Entries[7] = Entry{Path: "a.b", Type: TypeHardLink, Link: "a/link"}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSparseFlagSerialization(t *testing.T) {
	m := validSample(t)
	if d, err := m.Digest(); err != nil || d.String() != goldenSampleDigest {
		t.Fatalf("digest of a manifest without sparse files changed: %s, %v (want %s)", d, err, goldenSampleDigest)
	}
	i := m.Lookup("a/link")
	m.Entries[i].Sparse = true
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Entries[i].Sparse || back.Entries[i].Mode != m.Entries[i].Mode {
		t.Fatalf("round trip lost the sparse flag or mixed it into the mode: %+v", back.Entries[i])
	}
	if d, _ := m.Digest(); d.String() == goldenSampleDigest {
		t.Error("the sparse flag does not change the revision digest")
	}
	// Only regular files of nonzero size may be sparse.
	for _, p := range []string{"a", "a/empty", "a/fifo"} {
		bad := validSample(t)
		bad.Entries[bad.Lookup(p)].Sparse = true
		if err := bad.Validate(); err == nil {
			t.Errorf("sparse %s validated", p)
		}
	}
	// A serialized sparse bit on a directory is not a manifest.
	forged := validSample(t)
	forged.Entries[forged.Lookup("a")].Mode |= sparseModeBit
	if _, err := Unmarshal(encode(forged)); err == nil {
		t.Error("a directory with the sparse bit parsed")
	}
}

func TestSparseDetection(t *testing.T) {
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	if err := os.Mkdir(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	// A swap file: zeros, every block allocated.
	if err := os.WriteFile(filepath.Join(tree, "swapfile"), make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	// A sparse file: 1 MiB with one written block.
	f, err := os.Create(filepath.Join(tree, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("data"), 512<<10)
	f.Truncate(1 << 20)
	f.Close()
	os.WriteFile(filepath.Join(tree, "small"), []byte("x"), 0o644)
	check := func(what string, m *Manifest, want map[string]bool) {
		t.Helper()
		for p, sparse := range want {
			i := m.Lookup(p)
			if i < 0 || m.Entries[i].Sparse != sparse {
				t.Errorf("%s: %s sparse=%v, want %v", what, p, i >= 0 && m.Entries[i].Sparse, sparse)
			}
		}
	}
	m, err := FromDirectory(context.Background(), tree, DirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	check("directory", m, map[string]bool{"swapfile": false, "sparse": true, "small": false})
	for _, tc := range []struct {
		args []string
		want map[string]bool
	}{
		{[]string{"--sparse"}, map[string]bool{"swapfile": false, "sparse": true}},
		{nil, map[string]bool{"swapfile": false, "sparse": false}}, // archived densely
	} {
		tarball := filepath.Join(dir, "t.tar")
		args := append([]string{"--format=posix", "-C", tree, "-cf", tarball}, tc.args...)
		if out, err := exec.Command("tar", append(args, ".")...).CombinedOutput(); err != nil {
			t.Fatalf("tar: %v: %s", err, out)
		}
		r, err := os.Open(tarball)
		if err != nil {
			t.Fatal(err)
		}
		mt, err := FromTar(context.Background(), r, TarOptions{})
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		check("tar "+filepath.Join(tc.args...), mt, tc.want)
	}
}
