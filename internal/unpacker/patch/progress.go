package patch

import (
	"sync"
	"time"
)

// progressInterval is the least time between two progress reports of one phase.
const progressInterval = 200 * time.Millisecond

// progressReporter keeps the counters of a running patch and calls the
// Options.Progress callback, serialized, when a phase changes and at most
// every progressInterval otherwise.
type progressReporter struct {
	fn   func(Progress)
	mu   sync.Mutex
	cur  Progress
	last time.Time
}

func newProgress(fn func(Progress)) *progressReporter { return &progressReporter{fn: fn} }

func (p *progressReporter) phase(ph Phase, objectsTotal int, bytesTotal int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cur = Progress{Phase: ph, ObjectsTotal: objectsTotal, BytesTotal: bytesTotal}
	p.reportWithLock(true)
}

func (p *progressReporter) add(objects int, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cur.ObjectsDone += objects
	p.cur.BytesDone += bytes
	p.reportWithLock(false)
}

func (p *progressReporter) reportWithLock(force bool) {
	if p.fn == nil {
		return
	}
	now := time.Now()
	if !force && now.Sub(p.last) < progressInterval && p.cur.ObjectsDone < p.cur.ObjectsTotal {
		return
	}
	p.last = now
	p.fn(p.cur)
}
