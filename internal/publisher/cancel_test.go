package publisher

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/bootfs"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// interruption is a moment to cancel a publication at: the first event of
// kind on step (whose message contains contains) in the first target.
type interruption struct {
	step     Step
	kind     EventKind
	contains string
}

func (i interruption) String() string {
	s := string(i.step) + " " + string(i.kind)
	if i.contains != "" {
		s += " " + i.contains
	}
	return s
}

// A publication cancelled at every step of a tree stream (when the step
// starts, and inside every wait: the unpack while it fetches, the
// snapshot, the image, the SSM read-back) leaves nothing that the next
// run or a delete does not find: every other interruption is followed by a
// run that completes with one volume, snapshot, image and parameter per
// target; the rest are deleted at once. Either way a delete then leaves no
// resource of the publication and the daemons no stream, and no run
// leaves a stream unmounted for a snapshot.
func TestCancelledAtEveryStepNothingIsOrphaned(t *testing.T) {
	e := newEnv(t)
	trees := bootfs.MustBuild(t)
	if err := world.Moto.SetPending(e.ctx, moto.Pending{Image: 300 * time.Millisecond, Snapshot: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	targets := e.targets(accountA)
	rev := e.upload("web/boot", trees.Rev1)
	p := e.publisher()
	var moments []interruption
	for _, s := range []Step{StepCheck, StepResume, StepConnect, StepVolume, StepAttach, StepAssociate, StepUnpack,
		StepPrepareSnapshot, StepCreateSnapshot, StepRelease, StepWaitSnapshot, StepRegister, StepWaitImage,
		StepShare, StepDeprecate, StepSSMParameter} {
		moments = append(moments, interruption{step: s, kind: EventStep})
	}
	moments = append(moments,
		interruption{step: StepVolume, kind: EventWait},
		interruption{step: StepAttach, kind: EventWait},
		interruption{step: StepUnpack, kind: EventInfo, contains: "fetching"},
		interruption{step: StepWaitSnapshot, kind: EventWait},
		interruption{step: StepWaitImage, kind: EventWait},
		interruption{step: StepSSMParameter, kind: EventWait},
	)
	first := targets[0].Key()
	parent := t
	defer func() { e.t, e.events.t = parent, parent }()
	for i, m := range moments {
		resume := i%2 == 0
		pub := testPublication(fmt.Sprintf("pub-cancel-%d", i), "web/boot", rev)
		t.Run(strings.ReplaceAll(m.String(), " ", "_"), func(t *testing.T) {
			e.t = t
			e.events.t = t
			ctx, cancel := context.WithCancel(e.ctx)
			defer cancel()
			var once sync.Once
			hit := false
			e.events.setHook(func(ev Event) {
				if ev.Target == first && ev.Step == m.step && ev.Kind == m.kind && strings.Contains(ev.Message, m.contains) {
					once.Do(func() { hit = true; cancel() })
				}
			})
			out := p.Publish(ctx, pub, targets)
			e.events.setHook(nil)
			if !hit {
				t.Fatalf("the publication never reached %s", m)
			}
			var te *TargetError
			if err := out.Results[0].Err; !errors.As(err, &te) || !errors.Is(err, context.Canceled) || te.Step != m.step {
				t.Fatalf("cancelled at %s: %v, want context.Canceled at step %q", m, err, m.step)
			}
			e.wantNoStreamPrepared(targets)
			if resume {
				again := p.Publish(e.ctx, pub, targets)
				if err := again.Error(); err != nil {
					t.Fatalf("the run after the interruption: %v", err)
				}
				e.wantOnePerTarget(pub, targets, 1)
			}
			if err := p.Delete(e.ctx, pub, targets); err != nil {
				t.Fatal(err)
			}
			if left := e.leftovers(pub.ID); len(left) > 0 {
				t.Errorf("left after the delete: %v", left)
			}
			for _, tg := range targets {
				st, err := mustDial(t, tg).Status(e.ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(st.Streams) != 0 || len(st.Devices) != 0 {
					t.Errorf("%s: after the delete the daemon still holds streams %+v, devices %+v", tg, st.Streams, st.Devices)
				}
			}
		})
	}
}

// wantNoStreamPrepared fails if a daemon holds a stream frozen or
// unmounted for a snapshot.
func (e *env) wantNoStreamPrepared(targets []Target) {
	e.t.Helper()
	for _, tg := range targets {
		st, err := mustDial(e.t, tg).Status(e.ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, s := range st.Streams {
			if s.State == wire.StateFrozen || s.State == wire.StateUnmountedForSnapshot {
				e.t.Errorf("%s: stream %q left %s", tg, s.Name, s.State)
			}
		}
	}
}
