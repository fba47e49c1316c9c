package manifest

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// linkMember is one member of a test tarball: a regular file carrying data,
// or (link set) a hard link to an earlier member, as tar writes them.
type linkMember struct {
	name, data, link string
}

// writeLinkTarball writes members, in that order, to a tarball in dir.
func writeLinkTarball(t *testing.T, dir string, members []linkMember) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		hdr := &tar.Header{Name: m.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(m.data))}
		if m.link != "" {
			hdr = &tar.Header{Name: m.name, Mode: 0o644, Typeflag: tar.TypeLink, Linkname: m.link}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "links.tar")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// The data of a group of hard links lives in the member tar met first; the
// manifest gives it to the group's canonically first name, which may be a
// link member. TarSource must serve the object whichever of the two names
// sorts first, also through chains of links and with "./" names as GNU tar
// writes them.
func TestTarSourceServesHardLinkedObjects(t *testing.T) {
	for _, tc := range []struct {
		name    string
		members []linkMember
		// data is the path the manifest gives the content to; links are
		// the hard links to it.
		data  string
		links []string
	}{
		{"link name sorts before its data member", []linkMember{
			{name: "./etc/three", data: "three\n"},
			{name: "./bin/one", link: "./etc/three"},
		}, "bin/one", []string{"etc/three"}},
		{"link name sorts after its data member", []linkMember{
			{name: "./bin/one", data: "one\n"},
			{name: "./etc/three", link: "./bin/one"},
		}, "bin/one", []string{"etc/three"}},
		{"chain of links around the data member", []linkMember{
			{name: "m/data", data: "chained\n"},
			{name: "z/second", link: "m/data"},
			{name: "a/first", link: "z/second"},
			{name: "m/other", data: "unlinked\n"},
		}, "a/first", []string{"m/data", "z/second"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			path := writeLinkTarball(t, dir, tc.members)
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			m, err := FromTar(ctx, f, TarOptions{})
			f.Close()
			if err != nil {
				t.Fatalf("FromTar: %v", err)
			}
			if i := m.Lookup(tc.data); i < 0 || m.Entries[i].Type != TypeRegular {
				t.Fatalf("manifest: %q should hold the data: %+v", tc.data, m.Entries)
			}
			for _, l := range tc.links {
				if i := m.Lookup(l); i < 0 || m.Entries[i].Type != TypeHardLink || m.Entries[i].Link != tc.data {
					t.Fatalf("manifest: %q should be a hard link to %q: %+v", l, tc.data, m.Entries)
				}
			}

			store, err := objects.OpenLocalStore(filepath.Join(dir, "store"))
			if err != nil {
				t.Fatal(err)
			}
			want := m.Objects()
			if err := TarSource(path, m).Fetch(ctx, want, store); err != nil {
				t.Fatalf("fetch %d objects from the tarball: %v", len(want), err)
			}
			for _, mem := range tc.members {
				if mem.link != "" {
					continue
				}
				r, err := store.Open(ctx, objects.Sum([]byte(mem.data)))
				if err != nil {
					t.Fatalf("content of %s not delivered: %v", mem.name, err)
				}
				got, _ := io.ReadAll(r)
				r.Close()
				if string(got) != mem.data {
					t.Fatalf("content of %s: %q, want %q", mem.name, got, mem.data)
				}
			}
		})
	}
}

// A hard link member before the member it links to cannot be extracted by
// tar either: it is refused, naming the member, rather than guessed at.
func TestFromTarRefusesHardLinkBeforeItsTarget(t *testing.T) {
	path := writeLinkTarball(t, t.TempDir(), []linkMember{
		{name: "./bin/one", link: "./etc/three"},
		{name: "./etc/three", data: "three\n"},
	})
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = FromTar(context.Background(), f, TarOptions{})
	if err == nil || !strings.Contains(err.Error(), `member 1 "./bin/one": hard link to "./etc/three", which is not an earlier member`) {
		t.Fatalf("FromTar of a link before its target: %v", err)
	}
}
