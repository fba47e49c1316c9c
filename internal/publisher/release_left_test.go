package publisher

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/bootfs"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// A run that died between CreateSnapshot and the release (a killed
// terraform: no deferred release runs) leaves the daemon holding the
// stream unmounted for a snapshot. The next run finds the snapshot and
// needs no unpacker, but releases the stream it finds left prepared.
func TestResumeReleasesAStreamLeftPrepared(t *testing.T) {
	e := newEnv(t)
	trees := bootfs.MustBuild(t)
	targets := e.targets(accountA)[:1]
	rev := e.upload("web/left", trees.Rev1)
	pub := testPublication("pub-left", "web/left", rev)
	p := e.publisher()

	// Stop after the snapshot exists and the stream was released...
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	var once sync.Once
	e.events.setHook(func(ev Event) {
		if ev.Step == StepRegister && ev.Kind == EventStep {
			once.Do(cancel)
		}
	})
	if err := p.Publish(ctx, pub, targets).Error(); err == nil {
		t.Fatal("the publication was not interrupted before registering")
	}
	e.events.setHook(nil)
	// ...then put the daemon where a killed run leaves it.
	c := mustDial(t, targets[0])
	if _, err := c.PrepareForSnapshot(e.ctx, wire.PrepareForSnapshotRequest{Stream: pub.Stream, Revision: rev, Mode: wire.SnapshotUnmount}); err != nil {
		t.Fatal(err)
	}

	e.events.reset()
	if err := p.Publish(e.ctx, pub, targets).Error(); err != nil {
		t.Fatalf("the run after the interruption: %v", err)
	}
	if steps := e.events.steps(targets[0].Key()); slices.Contains(steps, StepUnpack) {
		t.Errorf("the resumed run unpacked again (steps %v); it had the snapshot", steps)
	}
	st, err := c.Status(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Streams {
		if s.Name == pub.Stream && s.State != wire.StateClean {
			t.Errorf("stream %q is %s after the resumed run, want %s", s.Name, s.State, wire.StateClean)
		}
	}
}
