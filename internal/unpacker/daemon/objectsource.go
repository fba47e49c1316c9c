package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// maxURLRejections is how often one object's URL may be refused (expired)
// and asked for again before the unpack fails.
const maxURLRejections = 3

// urlQueue is the objects.Source of an unpack: it downloads objects as the
// caller supplies presigned URLs, and tells the caller which objects to
// presign next (wanted) at the pace downloads progress, so URLs are made
// shortly before use and do not expire while they wait. A URL the store
// refuses (HTTP 400/401/403: expired or revoked) makes its object wanted
// again instead of failing the unpack.
type urlQueue struct {
	fetcher  *objects.HTTPFetcher
	parallel int
	// urlWait is how long Fetch waits for URLs while it has nothing else to
	// do (objects wanted, none with a URL, no download running) before it
	// fails: a caller that stopped answering must not hold the stream
	// forever. Zero means forever (tests only).
	urlWait time.Duration

	mu        sync.Mutex
	urls      map[objects.Digest]string       // supplied and not yet used
	pending   map[objects.Digest]objects.Want // wanted by the running Fetch, not yet started
	rejected  map[objects.Digest]int
	fetching  bool
	remaining int // objects of the running Fetch not yet in the sink
	inflight  int
	// lastNews is when the running Fetch last got URLs or finished a
	// download: the URL wait counts from it.
	lastNews time.Time

	// Counters for progress and metrics.
	objectsTotal, bytesTotal int64
	objectsDone, bytesDone   int64
	urlsRejected             int64
	firstFetch               time.Time

	wake chan struct{}
	// notify tells the stream that wanted may have changed (long polls
	// wait for it); called without q.mu held.
	notify func()
}

func newURLQueue(f *objects.HTTPFetcher, parallel int, urlWait time.Duration, notify func()) *urlQueue {
	return &urlQueue{
		fetcher:  f,
		parallel: parallel,
		urlWait:  urlWait,
		notify:   notify,
		urls:     map[objects.Digest]string{},
		pending:  map[objects.Digest]objects.Want{},
		rejected: map[objects.Digest]int{},
		wake:     make(chan struct{}),
	}
}

func (q *urlQueue) wakeWithLock() {
	close(q.wake)
	q.wake = make(chan struct{})
}

// supply records URLs; it returns how many name an object not yet fetched.
func (q *urlQueue) supply(urls map[string]string) (int, error) {
	parsed := make(map[objects.Digest]string, len(urls))
	for h, u := range urls {
		d, err := objects.ParseDigest(h)
		if err != nil {
			return 0, wire.Errorf(wire.CodeBadRequest, "object URL for %q: %v", h, err)
		}
		if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
			return 0, wire.Errorf(wire.CodeBadRequest, "URL for object %s is not an http(s) URL", h)
		}
		parsed[d] = u
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for d, u := range parsed {
		if _, wanted := q.pending[d]; wanted || !q.fetching {
			q.urls[d] = u
			n++
		}
	}
	if n > 0 {
		q.lastNews = time.Now()
	}
	q.wakeWithLock()
	return n, nil
}

// wanted lists the objects to ask URLs for now, at most wire.MaxWantedBatch
// and none while half a batch of URLs still waits to be used.
func (q *urlQueue) wanted() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	outstanding := q.inflight
	var need []objects.Digest
	for d := range q.pending {
		if _, ok := q.urls[d]; ok {
			outstanding++
		} else {
			need = append(need, d)
		}
	}
	if outstanding >= wire.MaxWantedBatch/2 || len(need) == 0 {
		return nil
	}
	sort.Slice(need, func(i, j int) bool { return string(need[i][:]) < string(need[j][:]) })
	need = need[:min(len(need), wire.MaxWantedBatch-outstanding)]
	out := make([]string, len(need))
	for i, d := range need {
		out[i] = d.String()
	}
	return out
}

// waitingForURLs reports whether the running Fetch has nothing to do but
// wait for the caller's URLs: that is no activity of the daemon's own (see
// the idle power-off).
func (q *urlQueue) waitingForURLs() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.waitingWithLock()
}

func (q *urlQueue) waitingWithLock() bool {
	if !q.fetching || q.inflight > 0 || q.remaining == 0 {
		return false
	}
	for d := range q.pending {
		if _, ok := q.urls[d]; ok {
			return false // about to start a download
		}
	}
	return len(q.pending) > 0
}

// awaiting counts objects the running Fetch still needs a URL for.
func (q *urlQueue) awaiting() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	var n int64
	for d := range q.pending {
		if _, ok := q.urls[d]; !ok {
			n++
		}
	}
	return n
}

