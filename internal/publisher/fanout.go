package publisher

import (
	"context"
	"sync"
)

// forEachTarget runs fn for every target, at most Concurrency at a time,
// and returns the errors in the targets' order (nil for success).
func (p *publisher) forEachTarget(ctx context.Context, targets []Target, fn func(context.Context, int, Target) error) []error {
	errs := make([]error, len(targets))
	sem := make(chan struct{}, p.cfg.Concurrency)
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			errs[i] = fn(ctx, i, t)
		}()
	}
	wg.Wait()
	return errs
}
