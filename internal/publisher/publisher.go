package publisher

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/client"
)

// publisher is the implementation behind Publisher.
type publisher struct {
	cfg Config
	// progressMu makes Progress calls one at a time.
	progressMu sync.Mutex
}

func newPublisher(cfg Config) (*Publisher, error) {
	if cfg.Clients == nil {
		return nil, errors.New("publisher: no AWS client source")
	}
	if cfg.Store == nil || cfg.Presigner == nil {
		return nil, errors.New("publisher: no content store or presigner")
	}
	if cfg.Connect == nil {
		cfg.Connect = func(_ context.Context, t Target) (*client.Client, error) { return dial(t) }
	}
	if cfg.Concurrency < 0 {
		return nil, fmt.Errorf("publisher: concurrency %d is negative", cfg.Concurrency)
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	cfg.Timeouts = cfg.Timeouts.withDefaults()
	cfg.Polling = cfg.Polling.withDefaults()
	if cfg.Polling.MinDelay > cfg.Polling.MaxDelay {
		return nil, fmt.Errorf("publisher: polling min delay %s exceeds max delay %s", cfg.Polling.MinDelay, cfg.Polling.MaxDelay)
	}
	if cfg.URLExpiry == 0 {
		cfg.URLExpiry = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Publisher{impl: &publisher{cfg: cfg}}, nil
}

func (t Timeouts) withDefaults() Timeouts {
	pick := func(v, d time.Duration) time.Duration {
		if v <= 0 {
			return d
		}
		return v
	}
	return Timeouts{
		Volume:       pick(t.Volume, DefaultTimeouts.Volume),
		Unpack:       pick(t.Unpack, DefaultTimeouts.Unpack),
		Snapshot:     pick(t.Snapshot, DefaultTimeouts.Snapshot),
		Image:        pick(t.Image, DefaultTimeouts.Image),
		SSMParameter: pick(t.SSMParameter, DefaultTimeouts.SSMParameter),
	}
}

func (p Polling) withDefaults() Polling {
	if p.MinDelay <= 0 {
		p.MinDelay = DefaultPolling.MinDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = DefaultPolling.MaxDelay
	}
	if p.ImageObservations <= 0 {
		p.ImageObservations = DefaultPolling.ImageObservations
	}
	return p
}

// emit hands an event to Progress, one at a time.
func (p *publisher) emit(ev Event) {
	if p.cfg.Progress == nil {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = p.cfg.Now()
	}
	p.progressMu.Lock()
	defer p.progressMu.Unlock()
	p.cfg.Progress(ev)
}

func outcomeError(o Outcome) error {
	errs := []error{o.Err}
	for _, r := range o.Results {
		errs = append(errs, r.Err)
	}
	return errors.Join(errs...)
}
