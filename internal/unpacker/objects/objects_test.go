package objects

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/inprocess"
)

func want(b []byte) Want { return Want{Digest: sha256.Sum256(b), Size: int64(len(b))} }

func TestDigestText(t *testing.T) {
	d := Sum([]byte("x"))
	back, err := ParseDigest(d.String())
	if err != nil || back != d {
		t.Fatalf("round trip: %v %v", back, err)
	}
	for _, bad := range []string{"", "abc", strings.ToUpper(d.String()), d.String()[:63] + "g"} {
		if _, err := ParseDigest(bad); err == nil {
			t.Errorf("ParseDigest(%q) accepted", bad)
		}
	}
}

func TestCopyVerifies(t *testing.T) {
	content := []byte("the object")
	cases := []struct {
		name  string
		input []byte
		want  Want
		err   string
	}{
		{"exact", content, want(content), ""},
		{"short", content[:4], want(content), "truncated"},
		{"long", append(bytes.Clone(content), '!'), want(content), "longer than"},
		{"wrong", bytes.ToUpper(content), want(content), "hashes to"},
		{"gigantic", content, Want{Digest: Sum(content), Size: MaxObjectSize + 1}, "declared size"},
	}
	for _, tc := range cases {
		var out bytes.Buffer
		err := Copy(&out, bytes.NewReader(tc.input), tc.want)
		if tc.err == "" {
			if err != nil || !bytes.Equal(out.Bytes(), content) {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrMismatch) {
			t.Errorf("%s: error %v, want %q wrapping ErrMismatch", tc.name, err, tc.err)
		}
	}
}

func TestLocalStoreNeverKeepsBadObjects(t *testing.T) {
	ctx := context.Background()
	s, err := OpenLocalStore(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	good := []byte("good object")
	if err := s.Put(ctx, want(good), bytes.NewReader([]byte("evil object"))); !errors.Is(err, ErrMismatch) {
		t.Fatalf("bad put: %v", err)
	}
	if ok, _ := s.Has(ctx, want(good).Digest); ok {
		t.Fatal("a mismatched object was stored")
	}
	if err := s.Put(ctx, want(good), bytes.NewReader(good)); err != nil {
		t.Fatal(err)
	}
	rc, err := s.Open(ctx, want(good).Digest)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, good) {
		t.Fatalf("read back %q", got)
	}
	w, err := s.Ingest(ctx, strings.NewReader("ingested"))
	if err != nil || w != want([]byte("ingested")) {
		t.Fatalf("ingest: %v %v", w, err)
	}
	if _, err := s.Open(ctx, Sum([]byte("absent"))); !errors.Is(err, ErrNotFound) {
		t.Fatalf("open absent: %v", err)
	}
	// No temporary files are left behind.
	err = filepath.Walk(s.Dir(), func(p string, fi os.FileInfo, err error) error {
		if strings.HasPrefix(filepath.Base(p), "tmp-") {
			t.Errorf("temporary file left: %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// A store is a Source.
	dst, _ := OpenLocalStore(filepath.Join(t.TempDir(), "dst"))
	if err := s.Fetch(ctx, []Want{want(good), w}, dst); err != nil {
		t.Fatal(err)
	}
	if ok, _ := dst.Has(ctx, w.Digest); !ok {
		t.Fatal("fetch did not copy")
	}
}

// objectServer serves objects by path /<hex>, failing the first failures
// requests for each object with 503 and counting requests. Each request
// takes 5 ms (of a synctest bubble's fake time), so that requests overlap
// as much as the client lets them.
type objectServer struct {
	objects  map[string][]byte
	failures int
	mu       sync.Mutex
	seen     map[string]int
	inFlight atomic.Int32
	maxSeen  atomic.Int32
}

func (o *objectServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := o.inFlight.Add(1)
	defer o.inFlight.Add(-1)
	for {
		m := o.maxSeen.Load()
		if n <= m || o.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(5 * time.Millisecond) // fake time: see synctest
	key := strings.TrimPrefix(r.URL.Path, "/")
	o.mu.Lock()
	o.seen[key]++
	count := o.seen[key]
	o.mu.Unlock()
	if count <= o.failures {
		http.Error(w, "slow down", http.StatusServiceUnavailable)
		return
	}
	b, ok := o.objects[key]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Write(b)
}

// TestURLSourceFetchesBatchesAsTheyArrive runs in a synctest bubble: the
// server's latency and the fetcher's backoff are fake time, and after
// each step the test waits until every download that can run has run.
func TestURLSourceFetchesBatchesAsTheyArrive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		srv := &objectServer{objects: map[string][]byte{}, failures: 1, seen: map[string]int{}}
		var wants []Want
		urls := map[Digest]string{}
		for i := range 20 {
			b := bytes.Repeat([]byte{byte(i)}, 1000+i)
			w := want(b)
			srv.objects[w.Digest.String()] = b
			wants = append(wants, w)
			urls[w.Digest] = "http://store.test/" + w.Digest.String() + "?X-Amz-Signature=s3cr3t"
		}
		f := NewHTTPFetcher(FetcherOptions{RetryMax: 3, HTTPClient: inprocess.Client(srv)})
		src := NewURLSource(f, 4)
		sink, _ := OpenLocalStore(t.TempDir())
		done := make(chan error, 1)
		go func() { done <- src.Fetch(ctx, wants, sink) }()

		// The daemon learns what is pending and supplies URLs in two batches.
		synctest.Wait()
		if n := len(src.Pending()); n != len(wants) {
			t.Fatalf("pending: %d, want %d", n, len(wants))
		}
		first, second := map[Digest]string{}, map[Digest]string{}
		for i, w := range wants {
			if i < 10 {
				first[w.Digest] = urls[w.Digest]
			} else {
				second[w.Digest] = urls[w.Digest]
			}
		}
		if err := src.Supply(first); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if n := len(src.Pending()); n != 10 {
			t.Errorf("after the first batch %d objects pending, want 10", n)
		}
		if err := src.Supply(second); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		for _, w := range wants {
			if ok, _ := sink.Has(ctx, w.Digest); !ok {
				t.Fatalf("object %s not fetched", w.Digest)
			}
		}
		if m := srv.maxSeen.Load(); m != 4 {
			t.Errorf("%d concurrent requests at most, want the limit of 4", m)
		}
		for _, w := range wants {
			if n := srv.seen[w.Digest.String()]; n != 2 {
				t.Errorf("object fetched %d times; want once more after the 503", n)
			}
		}
	})
}

func TestHTTPFetcherRejectsWrongContentWithoutLeakingTheURL(t *testing.T) {
	var requests atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Write([]byte("not the object"))
	}))
	defer ts.Close()
	sink, _ := OpenLocalStore(t.TempDir())
	good := []byte("the object....")
	err := NewHTTPFetcher(FetcherOptions{RetryMax: 1}).Get(context.Background(), ts.URL+"/o?X-Amz-Signature=s3cr3t", want(good), sink)
	if !errors.Is(err, ErrMismatch) {
		t.Fatalf("got %v, want a mismatch", err)
	}
	if requests.Load() != 1 {
		t.Errorf("wrong content requested %d times: another attempt cannot cure it", requests.Load())
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("error leaks the signature: %v", err)
	}
	if ok, _ := sink.Has(context.Background(), want(good).Digest); ok {
		t.Fatal("wrong content stored")
	}
}
