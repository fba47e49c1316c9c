package objects

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"
)

// urlSource holds the URLs supplied so far and the objects a running fetch
// still waits for. wake is closed (and replaced) whenever URLs arrive or Done
// is called, so a waiting fetch re-examines its list.
type urlSource struct {
	fetcher  *HTTPFetcher
	parallel int

	mu       sync.Mutex
	urls     map[Digest]string
	finished bool
	waiting  map[Digest]Want
	wake     chan struct{}
}

func newURLSource(f *HTTPFetcher, parallel int) *URLSource {
	if parallel <= 0 {
		parallel = 8
	}
	return &URLSource{impl: &urlSource{
		fetcher:  f,
		parallel: parallel,
		urls:     map[Digest]string{},
		wake:     make(chan struct{}),
	}}
}

func (s *urlSource) supply(urls map[Digest]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		return fmt.Errorf("supply %d URLs: the source was already marked done", len(urls))
	}
	for d, u := range urls {
		if u == "" {
			return fmt.Errorf("supply URL for object %s: empty URL", d)
		}
		s.urls[d] = u
	}
	s.wakeWithLock()
	return nil
}

func (s *urlSource) done() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finished = true
	s.wakeWithLock()
}

func (s *urlSource) wakeWithLock() {
	close(s.wake)
	s.wake = make(chan struct{})
}

func (s *urlSource) pending() []Want {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Want, 0, len(s.waiting))
	for _, w := range s.waiting {
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return string(out[i].Digest[:]) < string(out[j].Digest[:]) })
	return out
}

func (s *urlSource) fetch(ctx context.Context, want []Want, sink Sink) error {
	s.mu.Lock()
	if s.waiting != nil {
		s.mu.Unlock()
		return fmt.Errorf("fetch %d objects: another fetch from this source is running", len(want))
	}
	s.waiting = make(map[Digest]Want, len(want))
	for _, w := range want {
		s.waiting[w.Digest] = w
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.waiting = nil
		s.mu.Unlock()
	}()

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.parallel)
	for {
		s.mu.Lock()
		var ready []Want
		var urls []string
		for d, w := range s.waiting {
			if u, ok := s.urls[d]; ok {
				ready = append(ready, w)
				urls = append(urls, u)
				delete(s.waiting, d)
			}
		}
		remaining := len(s.waiting)
		var example Digest
		for d := range s.waiting {
			example = d
			break
		}
		finished, wake := s.finished, s.wake
		s.mu.Unlock()

		for i := range ready {
			w, u := ready[i], urls[i]
			// Go blocks while parallel downloads run: that is the bound.
			g.Go(func() error { return s.fetcher.Get(gctx, u, w, sink) })
		}
		if remaining == 0 {
			return g.Wait()
		}
		if finished {
			if err := g.Wait(); err != nil {
				return err
			}
			return fmt.Errorf("fetch objects: no URL was supplied for %d objects (e.g. %s)", remaining, example)
		}
		select {
		case <-wake:
		case <-gctx.Done():
			if err := g.Wait(); err != nil {
				return err
			}
			return ctx.Err()
		}
	}
}
