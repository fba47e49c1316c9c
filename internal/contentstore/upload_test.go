package contentstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/faultproxy"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// A first upload sends every object once (duplicates once); a second one of
// the same tree finds nothing missing and sends nothing; after one file
// changes and one is added, exactly those two go up.
func TestUploadOnlyWhatIsMissing(t *testing.T) {
	e := newEnv(t)
	files := map[string][]byte{}
	for i := range 40 {
		files[fmt.Sprintf("etc/f%02d", i)] = content(uint64(i), 100+i*97)
	}
	files["usr/share/dup1"] = files["etc/f03"]
	files["usr/share/dup2"] = files["etc/f03"]
	files["empty"] = nil
	root, m := writeTree(t, files)
	var progress []UploadProgress
	var mu sync.Mutex
	s := e.store(Options{Progress: func(p UploadProgress) {
		mu.Lock()
		progress = append(progress, p)
		mu.Unlock()
	}})

	want := m.Objects()
	if len(want) != 41 { // 40 distinct files + the empty object
		t.Fatalf("manifest names %d objects, want 41", len(want))
	}
	missing, err := s.Missing(e.ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) != len(want) {
		t.Fatalf("empty store lacks %d of %d objects", len(missing), len(want))
	}
	res, err := s.Upload(e.ctx, manifest.DirectorySource(root, m), missing)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, w := range want {
		total += w.Size
	}
	if res.Objects != len(want) || res.Bytes != total {
		t.Fatalf("upload result %+v, want %d objects, %d bytes", res, len(want), total)
	}
	if st := world.Faults.Stat("s3:PutObject"); st.Calls != len(want) {
		t.Fatalf("%d PutObject calls for %d objects", st.Calls, len(want))
	}
	if last := progress[len(progress)-1]; len(progress) != len(want) || last.ObjectsDone != len(want) || last.BytesDone != total || last.ObjectsTotal != len(want) || last.BytesTotal != total {
		t.Fatalf("%d progress calls, last %+v", len(progress), last)
	}
	// Every object is stored under its digest, encrypted, with its bytes.
	for p, b := range files {
		key := s.ObjectKey(objects.Sum(b))
		if got := e.get(key); !bytes.Equal(got, b) {
			t.Fatalf("%s: stored object %s differs", p, key)
		}
		if h := e.head(key); h.ServerSideEncryption != types.ServerSideEncryptionAes256 {
			t.Fatalf("%s: object %s has server-side encryption %q", p, key, h.ServerSideEncryption)
		}
	}

	// Second run: nothing missing, nothing sent.
	world.Faults.Reset()
	missing, err = s.Missing(e.ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) != 0 {
		t.Fatalf("store lacks %d objects after the upload", len(missing))
	}
	res, err = s.Upload(e.ctx, manifest.DirectorySource(root, m), missing)
	if err != nil || res.Objects != 0 || res.Bytes != 0 {
		t.Fatalf("second upload: %+v, %v", res, err)
	}
	if n := s3RequestBytes(); n != 0 {
		t.Fatalf("second upload sent %d bytes", n)
	}
	if st := world.Faults.Stat("s3:PutObject"); st.Calls != 0 {
		t.Fatalf("second upload made %d PutObject calls", st.Calls)
	}

	// One file changes, one is added: two objects go up.
	changed, added := content(1000, 5000), content(1001, 7000)
	if err := os.WriteFile(filepath.Join(root, "etc/f07"), changed, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/new"), added, 0o644); err != nil {
		t.Fatal(err)
	}
	m2 := buildManifest(t, root)
	world.Faults.Reset()
	missing, err = s.Missing(e.ctx, m2.Objects())
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) != 2 {
		t.Fatalf("after changing one file and adding one, %d objects are missing: %v", len(missing), missing)
	}
	res, err = s.Upload(e.ctx, manifest.DirectorySource(root, m2), missing)
	if err != nil {
		t.Fatal(err)
	}
	if res.Objects != 2 || res.Bytes != 12000 {
		t.Fatalf("upload of the change: %+v", res)
	}
	if st := world.Faults.Stat("s3:PutObject"); st.Calls != 2 || st.RequestBytes != 12000 {
		t.Fatalf("upload of the change: %+v", st)
	}
}

