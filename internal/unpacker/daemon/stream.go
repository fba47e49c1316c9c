package daemon

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/volume"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// errStopped is returned to requests that reach a stream whose actor stopped
// (the stream was forgotten, or the daemon is closing).
var errStopped = wire.Errorf(wire.CodeConflict, "the stream is being forgotten or the daemon is shutting down")

// stream is one image stream: its actor goroutine runs the requests that
// change it one at a time (do), while reads take a consistent view under mu.
// An unpack runs in its own goroutine (job) so that status and object URLs
// are served while it works; the stream's busy state keeps other changing
// requests out meanwhile.
type stream struct {
	d        *daemon
	name     string
	volumeID string
	origin   wire.Origin

	reqs chan func()
	quit chan struct{} // closed to stop the actor
	done chan struct{} // closed when the actor has stopped

	mu        sync.Mutex
	state     wire.StreamState
	device    string         // whole-volume device
	layout    *volume.Layout // nil until found or created
	mountDir  string
	rootLabel string
	revision  string // clean revision; set only in clean states
	target    string // revision of the running or interrupted unpack
	lastErr   string
	lastUsed  time.Time
	job       *unpackJob // running or last unpack
	changed   chan struct{}
}

func newStream(d *daemon, rec persistedStream) *stream {
	s := &stream{
		d:         d,
		name:      rec.Name,
		volumeID:  rec.VolumeID,
		origin:    rec.Origin,
		reqs:      make(chan func()),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
		state:     wire.StateUnmounted,
		mountDir:  d.mountDir(rec.VolumeID),
		rootLabel: rec.RootLabel,
		target:    rec.TargetRevision,
		changed:   make(chan struct{}),
	}
	go s.loop()
	return s
}

func (s *stream) loop() {
	defer close(s.done)
	for {
		select {
		case fn := <-s.reqs:
			fn()
		case <-s.quit:
			return
		}
	}
}

// do runs fn on the actor and returns its error. Once fn started, do waits
// for it even if ctx ends: the change it makes must not be half-reported.
func (s *stream) do(ctx context.Context, fn func() error) error {
	errc := make(chan error, 1)
	select {
	case s.reqs <- func() { errc <- fn() }:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.quit:
		return errStopped
	}
	return <-errc
}

// stop ends the actor after the request it runs, if any.
func (s *stream) stop() {
	select {
	case <-s.quit:
	default:
		close(s.quit)
	}
	<-s.done
}

// setStateWithLock changes the state, if the table of transitions allows
// it, and wakes long-polling readers. A refused change leaves the state as
// it was and is an error naming the stream and both states.
func (s *stream) setStateWithLock(to wire.StreamState) error {
	from := s.state
	if err := checkTransition(s.name, from, to); err != nil {
		s.d.log.Error("state transition refused", "stream", s.name, "from", from, "to", to)
		return err
	}
	s.state = to
	s.notifyWithLock()
	if from != to {
		s.d.log.Debug("stream state changed", "stream", s.name, "from", from, "to", to)
	}
	return nil
}

func (s *stream) notifyWithLock() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *stream) setState(st wire.StreamState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.setStateWithLock(st)
}

// fail records err as the stream's last error and changes its state to st;
// it returns err, joined with the refusal when st may not follow.
func (s *stream) fail(st wire.StreamState, err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastErr = err.Error()
	if terr := s.setStateWithLock(st); terr != nil {
		return errors.Join(err, terr)
	}
	return err
}

func (s *stream) setError(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.lastErr = ""
	} else {
		s.lastErr = err.Error()
	}
	s.notifyWithLock()
}

func (s *stream) touch() {
	s.mu.Lock()
	s.lastUsed = time.Now()
	s.mu.Unlock()
}

func (s *stream) currentState() wire.StreamState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// view is the stream's status as the API reports it.
func (s *stream) view() wire.Stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.viewWithLock()
}

func (s *stream) viewWithLock() wire.Stream {
	v := wire.Stream{
		Name:       s.name,
		VolumeID:   s.volumeID,
		Origin:     s.origin,
		State:      s.state,
		Device:     s.device,
		LastError:  s.lastErr,
		LastUsedAt: s.lastUsed,
	}
	if s.layout != nil {
		v.RootPartition = s.layout.Root.Device
	}
	switch s.state {
	case wire.StateClean, wire.StateFrozen, wire.StateUnmountedForSnapshot:
		// The only states in which a revision is reported.
		v.Revision = s.revision
	case wire.StateDirty:
		v.TargetRevision = s.target
	default:
		if s.state.Busy() && s.job != nil {
			v.TargetRevision = s.job.revision
		}
	}
	if s.job != nil {
		p := s.job.progress()
		v.Progress = &p
	}
	return v
}

// conflict is the error for a request the current state forbids.
func (s *stream) conflictWithLock(what string) error {
	return wire.Errorf(wire.CodeConflict, "cannot %s stream %q: it is %s", what, s.name, s.describeWithLock())
}

func (s *stream) describeWithLock() string {
	switch s.state {
	case wire.StateClean:
		return "clean at revision " + s.revision
	case wire.StateFrozen:
		return "frozen for a snapshot of revision " + s.revision + " (release it first)"
	case wire.StateUnmountedForSnapshot:
		return "unmounted for a snapshot of revision " + s.revision + " (release it first)"
	case wire.StateDirty:
		return "dirty after an interrupted or failed unpack of " + s.target + " (unpack again)"
	case wire.StateNoDevice:
		return "without a device (attach volume " + s.volumeID + " first)"
	}
	if s.state.Busy() && s.job != nil {
		return string(s.state) + " for an unpack of revision " + s.job.revision + " (wait for it, or stop it with cancel-unpack)"
	}
	return string(s.state)
}

// isCodeConflict reports whether err is a conflict error.
func isCodeConflict(err error) bool {
	var we *wire.Error
	return errors.As(err, &we) && we.Code == wire.CodeConflict
}
