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
	q := newURLQueue(objects.NewHTTPFetcher(objects.FetcherOptions{}), 4, func() { notified.Add(1) })
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
	q := newURLQueue(objects.NewHTTPFetcher(objects.FetcherOptions{}), 1, func() {})
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