type queueCounters struct {
	objectsTotal, bytesTotal, objectsDone, bytesDone, urlsRejected int64
	firstFetch                                                     time.Time
}

func (q *urlQueue) counters() queueCounters {
	q.mu.Lock()
	defer q.mu.Unlock()
	return queueCounters{q.objectsTotal, q.bytesTotal, q.objectsDone, q.bytesDone, q.urlsRejected, q.firstFetch}
}

// Fetch implements objects.Source.
func (q *urlQueue) Fetch(ctx context.Context, want []objects.Want, sink objects.Sink) error {
	q.mu.Lock()
	q.fetching = true
	q.pending = make(map[objects.Digest]objects.Want, len(want))
	for _, w := range want {
		if _, dup := q.pending[w.Digest]; dup {
			continue
		}
		q.pending[w.Digest] = w
		q.objectsTotal++
		q.bytesTotal += w.Size
	}
	q.remaining = len(q.pending)
	q.lastNews = time.Now()
	// Drop URLs supplied up front for objects this fetch does not want.
	for d := range q.urls {
		if _, ok := q.pending[d]; !ok {
			delete(q.urls, d)
		}
	}
	q.wakeWithLock()
	q.mu.Unlock()
	q.notify()
	defer func() {
		q.mu.Lock()
		q.fetching = false
		q.pending = map[objects.Digest]objects.Want{}
		q.mu.Unlock()
	}()

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(q.parallel)
	for {
		q.mu.Lock()
		type job struct {
			want objects.Want
			url  string
		}
		var ready []job
		for d, w := range q.pending {
			if u, ok := q.urls[d]; ok {
				ready = append(ready, job{w, u})
				delete(q.pending, d)
				delete(q.urls, d)
				q.inflight++
			}
		}
		remaining, wake := q.remaining, q.wake
		if len(ready) > 0 && q.firstFetch.IsZero() {
			q.firstFetch = time.Now()
		}
		var giveUp <-chan time.Time
		if q.urlWait > 0 && len(ready) == 0 && q.waitingWithLock() {
			left := time.Until(q.lastNews.Add(q.urlWait))
			if left <= 0 {
				err := q.noURLsErrorWithLock()
				q.mu.Unlock()
				g.Wait()
				return err
			}
			giveUp = time.After(left)
		}
		q.mu.Unlock()
		for _, j := range ready {
			g.Go(func() error { return q.fetchOne(gctx, j.want, j.url, sink) })
		}
		if remaining == 0 {
			return g.Wait()
		}
		select {
		case <-wake:
		case <-giveUp: // checked again at the top of the loop
		case <-gctx.Done():
			if err := g.Wait(); err != nil {
				return err
			}
			return ctx.Err()
		}
	}
}

// noURLsErrorWithLock is the error of a Fetch whose caller stopped
// supplying URLs.
func (q *urlQueue) noURLsErrorWithLock() error {
	var example objects.Digest
	n := 0
	for d := range q.pending {
		if _, ok := q.urls[d]; !ok {
			if n == 0 || string(d[:]) < string(example[:]) {
				example = d
			}
			n++
		}
	}
	return fmt.Errorf("no object URLs were supplied for %s while %d objects waited for one (e.g. %s): the caller stopped answering; unpack again to resume",
		q.urlWait, n, example)
}

func (q *urlQueue) fetchOne(ctx context.Context, w objects.Want, url string, sink objects.Sink) error {
	err := q.fetcher.Get(ctx, url, w, sink)
	defer q.notify() // more may be wanted now: a refused URL, or room under the pace
	q.mu.Lock()
	defer q.mu.Unlock()
	q.inflight--
	q.lastNews = time.Now()
	defer q.wakeWithLock()
	if err == nil {
		q.remaining--
		q.objectsDone++
		q.bytesDone += w.Size
		return nil
	}
	if urlRefused(err) && q.rejected[w.Digest] < maxURLRejections && ctx.Err() == nil {
		q.rejected[w.Digest]++
		q.urlsRejected++
		q.pending[w.Digest] = w // wanted again: the caller presigns a new URL
		return nil
	}
	return err
}

// urlRefused recognises the fetcher's error for a URL the store refused
// (HTTP 400, 401 or 403: expired, revoked or badly signed).
func urlRefused(err error) bool {
	var se *objects.StatusError
	if !errors.As(err, &se) {
		return false
	}
	switch se.StatusCode {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
		return true
	}
	return false
}
