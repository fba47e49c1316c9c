package manifest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"testing"
)

func sampleManifest() *Manifest {
	content := []byte("content")
	m := &Manifest{Kind: KindTree, Entries: []Entry{
		{Path: ".", Type: TypeDirectory, Mode: 0o755, MtimeNs: -5},
		{Path: "a.b", Type: TypeRegular, Mode: 0o4755, UID: 1, GID: 2, MtimeNs: 1_700_000_000_000_000_001,
			Size: int64(len(content)), Digest: sha256.Sum256(content),
			Xattrs: []Xattr{{Name: "security.capability", Value: []byte{1, 0, 0, 2}}, {Name: "user.x", Value: nil}}},
		{Path: "a", Type: TypeDirectory, Mode: 0o1777, Xattrs: []Xattr{{Name: "system.posix_acl_default",
			Value: []byte{2, 0, 0, 0, 1, 0, 7, 0, 255, 255, 255, 255}}}},
		{Path: "a/link", Type: TypeHardLink, Link: "a.b"},
		{Path: "a/b", Type: TypeSymlink, Mode: 0o777, Link: "../a.b"},
		{Path: "a/dev", Type: TypeCharDevice, Mode: 0o600, DevMajor: 1, DevMinor: 3},
		{Path: "a/fifo", Type: TypeFIFO, Mode: 0o600},
		{Path: "a/empty", Type: TypeRegular, Mode: 0o644, Digest: sha256.Sum256(nil)},
	}}
	return m
}

func TestCanonicalOrderAndRoundTrip(t *testing.T) {
	m := sampleManifest()
	if err := m.Validate(); err == nil {
		t.Fatal("unsorted manifest validated")
	}
	m.Sort()
	want := []string{".", "a", "a/b", "a/dev", "a/empty", "a/fifo", "a/link", "a.b"}
	for i, e := range m.Entries {
		if e.Path != want[i] {
			t.Fatalf("order: entry %d is %q, want %q", i, e.Path, want[i])
		}
	}
	// "a/link" now precedes its target "a.b": invalid, as canonical order demands.
	if err := m.Validate(); err == nil {
		t.Fatal("hard link before its target validated")
	}
	m.Entries[6], m.Entries[7] = m.Entries[7], m.Entries[6]
	m.Entries[6].Path, m.Entries[7].Path = "a/link", "a.b"
	m.Entries[7] = Entry{Path: "a.b", Type: TypeHardLink, Link: "a/link"}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := back.Marshal()
	if !bytes.Equal(b, b2) {
		t.Fatal("round trip changed the serialization")
	}
	d1, _ := m.Digest()
	// Shuffled input sorts to the same revision.
	shuffled := &Manifest{Kind: KindTree, Entries: append([]Entry(nil), m.Entries...)}
	rand.Shuffle(len(shuffled.Entries), func(i, j int) {
		shuffled.Entries[i], shuffled.Entries[j] = shuffled.Entries[j], shuffled.Entries[i]
	})
	shuffled.Sort()
	d2, err := shuffled.Digest()
	if err != nil || d1 != d2 {
		t.Fatalf("digest after shuffle+sort %s (%v), want %s", d2, err, d1)
	}
	s := m.Summarize()
	if s.Entries != 8 || s.Directories != 2 || s.Regular != 2 || s.HardLinks != 1 || s.Devices != 1 || s.FIFOs != 1 || s.Objects != 2 {
		t.Errorf("summary %+v", s)
	}
}

func TestRawImageManifest(t *testing.T) {
	img := make([]byte, 2*BlockSize+10)
	copy(img[BlockSize:], "data")
	m, err := FromRawImage(context.Background(), bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Image.Blocks) != 3 || m.Image.Blocks[0] != sha256.Sum256(make([]byte, BlockSize)) ||
		m.Image.Blocks[2] != sha256.Sum256(make([]byte, 10)) {
		t.Fatalf("blocks %v", m.Image.Blocks)
	}
	if objs := m.Objects(); len(objs) != 3 || objs[2].Size != 10 {
		t.Fatalf("objects %v", objs)
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Unmarshal(b); err != nil {
		t.Fatal(err)
	}
}

func FuzzUnmarshal(f *testing.F) {
	m := sampleManifest()
	m.Entries = m.Entries[:3]
	m.Sort()
	b, err := m.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(magic + "\x01t\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Unmarshal(b)
		if err != nil {
			return
		}
		// Whatever parses is canonical and valid.
		again, err := m.Marshal()
		if err != nil {
			t.Fatalf("parsed manifest does not marshal: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatal("parsed manifest is not canonical")
		}
	})
}

func FuzzFromTar(f *testing.F) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "./etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644, Size: 4,
		PAXRecords: map[string]string{"SCHILY.xattr.user.a": "b", "SCHILY.acl.access": "user::rw-,group::r--,other::r--"}})
	tw.Write([]byte("root"))
	tw.WriteHeader(&tar.Header{Name: "./etc/hard", Typeflag: tar.TypeLink, Linkname: "./etc/passwd"})
	tw.WriteHeader(&tar.Header{Name: "./lib", Typeflag: tar.TypeSymlink, Linkname: "usr/lib"})
	tw.Close()
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := FromTar(context.Background(), bytes.NewReader(b), TarOptions{MaxSize: 1 << 20})
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("FromTar returned an invalid manifest: %v", err)
		}
		data, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Unmarshal(data); err != nil {
			t.Fatalf("manifest from a tarball does not round-trip: %v", err)
		}
	})
}
