package contentstore

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// uploadRevision uploads what m lacks from root and writes the revision.
func uploadRevision(t *testing.T, e *env, s *Store, stream, root string, m *manifest.Manifest) (StreamRecord, string) {
	t.Helper()
	missing, err := s.Missing(e.ctx, m.Objects())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Upload(e.ctx, manifest.DirectorySource(root, m), missing); err != nil {
		t.Fatal(err)
	}
	d, err := m.Digest()
	if err != nil {
		t.Fatal(err)
	}
	sum := m.Summarize()
	rec := StreamRecord{Name: stream, Revision: d.String(), Kind: StreamKindTree, SizeBytes: sum.Bytes, FileCount: int64(sum.Regular), Extra: map[string]string{"source": root}}
	uri, err := s.PutRevision(e.ctx, rec, m)
	if err != nil {
		t.Fatal(err)
	}
	got, found, err := s.GetStream(e.ctx, stream)
	if err != nil || !found {
		t.Fatalf("stream %q after PutRevision: found=%v, %v", stream, found, err)
	}
	return got, uri
}

// PutRevision refuses a manifest naming an object the store lacks and then
// writes nothing; once the object is there it writes the manifest, then the
// record.
func TestPutRevisionRefusesMissingObjects(t *testing.T) {
	e := newEnv(t)
	s := e.store(Options{})
	root, m := writeTree(t, map[string][]byte{"a": content(1, 100), "b": content(2, 200), "c/d": content(3, 300)})
	all := m.Objects()
	held := slices.DeleteFunc(slices.Clone(all), func(w objects.Want) bool { return w.Digest == objects.Sum(content(2, 200)) })
	if _, err := s.Upload(e.ctx, manifest.DirectorySource(root, m), held); err != nil {
		t.Fatal(err)
	}
	d, _ := m.Digest()
	rec := StreamRecord{Name: "web/al2023", Revision: d.String(), Kind: StreamKindTree}
	_, err := s.PutRevision(e.ctx, rec, m)
	mustErr(t, err, objects.ErrNotFound, "lacks 1 of the objects", s.ObjectKey(objects.Sum(content(2, 200))), "upload them first")
	if keys := e.keys(testPrefix + "streams/"); len(keys) != 0 {
		t.Fatalf("a refused revision wrote %v", keys)
	}
	if _, found, err := s.GetStream(e.ctx, "web/al2023"); found || err != nil {
		t.Fatalf("stream after a refused revision: found=%v, %v", found, err)
	}

	if _, err := s.Upload(e.ctx, manifest.DirectorySource(root, m), all); err != nil {
		t.Fatal(err)
	}
	world.Faults.Reset()
	uri, err := s.PutRevision(e.ctx, rec, m)
	if err != nil {
		t.Fatal(err)
	}
	if want := s.ManifestURI("web/al2023", d.String()); uri != want {
		t.Fatalf("URI %s, want %s", uri, want)
	}
	// Two writes: the manifest, then the record, both encrypted.
	if st := world.Faults.Stat("s3:PutObject"); st.Calls != 2 {
		t.Fatalf("PutRevision made %d PutObject calls, want 2", st.Calls)
	}
	for _, key := range []string{testPrefix + "streams/web/al2023/revisions/" + d.String() + ".manifest", testPrefix + "streams/web/al2023/stream.json"} {
		h := e.head(key)
		if h == nil || h.ServerSideEncryption != types.ServerSideEncryptionAes256 {
			t.Fatalf("%s: %+v", key, h)
		}
	}
}

