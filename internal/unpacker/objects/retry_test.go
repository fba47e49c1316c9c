package objects

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitRecorder replaces the fetcher's sleeps: it records each wait the
// retry policy computed and lets retryablehttp wait not at all.
type waitRecorder struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (r *waitRecorder) pause(d time.Duration) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waits = append(r.waits, d)
	return 0
}

func (r *waitRecorder) recorded() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.waits...)
}

// testFetcher is a fetcher that never sleeps; its waits are recorded.
func testFetcher(opts FetcherOptions) (*HTTPFetcher, *waitRecorder) {
	f := NewHTTPFetcher(opts)
	rec := &waitRecorder{}
	f.pause = rec.pause
	return f, rec
}

// countingServer answers every request with respond(n), n counting from 1.
func countingServer(t *testing.T, respond func(n int64, w http.ResponseWriter)) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		respond(n.Add(1), w)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

const slowDownBody = `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>R</RequestId><HostId>H</HostId></Error>`

// TestHTTPFetcherRetriesInOneLayer: against a server that always answers
// 503, one object is requested exactly 1 + RetryMax times (not RetryMax²),
// with exponential, jittered waits, and the error says why it gave up.
func TestHTTPFetcherRetriesInOneLayer(t *testing.T) {
	srv, requests := countingServer(t, func(_ int64, w http.ResponseWriter) {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	})
	obj := []byte("the object")
	f, rec := testFetcher(FetcherOptions{})
	sink, _ := OpenLocalStore(t.TempDir())
	err := f.Get(context.Background(), srv.URL+"/o?X-Amz-Signature=s3cr3t", want(obj), sink)
	if got, wantN := requests.Load(), int64(defaultRetryMax+1); got != wantN {
		t.Fatalf("the object was requested %d times, want %d (one retry layer)", got, wantN)
	}
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusServiceUnavailable || se.Code != "" {
		t.Fatalf("error %v, want a StatusError 503", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("giving up after %d attempts", defaultRetryMax+1)) || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error %q: want the attempts, never the signature", err)
	}
	waits := rec.recorded()
	if len(waits) != defaultRetryMax {
		t.Fatalf("waited %d times, want %d: %v", len(waits), defaultRetryMax, waits)
	}
	for i, w := range waits {
		full := min(retryWaitMin<<i, retryWaitMax)
		if w < full/2 || w > full {
			t.Errorf("wait before retry %d: %s, want %s…%s", i+1, w, full/2, full)
		}
	}

	// A negative RetryMax means no retries: one attempt.
	requests.Store(0)
	f, _ = testFetcher(FetcherOptions{RetryMax: -1})
	if err := f.Get(context.Background(), srv.URL+"/o", want(obj), sink); err == nil || requests.Load() != 1 {
		t.Errorf("RetryMax -1: %d requests, error %v; want one request and its error", requests.Load(), err)
	}
}

// TestHTTPFetcherHonoursSlowDownAndRetryAfter: S3's 503 SlowDown with a
// Retry-After waits exactly what the server asked for; without it, the
// throttling backoff (longer than the plain one) applies.
func TestHTTPFetcherHonoursSlowDownAndRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name       string
		retryAfter string
		// check says what is wrong with the wait before retry i, or "".
		check func(i int, w time.Duration) string
	}{
		{"Retry-After seconds", "7", func(_ int, w time.Duration) string {
			if w != 7*time.Second {
				return "want 7s"
			}
			return ""
		}},
		{"no Retry-After", "", func(i int, w time.Duration) string {
			full := min(throttleWaitMin<<i, throttleWaitMax)
			if w < full/2 || w > full {
				return fmt.Sprintf("want %s…%s", full/2, full)
			}
			return ""
		}},
		{"Retry-After zero", "0", func(i int, w time.Duration) string {
			// "Retry-After: 0" would be a busy loop: the backoff applies.
			full := min(throttleWaitMin<<i, throttleWaitMax)
			if w < full/2 || w > full {
				return fmt.Sprintf("want %s…%s", full/2, full)
			}
			return ""
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, requests := countingServer(t, func(_ int64, w http.ResponseWriter) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte(slowDownBody))
			})
			obj := []byte("the object")
			f, rec := testFetcher(FetcherOptions{RetryMax: 4})
			sink, _ := OpenLocalStore(t.TempDir())
			err := f.Get(context.Background(), srv.URL+"/o", want(obj), sink)
			if got := requests.Load(); got != 5 {
				t.Fatalf("requested %d times, want 5 (RetryMax 4)", got)
			}
			var se *StatusError
			if !errors.As(err, &se) || se.Code != "SlowDown" || !se.Throttled() || se.Message != "Please reduce your request rate." {
				t.Fatalf("error %v, want the S3 SlowDown error", err)
			}
			if !strings.Contains(err.Error(), "SlowDown: Please reduce your request rate.") {
				t.Errorf("error %q does not quote S3's code and message", err)
			}
			waits := rec.recorded()
			if len(waits) != 4 {
				t.Fatalf("waited %d times, want 4: %v", len(waits), waits)
			}
			for i, w := range waits {
				if msg := tc.check(i, w); msg != "" {
					t.Errorf("wait before retry %d: %s, %s", i+1, w, msg)
				}
			}
		})
	}
}