// The measure: bytes sent to S3 ≤ 1.05 × bytes of objects new to the
// store, counted at the proxy over every S3 request (existence checks,
// single PutObjects, the parts and the multipart bookkeeping), for a mix of
// sizes like a root filesystem's, a third of which the store already holds.
func TestUploadBytesSentRatio(t *testing.T) {
	e := newEnv(t)
	files := map[string][]byte{}
	seed := uint64(0)
	add := func(n, minSize, maxSize int, dir string) {
		for i := range n {
			seed++
			size := minSize + int(seed*2654435761%uint64(maxSize-minSize+1))
			files[fmt.Sprintf("%s/%04d", dir, i)] = content(seed, size)
		}
	}
	add(300, 32, 8<<10, "usr/share/doc")        // small files: docs, configs, scripts
	add(60, 8<<10, 256<<10, "usr/lib")          // libraries
	add(12, 256<<10, 3<<20, "usr/bin")          // large binaries
	add(1, 13<<20, 13<<20+12345, "usr/lib/big") // one multipart object
	files["usr/share/doc/empty"] = nil
	root, m := writeTree(t, files)
	const threshold = 5 << 20
	// The store's client also counts request headers, which the proxy does
	// not, to report the whole overhead.
	headers := &headerCounter{base: awshttp.NewBuildableClient()}
	s := New(e2client(e.cfg, func(o *s3.Options) { o.HTTPClient = headers }), Location{Bucket: testBucket, Prefix: testPrefix}, Options{MultipartThreshold: threshold})

	// The store already holds every third object, never the big one.
	all := m.Objects()
	var old []objects.Want
	for i, w := range all {
		if i%3 == 0 && w.Size < threshold {
			old = append(old, w)
		}
	}
	if _, err := s.Upload(e.ctx, manifest.DirectorySource(root, m), old); err != nil {
		t.Fatal(err)
	}

	world.Faults.Reset()
	headers.bytes.Store(0)
	missing, err := s.Missing(e.ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) != len(all)-len(old) {
		t.Fatalf("%d missing, want %d", len(missing), len(all)-len(old))
	}
	res, err := s.Upload(e.ctx, manifest.DirectorySource(root, m), missing)
	if err != nil {
		t.Fatal(err)
	}
	var newBytes int64
	for _, w := range missing {
		newBytes += w.Size
	}
	if res.Bytes != newBytes {
		t.Fatalf("uploaded %d bytes of objects, want %d", res.Bytes, newBytes)
	}
	if st := world.Faults.Stat("s3:UploadPart"); st.Calls != 3 {
		t.Fatalf("%d UploadPart calls for a 13 MiB object in 5 MiB parts, want 3", st.Calls)
	}
	sent := s3RequestBytes()
	ratio := float64(sent) / float64(newBytes)
	t.Logf("bytes sent to S3 %d for %d bytes in %d new objects (of %d): ratio %.5f", sent, newBytes, len(missing), len(all), ratio)
	for action, st := range world.Faults.Stats() {
		t.Logf("  %-28s calls %4d  request bytes %d", action, st.Calls, st.RequestBytes)
	}
	withHeaders := float64(sent+headers.bytes.Load()) / float64(newBytes)
	t.Logf("request headers (not counted by the proxy, measured at the client): about %d bytes; ratio with headers %.4f", headers.bytes.Load(), withHeaders)
	if ratio > 1.05 {
		t.Fatalf("sent %.4f × the new bytes, more than 1.05", ratio)
	}
	if sent < newBytes {
		t.Fatalf("the proxy counted %d bytes, fewer than the %d uploaded: the count is wrong", sent, newBytes)
	}
}