// A stream round-trips: record and manifest come back as written, a second
// revision moves the record, and both manifests stay readable.
func TestStreamRoundTrip(t *testing.T) {
	e := newEnv(t)
	s := e.store(Options{})
	if _, found, err := s.GetStream(e.ctx, "base/bookworm"); found || err != nil {
		t.Fatalf("unknown stream: found=%v, %v", found, err)
	}
	root, m1 := writeTree(t, map[string][]byte{"etc/os-release": []byte("bookworm\n"), "bin/sh": content(1, 5000)})
	before := time.Now().UTC().Add(-time.Second)
	rec1, uri1 := uploadRevision(t, e, s, "base/bookworm", root, m1)
	d1, _ := m1.Digest()
	body1, _ := m1.Marshal()
	if rec1.Name != "base/bookworm" || rec1.Revision != d1.String() || rec1.ManifestDigest != objects.Sum(body1).String() ||
		rec1.Kind != StreamKindTree || rec1.FileCount != 2 || rec1.SizeBytes != 5009 || rec1.Extra["source"] != root ||
		rec1.CreatedAt.Before(before) || rec1.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("record %+v", rec1)
	}
	if !strings.HasSuffix(uri1, "/streams/base/bookworm/revisions/"+d1.String()+".manifest") || !strings.HasPrefix(uri1, "s3://"+testBucket+"/"+testPrefix) {
		t.Fatalf("URI %s", uri1)
	}
	got, err := s.GetManifest(e.ctx, "base/bookworm", d1.String())
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := got.Marshal(); !bytes.Equal(b, body1) {
		t.Fatal("the manifest came back different")
	}
	// The stored manifest is the canonical bytes.
	if !bytes.Equal(e.get(testPrefix+"streams/base/bookworm/revisions/"+d1.String()+".manifest"), body1) {
		t.Fatal("the stored manifest is not the canonical serialization")
	}
	var stored StreamRecord
	if err := json.Unmarshal(e.get(testPrefix+"streams/base/bookworm/stream.json"), &stored); err != nil || stored.Revision != d1.String() {
		t.Fatalf("stream.json: %+v, %v", stored, err)
	}

	// Revision 2.
	if err := writeFile(root, "etc/os-release", []byte("bookworm 12.6\n")); err != nil {
		t.Fatal(err)
	}
	m2 := buildManifest(t, root)
	rec2, _ := uploadRevision(t, e, s, "base/bookworm", root, m2)
	d2, _ := m2.Digest()
	if rec2.Revision != d2.String() || d2 == d1 {
		t.Fatalf("second record %+v", rec2)
	}
	for _, r := range []objects.Digest{d1, d2} {
		if _, err := s.GetManifest(e.ctx, "base/bookworm", r.String()); err != nil {
			t.Fatalf("revision %s: %v", r, err)
		}
	}
	_, err = s.GetManifest(e.ctx, "base/bookworm", strings.Repeat("0", 64))
	mustErr(t, err, objects.ErrNotFound, "has no revision")

	// A raw image stream gets its kind from the manifest.
	raw, err := manifest.FromRawImage(e.ctx, bytes.NewReader(content(9, manifest.BlockSize+10)), manifest.BlockSize+10)
	if err != nil {
		t.Fatal(err)
	}
	src, _ := newMemSource(content(9, manifest.BlockSize+10)[:manifest.BlockSize], content(9, manifest.BlockSize+10)[manifest.BlockSize:])
	if _, err := s.Upload(e.ctx, src, raw.Objects()); err != nil {
		t.Fatal(err)
	}
	dr, _ := raw.Digest()
	if _, err := s.PutRevision(e.ctx, StreamRecord{Name: "unikernel", Revision: dr.String()}, raw); err != nil {
		t.Fatal(err)
	}
	if rec, _, err := s.GetStream(e.ctx, "unikernel"); err != nil || rec.Kind != StreamKindRawImage {
		t.Fatalf("raw stream record %+v, %v", rec, err)
	}
	if m, err := s.GetManifest(e.ctx, "unikernel", dr.String()); err != nil || m.Kind != manifest.KindRawImage || len(m.Image.Blocks) != 2 {
		t.Fatalf("raw manifest %+v, %v", m, err)
	}
}

