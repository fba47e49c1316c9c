package daemon

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/inprocess"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// inProcessFetcher is a fetcher whose requests go to h in-process.
func inProcessFetcher(h http.HandlerFunc) *objects.HTTPFetcher {
	return objects.NewHTTPFetcher(objects.FetcherOptions{HTTPClient: inprocess.Client(h)})
}

// TestURLQueuePacesAndReasksRefusedURLs feeds a queue with more objects
// than a batch: it must never ask for more than wire.MaxWantedBatch URLs at
// once, ask again for an object whose URL was refused, and deliver every
// object exactly once. It runs in a synctest bubble: after each answer the
// test waits until the queue has done all it can (synctest.Wait), so an
// unpack that wants nothing while it is not finished is a stall, found at
// once.
func TestURLQueuePacesAndReasksRefusedURLs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
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
		fetcher := inProcessFetcher(func(w http.ResponseWriter, r *http.Request) {
			h := strings.TrimPrefix(r.URL.Path, "/")
			if h == refused && r.URL.Query().Get("try") == "1" {
				refusals.Add(1)
				http.Error(w, "Request has expired", http.StatusForbidden)
				return
			}
			served.Add(1)
			w.Write(content[h])
		})

		var notified atomic.Int64
		q := newURLQueue(fetcher, 4, time.Minute, func() { notified.Add(1) })
		sink, err := objects.OpenLocalStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- q.Fetch(context.Background(), wants, sink) }()

		tries := map[string]int{}
		for rounds := 0; ; rounds++ {
			synctest.Wait()
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
			if len(wanted) == 0 {
				t.Fatalf("round %d: the fetch is not done but wants no URLs (%d awaiting)", rounds, q.awaiting())
			}
			if len(wanted) > wire.MaxWantedBatch {
				t.Fatalf("asked for %d URLs at once, more than a batch", len(wanted))
			}
			urls := map[string]string{}
			for _, h := range wanted {
				tries[h]++
				urls[h] = fmt.Sprintf("http://store.test/%s?try=%d", h, tries[h])
			}
			if _, err := q.supply(urls); err != nil {
				t.Fatal(err)
			}
		}
	})
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
// what it waited for, instead of waiting for ever. In a synctest bubble the
// wait is fake time, so the instant it gives up is exact.
func TestURLQueueGivesUpWithoutURLs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := []byte("object a"), []byte("object b")
		fetcher := inProcessFetcher(func(w http.ResponseWriter, r *http.Request) { w.Write(a) })
		wants := []objects.Want{{Digest: objects.Sum(a), Size: int64(len(a))}, {Digest: objects.Sum(b), Size: int64(len(b))}}
		const wait = 10 * time.Minute
		q := newURLQueue(fetcher, 2, wait, func() {})
		sink, err := objects.OpenLocalStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- q.Fetch(context.Background(), wants, sink) }()
		// One URL half-way through the wait, then silence.
		time.Sleep(wait / 2) // fake time (synctest)
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Fetch ended before its URL wait: %v", err)
		default:
		}
		if _, err := q.supply(map[string]string{wants[0].Digest.String(): "http://store.test/a"}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if !q.waitingForURLs() {
			t.Fatal("the queue does not report waiting for URLs after its one download")
		}
		if c := q.counters(); c.objectsDone != 1 {
			t.Errorf("counters %+v: the supplied object was not fetched", c)
		}
		err = <-done
		if err == nil || !strings.Contains(err.Error(), "no object URLs were supplied") || !strings.Contains(err.Error(), wants[1].Digest.String()) {
			t.Fatalf("Fetch without URLs: %v, want the URL-wait error naming %s", err, wants[1].Digest)
		}
		// The wait restarts with the URL supplied (and its download, which
		// takes no time here).
		if el := time.Since(start); el != wait/2+wait {
			t.Errorf("gave up after %s, want %s: the wait counts from the last URL", el, wait/2+wait)
		}
	})
}