// A large object goes up in parts and comes back whole; with KMSKeyID every
// object, single or multipart, is encrypted with that key.
func TestMultipartAndKMS(t *testing.T) {
	e := newEnv(t)
	key, err := kms.NewFromConfig(e.cfg).CreateKey(e.ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	keyID := *key.KeyMetadata.Arn
	big := content(7, 12<<20+1)
	small := content(8, 1000)
	src, want := newMemSource(big, small)
	s := e.store(Options{MultipartThreshold: 5 << 20, KMSKeyID: keyID, TempDir: t.TempDir()})
	res, err := s.Upload(e.ctx, src, want)
	if err != nil {
		t.Fatal(err)
	}
	if res.Objects != 2 || res.Bytes != int64(len(big)+len(small)) {
		t.Fatalf("result %+v", res)
	}
	if st := world.Faults.Stat("s3:UploadPart"); st.Calls != 3 {
		t.Fatalf("%d UploadPart calls, want 3", st.Calls)
	}
	if st := world.Faults.Stat("s3:CompleteMultipartUpload"); st.Calls != 1 {
		t.Fatalf("%d CompleteMultipartUpload calls, want 1", st.Calls)
	}
	if st := world.Faults.Stat("s3:PutObject"); st.Calls != 1 {
		t.Fatalf("%d PutObject calls, want 1 (the small object)", st.Calls)
	}
	for _, b := range [][]byte{big, small} {
		k := s.ObjectKey(objects.Sum(b))
		if !bytes.Equal(e.get(k), b) {
			t.Fatalf("object %s came back different", k)
		}
		h := e.head(k)
		if h.ServerSideEncryption != types.ServerSideEncryptionAwsKms || h.SSEKMSKeyId == nil || *h.SSEKMSKeyId != keyID {
			t.Fatalf("object %s: encryption %q key %v, want aws:kms with %s", k, h.ServerSideEncryption, h.SSEKMSKeyId, keyID)
		}
	}
}

// Content that does not hash to its digest is an error wrapping
// objects.ErrMismatch, and nothing is stored under that digest, whether the
// object was verified in memory or in a spool file; spool files are gone.
func TestUploadMismatchStoresNothing(t *testing.T) {
	e := newEnv(t)
	good, small, large := content(1, 3000), content(2, 2000), content(3, memoryObjectLimit+4096)
	for _, tc := range []struct {
		name   string
		victim []byte
		wrong  []byte
	}{
		{"small, other bytes", small, content(99, len(small))},
		{"small, truncated", small, small[:len(small)-1]},
		{"small, too long", small, append(append([]byte{}, small...), 0)},
		{"large, other bytes", large, append(append([]byte{}, large[:len(large)-1]...), large[len(large)-1]^1)},
		{"large, truncated", large, large[:len(large)/2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, want := newMemSource(good, tc.victim)
			src.corrupt[objects.Sum(tc.victim)] = tc.wrong
			spool := t.TempDir()
			s := e.store(Options{TempDir: spool})
			_, err := s.Upload(e.ctx, src, want)
			mustErr(t, err, objects.ErrMismatch, objects.Sum(tc.victim).String())
			if h := e.head(s.ObjectKey(objects.Sum(tc.victim))); h != nil {
				t.Fatalf("an object was stored under the digest of mismatching content")
			}
			left, err := os.ReadDir(spool)
			if err != nil {
				t.Fatal(err)
			}
			if len(left) != 0 {
				t.Fatalf("spool files left behind: %v", left)
			}
		})
	}

	// A file that changed since its manifest was built, read by the real
	// directory source.
	root, m := writeTree(t, map[string][]byte{"a": content(5, 100), "b": content(6, 200)})
	if err := os.WriteFile(filepath.Join(root, "b"), content(7, 200), 0o644); err != nil {
		t.Fatal(err)
	}
	s := e.store(Options{})
	_, err := s.Upload(e.ctx, manifest.DirectorySource(root, m), m.Objects())
	mustErr(t, err, objects.ErrMismatch)
	if h := e.head(s.ObjectKey(objects.Sum(content(6, 200)))); h != nil {
		t.Fatal("the changed file was stored under its old digest")
	}
	if h := e.head(s.ObjectKey(objects.Sum(content(7, 200)))); h != nil {
		t.Fatal("the changed file was stored under its new digest, which no manifest names")
	}
}

// A source that leaves out an object it was asked for is an error, not a
// silent gap that PutRevision would only find later.
func TestUploadNoticesUndeliveredObjects(t *testing.T) {
	e := newEnv(t)
	src, want := newMemSource(content(1, 10), content(2, 20))
	lazy := objectsSourceFunc(func(sink objects.Sink) error {
		return sink.Put(e.ctx, want[0], bytes.NewReader(src.objects[want[0].Digest]))
	})
	_, err := e.store(Options{}).Upload(e.ctx, lazy, want)
	mustErr(t, err, objects.ErrNotFound, "delivered 1 of 2 objects", want[1].Digest.String())

	// A Put of something not asked for is refused.
	stray := objectsSourceFunc(func(sink objects.Sink) error {
		b := content(3, 30)
		return sink.Put(e.ctx, objects.Want{Digest: objects.Sum(b), Size: 30}, bytes.NewReader(b))
	})
	_, err = e.store(Options{}).Upload(e.ctx, stray, want)
	mustErr(t, err, nil, "was not asked for")
}

type objectsSourceFunc func(objects.Sink) error

func (f objectsSourceFunc) Fetch(_ context.Context, _ []objects.Want, sink objects.Sink) error {
	return f(sink)
}

// Throttled PutObject and UploadPart calls are retried by the SDK's retryer
// (with a small MaxBackoff here) and the upload succeeds.
func TestUploadThroughThrottling(t *testing.T) {
	e := newEnv(t)
	var blobs [][]byte
	for i := range 20 {
		blobs = append(blobs, content(uint64(i), 1000+i))
	}
	blobs = append(blobs, content(100, 11<<20))
	src, want := newMemSource(blobs...)
	world.Faults.SetRules(
		faultproxy.Rule{Actions: []string{"s3:PutObject"}, Throttle: faultproxy.Share{First: 3, Fraction: 0.25}},
		faultproxy.Rule{Actions: []string{"s3:UploadPart"}, Throttle: faultproxy.Share{First: 1}},
	)
	s := e.store(Options{MultipartThreshold: 5 << 20})
	res, err := s.Upload(e.ctx, src, want)
	if err != nil {
		t.Fatalf("upload through throttling: %v", err)
	}
	if res.Objects != len(want) {
		t.Fatalf("result %+v", res)
	}
	if st := world.Faults.Stat("s3:PutObject"); st.Throttled < 3 || st.Calls != 20+st.Throttled {
		t.Fatalf("PutObject: %+v, want at least 3 throttled and every object sent once more", st)
	}
	if st := world.Faults.Stat("s3:UploadPart"); st.Throttled != 1 || st.Calls != 4 {
		t.Fatalf("UploadPart: %+v, want 1 throttled of 4", st)
	}
	world.Faults.SetRules()
	missing, err := s.Missing(e.ctx, want)
	if err != nil || len(missing) != 0 {
		t.Fatalf("after the upload %d objects are missing (%v)", len(missing), err)
	}
	for _, b := range blobs {
		if !bytes.Equal(e.get(s.ObjectKey(objects.Sum(b))), b) {
			t.Fatal("an object came back different")
		}
	}
}

// A 403 on upload names the bucket and says the credentials cannot write it.
func TestUploadAccessDenied(t *testing.T) {
	e := newEnv(t)
	s, dc := e.deniedStore(func(r *http.Request) bool { return r.Method == http.MethodPut })
	src, want := newMemSource(content(1, 100))
	_, err := s.Upload(e.ctx, src, want)
	mustErr(t, err, ErrAccessDenied, `credentials cannot write to bucket "`+testBucket+`"`)
	if dc.denied == 0 {
		t.Fatal("no request was denied")
	}
	if errors.Is(err, objects.ErrMismatch) {
		t.Fatal("a denied upload reported as a mismatch")
	}
}

// headerCounter adds up the request line and headers of every request,
// roughly as HTTP/1.1 puts them on the wire.
type headerCounter struct {
	base  aws.HTTPClient
	bytes atomic.Int64
}

func (c *headerCounter) Do(r *http.Request) (*http.Response, error) {
	n := len(r.Method) + 1 + len(r.URL.RequestURI()) + len(" HTTP/1.1\r\n") + len("Host: \r\n") + len(r.Host) + len("\r\n")
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + 2 + len(v) + 2
		}
	}
	if r.ContentLength > 0 {
		n += len("Content-Length: \r\n") + len(fmt.Sprint(r.ContentLength))
	}
	c.bytes.Add(int64(n))
	return c.base.Do(r)
}