// Bad records are refused before anything is written.
func TestPutRevisionBadInput(t *testing.T) {
	e := newEnv(t)
	s := e.store(Options{})
	_, m := writeTree(t, map[string][]byte{"a": nil})
	d, _ := m.Digest()
	for _, tc := range []struct {
		rec  StreamRecord
		m    *manifest.Manifest
		frag string
	}{
		{StreamRecord{Name: "Web", Revision: d.String()}, m, "character 'W'"},
		{StreamRecord{Name: "web", Revision: "a/b"}, m, "revision \"a/b\""},
		{StreamRecord{Name: "web", Revision: d.String()}, nil, "no manifest"},
		{StreamRecord{Name: "web", Revision: d.String(), ManifestDigest: strings.Repeat("1", 64)}, m, "is not the manifest's"},
		{StreamRecord{Name: "web", Revision: d.String(), Kind: StreamKindRawImage}, m, "does not suit"},
		{StreamRecord{Name: "web", Revision: d.String(), Kind: "disk"}, m, `kind "disk"`},
		{StreamRecord{Name: "web", Revision: d.String()}, &manifest.Manifest{Kind: manifest.KindTree}, "manifest"},
	} {
		_, err := s.PutRevision(e.ctx, tc.rec, tc.m)
		mustErr(t, err, nil, tc.frag)
	}
	if keys := e.keys(""); len(keys) != 0 {
		t.Fatalf("bad input wrote %v", keys)
	}
	for _, name := range []string{"", "a//b", "../x"} {
		if _, _, err := s.GetStream(e.ctx, name); err == nil {
			t.Errorf("GetStream(%q) accepted the name", name)
		}
		if err := s.DeleteStream(e.ctx, name); err == nil {
			t.Errorf("DeleteStream(%q) accepted the name", name)
		}
	}
}

// Deleting a stream removes its manifests and record and leaves the objects
// (shared with other streams) and streams nested under its name alone.
func TestDeleteStreamLeavesObjects(t *testing.T) {
	e := newEnv(t)
	s := e.store(Options{})
	root, m1 := writeTree(t, map[string][]byte{"a": content(1, 100), "b": content(2, 200)})
	uploadRevision(t, e, s, "web", root, m1)
	if err := writeFile(root, "a", content(3, 300)); err != nil {
		t.Fatal(err)
	}
	m2 := buildManifest(t, root)
	uploadRevision(t, e, s, "web", root, m2)
	uploadRevision(t, e, s, "web/al2023", root, m2)
	uploadRevision(t, e, s, "web/revisions", root, m1) // its record sits in web's revisions/ folder
	uploadRevision(t, e, s, "webx", root, m1)

	objectsBefore := e.keys(testPrefix + "objects/")
	if len(objectsBefore) != 3 {
		t.Fatalf("%d objects stored, want 3", len(objectsBefore))
	}
	if err := s.DeleteStream(e.ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if _, found, err := s.GetStream(e.ctx, "web"); found || err != nil {
		t.Fatalf("deleted stream: found=%v, %v", found, err)
	}
	var webKeys []string
	for _, k := range e.keys(testPrefix + "streams/web/") {
		rest := strings.TrimPrefix(k, testPrefix+"streams/web/")
		if rest == "stream.json" || strings.HasPrefix(rest, "revisions/") && strings.Count(rest, "/") == 1 && strings.HasSuffix(rest, ".manifest") {
			webKeys = append(webKeys, k)
		}
	}
	if len(webKeys) != 0 {
		t.Fatalf("left after delete: %v", webKeys)
	}
	for _, other := range []string{"web/al2023", "web/revisions", "webx"} {
		rec, found, err := s.GetStream(e.ctx, other)
		if err != nil || !found {
			t.Fatalf("stream %q after deleting \"web\": found=%v, %v", other, found, err)
		}
		if _, err := s.GetManifest(e.ctx, other, rec.Revision); err != nil {
			t.Fatalf("stream %q lost its manifest: %v", other, err)
		}
	}
	if got := e.keys(testPrefix + "objects/"); !slices.Equal(got, objectsBefore) {
		t.Fatalf("objects after delete: %v, before: %v", got, objectsBefore)
	}
	// Again: nothing to do, no error.
	if err := s.DeleteStream(e.ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteStream(e.ctx, "never/existed"); err != nil {
		t.Fatal(err)
	}
}

// Reads that S3 refuses say the credentials cannot read the bucket.
func TestStreamAccessDenied(t *testing.T) {
	e := newEnv(t)
	s, _ := e.deniedStore(func(r *http.Request) bool { return r.Method == http.MethodGet })
	_, _, err := s.GetStream(e.ctx, "web")
	mustErr(t, err, ErrAccessDenied, `credentials cannot read bucket "`+testBucket+`"`)
	_, err = s.GetManifest(e.ctx, "web", "r1")
	mustErr(t, err, ErrAccessDenied, `credentials cannot read bucket "`+testBucket+`"`)
	err = s.DeleteStream(e.ctx, "web")
	mustErr(t, err, ErrAccessDenied, `credentials cannot read bucket "`+testBucket+`"`)
}
