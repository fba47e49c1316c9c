package daemon

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// TestURLQueuePacesAndReasksRefusedURLs feeds a queue with more objects
// than a batch: it must never ask for more than wire.MaxWantedBatch URLs at
// once, ask again for an object whose URL was refused, and deliver every
// object exactly once.
func TestURLQueuePacesAndReasksRefusedURLs(t *testing.T) {
	const n = 3 * wire.MaxWantedBatch / 2
	content := map[string][]byte{}
	var wants []objects.Want
	for i := range n {
		b := []byte(fmt.Sprintf("object %d", i))
		d := objects.Sum(b)
		content[d.String()] = b
		wants = append(wants, objects.Want{Digest: d, Size: int64(len(b))})
	}
	refused := wants[7].Digest.String()
	var served, refusals atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := strings.TrimPrefix(r.URL.Path, "/")
		if h == refused && r.URL.Query().Get("try") == "1" {
			refusals.Add(1)
			http.Error(w, "Request has expired", http.StatusForbidden)
			return
		}
		served.Add(1)
		w.Write(content[h])
	}))
	defer srv.Close()

	var notified atomic.Int64
	q := newURLQueue(objects.NewHTTPFetcher(objects.FetcherOptions{}), 4, time.Minute, func() { notified.Add(1) })
	sink, err := objects.OpenLocalStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- q.Fetch(ctx, wants, sink) }()

	tries := map[string]int{}
	var mu sync.Mutex
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if got := served.Load(); got != n {
				t.Errorf("served %d objects, want %d", got, n)
			}
			if refusals.Load() != 1 || tries[refused] != 2 {
				t.Errorf("refused URL: %d refusals, asked %d times; want 1 and 2", refusals.Load(), tries[refused])
			}
			if c := q.counters(); c.objectsDone != n || c.urlsRejected != 1 {
				t.Errorf("counters %+v", c)
			}
			if notified.Load() == 0 {
				t.Error("the stream was never notified")
			}
			return
		default:
		}
		wanted := q.wanted()
		if len(wanted) > wire.MaxWantedBatch {
			t.Fatalf("asked for %d URLs at once, more than a batch", len(wanted))
		}
		urls := map[string]string{}
		mu.Lock()
		for _, h := range wanted {
			tries[h]++
			urls[h] = fmt.Sprintf("%s/%s?try=%d", srv.URL, h, tries[h])
		}
		mu.Unlock()
		if len(urls) > 0 {
			if _, err := q.supply(urls); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Millisecond)
	}
}

func TestURLQueueRejectsBadURLs(t *testing.T) {
	q := newURLQueue(objects.NewHTTPFetcher(objects.FetcherOptions{}), 1, time.Minute, func() {})
	d := objects.Sum([]byte("x")).String()
	for _, urls := range []map[string]string{
		{"not-a-hash": "https://example.invalid/x"},
		{d: "file:///etc/passwd"},
	} {
		if _, err := q.supply(urls); err == nil {
			t.Errorf("supply(%v) accepted", urls)
		}
	}
}

// TestURLQueueGivesUpWithoutURLs: a Fetch whose caller stops supplying URLs
// fails after the URL wait (counted from the last URLs or download), naming
// what it waited for, instead of waiting for ever.
func TestURLQueueGivesUpWithoutURLs(t *testing.T) {
	a, b := []byte("object a"), []byte("object b")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(a) }))
	defer srv.Close()
	wants := []objects.Want{{Digest: objects.Sum(a), Size: int64(len(a))}, {Digest: objects.Sum(b), Size: int64(len(b))}}
	const wait = 300 * time.Millisecond
	q := newURLQueue(objects.NewHTTPFetcher(objects.FetcherOptions{}), 2, wait, func() {})
	sink, err := objects.OpenLocalStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- q.Fetch(ctx, wants, sink) }()
	// One URL, then silence.
	time.Sleep(wait / 2)
	if _, err := q.supply(map[string]string{wants[0].Digest.String(): srv.URL + "/a"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !q.waitingForURLs() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if !q.waitingForURLs() {
		t.Fatal("the queue does not report waiting for URLs after its one download")
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "no object URLs were supplied") || !strings.Contains(err.Error(), wants[1].Digest.String()) {
			t.Fatalf("Fetch without URLs: %v, want the URL-wait error naming %s", err, wants[1].Digest)
		}
		if ctx.Err() != nil {
			t.Fatalf("Fetch ended only with its context: %v", err)
		}
		if el := time.Since(start); el < wait+wait/2 {
			t.Errorf("gave up after %s: the wait restarts with each URL supplied (%s + %s)", el, wait/2, wait)
		}
		if c := q.counters(); c.objectsDone != 1 {
			t.Errorf("counters %+v: the supplied object was not fetched", c)
		}
	case <-ctx.Done():
		t.Fatal("Fetch still waits for URLs after 20s")
	}
}