// TestHTTPFetcherRetryAfterDate: a Retry-After given as an HTTP date counts
// from the fetcher's clock.
func TestHTTPFetcherRetryAfterDate(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	srv, requests := countingServer(t, func(n int64, w http.ResponseWriter) {
		if n == 1 {
			w.Header().Set("Retry-After", now.Add(9*time.Second).Format(http.TimeFormat))
			http.Error(w, "busy", http.StatusTooManyRequests)
			return
		}
		w.Write([]byte("the object"))
	})
	f, rec := testFetcher(FetcherOptions{})
	f.now = func() time.Time { return now }
	sink, _ := OpenLocalStore(t.TempDir())
	if err := f.Get(context.Background(), srv.URL+"/o", want([]byte("the object")), sink); err != nil {
		t.Fatal(err)
	}
	if got := requests.Load(); got != 2 {
		t.Errorf("requested %d times, want 2", got)
	}
	if waits := rec.recorded(); len(waits) != 1 || waits[0] != 9*time.Second {
		t.Errorf("waits %v, want [9s]", waits)
	}
}

// TestHTTPFetcherRetriesWhatMayPass: which answers are retried. Transient
// ones (408, 429, 500 InternalError, 502, 503, 504) are retried and a later
// success counts; refusals (other 4xx) and 501 are final at once.
func TestHTTPFetcherRetriesWhatMayPass(t *testing.T) {
	obj := []byte("the object")
	for _, tc := range []struct {
		status int
		body   string
		retry  bool
	}{
		{http.StatusInternalServerError, `<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>`, true},
		{http.StatusBadGateway, "", true},
		{http.StatusServiceUnavailable, slowDownBody, true},
		{http.StatusGatewayTimeout, "", true},
		{http.StatusTooManyRequests, "", true},
		{http.StatusRequestTimeout, "", true},
		{http.StatusNotImplemented, "", false},
		{http.StatusBadRequest, "", false},
		{http.StatusUnauthorized, "", false},
		{http.StatusForbidden, `<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>`, false},
		{http.StatusNotFound, `<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>`, false},
		{http.StatusConflict, "", false},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			// Fails twice, then serves the object.
			srv, requests := countingServer(t, func(n int64, w http.ResponseWriter) {
				if n <= 2 {
					w.WriteHeader(tc.status)
					w.Write([]byte(tc.body))
					return
				}
				w.Write(obj)
			})
			f, rec := testFetcher(FetcherOptions{})
			sink, _ := OpenLocalStore(t.TempDir())
			err := f.Get(context.Background(), srv.URL+"/o", want(obj), sink)
			if tc.retry {
				if err != nil || requests.Load() != 3 || len(rec.recorded()) != 2 {
					t.Fatalf("err %v after %d requests and waits %v; want the object on the third attempt", err, requests.Load(), rec.recorded())
				}
				if ok, _ := sink.Has(context.Background(), want(obj).Digest); !ok {
					t.Fatal("the object was not stored")
				}
				return
			}
			var se *StatusError
			if !errors.As(err, &se) || se.StatusCode != tc.status {
				t.Fatalf("err %v, want the StatusError %d", err, tc.status)
			}
			if requests.Load() != 1 || len(rec.recorded()) != 0 {
				t.Fatalf("requested %d times (waits %v), want once", requests.Load(), rec.recorded())
			}
			if strings.Contains(err.Error(), "giving up") {
				t.Errorf("error %q speaks of giving up after one attempt", err)
			}
		})
	}
}

// TestHTTPFetcherRefusesLongRetryAfter: a server asking for a longer pause
// than the fetcher waits is not retried, and the error says so.
func TestHTTPFetcherRefusesLongRetryAfter(t *testing.T) {
	srv, requests := countingServer(t, func(_ int64, w http.ResponseWriter) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(slowDownBody))
	})
	f, rec := testFetcher(FetcherOptions{})
	sink, _ := OpenLocalStore(t.TempDir())
	err := f.Get(context.Background(), srv.URL+"/o", want([]byte("x")), sink)
	if requests.Load() != 1 || len(rec.recorded()) != 0 {
		t.Fatalf("requested %d times, waits %v; want once, no wait", requests.Load(), rec.recorded())
	}
	if err == nil || !strings.Contains(err.Error(), "Retry-After 1h0m0s") || !strings.Contains(err.Error(), "longer pause") {
		t.Fatalf("error %v, want one naming the Retry-After it did not honour", err)
	}
}

// TestHTTPFetcherHonoursContextWhileWaiting: a context cancelled during
// the wait before a retry ends the download at once, naming the last
// failure, and no further attempt is made.
func TestHTTPFetcherHonoursContextWhileWaiting(t *testing.T) {
	srv, requests := countingServer(t, func(_ int64, w http.ResponseWriter) {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := NewHTTPFetcher(FetcherOptions{})
	f.pause = func(time.Duration) time.Duration {
		cancel()         // the caller gives up while the fetcher waits…
		return time.Hour // …a wait the test would never see end
	}
	sink, _ := OpenLocalStore(t.TempDir())
	err := f.Get(ctx, srv.URL+"/o", want([]byte("x")), sink)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if !strings.Contains(err.Error(), "HTTP 503") || !strings.Contains(err.Error(), "after 1 attempt ") {
		t.Errorf("error %q does not name the last failure and the attempts", err)
	}
	if requests.Load() != 1 {
		t.Errorf("requested %d times, want 1", requests.Load())
	}
}

// TestHTTPFetcherRetriesABodyThatBreaksOff: a body shorter than its
// Content-Length (the connection broke) is fetched again.
func TestHTTPFetcherRetriesABodyThatBreaksOff(t *testing.T) {
	obj := bytes.Repeat([]byte("0123456789"), 1000)
	srv, requests := countingServer(t, func(n int64, w http.ResponseWriter) {
		w.Header().Set("Content-Length", strconv.Itoa(len(obj)))
		if n == 1 {
			w.Write(obj[:len(obj)/2]) // the server closes the connection short
			return
		}
		w.Write(obj)
	})
	f, rec := testFetcher(FetcherOptions{})
	sink, _ := OpenLocalStore(t.TempDir())
	if err := f.Get(context.Background(), srv.URL+"/o", want(obj), sink); err != nil {
		t.Fatal(err)
	}
	if requests.Load() != 2 || len(rec.recorded()) != 1 {
		t.Errorf("requested %d times, waits %v; want 2 and one wait", requests.Load(), rec.recorded())
	}
	if ok, _ := sink.Has(context.Background(), want(obj).Digest); !ok {
		t.Fatal("the object was not stored")
	}
}

// TestHTTPFetcherTransportErrorsKeepTheQuerySecret: a server that is gone
// is retried like any transient failure, and the error (which net/http
// writes with the whole URL) does not show the signature.
func TestHTTPFetcherTransportErrorsKeepTheQuerySecret(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/o?X-Amz-Signature=s3cr3t"
	srv.Close()
	f, rec := testFetcher(FetcherOptions{RetryMax: 2})
	sink, _ := OpenLocalStore(t.TempDir())
	err := f.Get(context.Background(), url, want([]byte("x")), sink)
	if err == nil || strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "giving up after 3 attempts") {
		t.Fatalf("error %v: want 3 attempts and no signature", err)
	}
	if len(rec.recorded()) != 2 {
		t.Errorf("waits %v, want 2", rec.recorded())
	}
}

// TestHTTPFetcherGetBytes: a whole body with the same retries; a body over
// the limit is final.
func TestHTTPFetcherGetBytes(t *testing.T) {
	srv, requests := countingServer(t, func(n int64, w http.ResponseWriter) {
		if n == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.Write([]byte("a manifest"))
	})
	f, _ := testFetcher(FetcherOptions{})
	b, err := f.GetBytes(context.Background(), srv.URL+"/m", 100)
	if err != nil || string(b) != "a manifest" || requests.Load() != 2 {
		t.Fatalf("GetBytes: %q, %v after %d requests; want the body on the second", b, err, requests.Load())
	}
	requests.Store(1) // no more failures
	_, err = f.GetBytes(context.Background(), srv.URL+"/m", 4)
	if err == nil || !strings.Contains(err.Error(), "more than the 4 allowed") || requests.Load() != 2 {
		t.Fatalf("GetBytes over the limit: %v after %d more requests; want one refusal", err, requests.Load()-1)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":     0,
		"12":   12 * time.Second,
		" 3 ":  3 * time.Second,
		"-5":   0,
		"soon": 0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Hour).Format(http.TimeFormat):       0,
		"99999999999999": 24 * time.Hour,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

// cancellingSink keeps objects in a store, then cancels the download's
// context: the caller gave up just as the object arrived.
type cancellingSink struct {
	*LocalStore
	cancel context.CancelFunc
}

func (s cancellingSink) Put(ctx context.Context, w Want, r io.Reader) error {
	err := s.LocalStore.Put(ctx, w, r)
	s.cancel()
	return err
}

// TestHTTPFetcherKeepsAReceivedObject: an object the sink kept is fetched,
// even when the context ends right after; reporting it failed would make
// the caller count it missing although it is staged.
func TestHTTPFetcherKeepsAReceivedObject(t *testing.T) {
	obj := []byte("the object")
	srv, requests := countingServer(t, func(_ int64, w http.ResponseWriter) { w.Write(obj) })
	store, _ := OpenLocalStore(t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f, _ := testFetcher(FetcherOptions{})
	if err := f.Get(ctx, srv.URL+"/o", want(obj), cancellingSink{store, cancel}); err != nil {
		t.Fatalf("the object was kept, but Get says: %v", err)
	}
	if ok, _ := store.Has(context.Background(), want(obj).Digest); !ok || requests.Load() != 1 {
		t.Fatalf("stored %v after %d requests, want the object after one", ok, requests.Load())
	}
}
