package publisher

import (
	"context"
	"fmt"
	"time"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/autoami/terraform-provider-autoami/internal/awsclient"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/client"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
)

// actor publishes the revision in one target, one step at a time.
type actor struct {
	p   *publisher
	pub Publication
	rev *revision
	t   Target
	rec Record

	aws *awsclient.Clients
	// keyARN is the KMS key the stream volume and snapshot are encrypted with.
	keyARN string
	// name is the AMI name.
	name string

	unpacker *client.Client
	zone     string
	volume   *ec2types.Volume
	device   string
	// prepared is true while the daemon holds the stream ready for a
	// snapshot (unmounted): whatever happens, the actor releases it.
	prepared bool
	// retired are volumes of this stream the actor let go of in this run.
	retired  map[string]bool
	snapshot *ec2types.Snapshot
	image    *ec2types.Image
}

func newActor(p *publisher, pub Publication, rev *revision, t Target) *actor {
	return &actor{p: p, pub: pub, rev: rev, t: t, rec: Record{Target: t.Key(), Revision: pub.Revision},
		retired: map[string]bool{}}
}

// run walks the steps from StepCheck to StepDone. The returned error is a
// *TargetError naming the step that failed.
func (a *actor) run(ctx context.Context) (err error) {
	step := StepCheck
	defer func() {
		if a.prepared {
			// Interrupted or failed between preparing and releasing: the
			// stream must not stay unmounted (nor block idle power-off).
			_ = a.release(context.WithoutCancel(ctx)) // a failure is logged; the next run releases
		}
		if err != nil {
			a.emit(EventFailed, step, err.Error(), err)
		}
	}()
	for step != StepDone {
		a.emit(EventStep, step, "", nil)
		if err := ctx.Err(); err != nil {
			return &TargetError{Target: a.t, Step: step, Err: err}
		}
		next, err := a.do(ctx, step)
		if err != nil {
			return &TargetError{Target: a.t, Step: step, Err: err}
		}
		a.rec.Step = step
		step = next
	}
	a.rec.Step = StepDone
	a.emit(EventDone, StepDone, fmt.Sprintf("image %s (%s) from snapshot %s", a.rec.ImageID, a.rec.Name, a.rec.SnapshotID), nil)
	return nil
}

// do runs one step and says which comes next.
func (a *actor) do(ctx context.Context, step Step) (Step, error) {
	switch step {
	case StepCheck:
		return StepResume, a.check(ctx)
	case StepResume:
		return a.resume(ctx)
	case StepConnect:
		return StepVolume, a.connect(ctx)
	case StepVolume:
		return StepAttach, a.ensureVolume(ctx)
	case StepAttach:
		return StepAssociate, a.attach(ctx)
	case StepAssociate:
		return a.associate(ctx)
	case StepUnpack:
		return StepPrepareSnapshot, a.unpack(ctx)
	case StepPrepareSnapshot:
		return StepCreateSnapshot, a.prepareSnapshot(ctx)
	case StepCreateSnapshot:
		return StepRelease, a.createSnapshot(ctx)
	case StepRelease:
		// The stream must not stay unmounted, whatever happens to ctx now.
		return StepWaitSnapshot, a.release(context.WithoutCancel(ctx))
	case StepWriteSnapshot:
		return StepWaitSnapshot, a.writeRawSnapshot(ctx)
	case StepWaitSnapshot:
		return StepRegister, a.waitSnapshot(ctx)
	case StepRegister:
		return StepWaitImage, a.register(ctx)
	case StepWaitImage:
		return StepShare, a.waitImage(ctx)
	case StepShare:
		return StepDeprecate, a.share(ctx)
	case StepDeprecate:
		return StepSSMParameter, a.deprecate(ctx)
	case StepSSMParameter:
		return StepDone, a.writeSSMParameter(ctx)
	}
	return step, fmt.Errorf("no step %q", step)
}

// firstContentStep is where content starts moving when nothing was found.
func (a *actor) firstContentStep() Step {
	if a.rawImage() {
		return StepWriteSnapshot
	}
	return StepConnect
}

// rawImage reports whether the revision is a raw disk image.
func (a *actor) rawImage() bool { return a.rev.kind == manifest.KindRawImage }

func (a *actor) emit(kind EventKind, step Step, msg string, err error) {
	a.p.emit(Event{Target: a.t.Key(), Step: step, Kind: kind, Message: msg, Err: err})
}

func (a *actor) info(step Step, format string, args ...any) {
	a.emit(EventInfo, step, fmt.Sprintf(format, args...), nil)
}

// poll calls check until it reports done, backing off from MinDelay to
// MaxDelay, for at most timeout. It announces the wait first.
func (a *actor) poll(ctx context.Context, step Step, what string, timeout time.Duration, check func(context.Context) (bool, error)) error {
	a.emit(EventWait, step, fmt.Sprintf("waiting up to %s for %s", timeout, what), nil)
	return pollUntil(ctx, a.p.cfg.Polling, what, timeout, check)
}

// pollUntil is the bounded poll behind every wait that has no SDK waiter.
func pollUntil(parent context.Context, pol Polling, what string, timeout time.Duration, check func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	delay := pol.MinDelay
	for {
		done, err := check(ctx)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			if parent.Err() != nil {
				return parent.Err()
			}
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		case <-timer.C:
		}
		delay = min(2*delay, pol.MaxDelay)
	}
}

// announceWait is the event of a wait done by an SDK waiter.
func (a *actor) announceWait(step Step, what string, timeout time.Duration) {
	a.emit(EventWait, step, fmt.Sprintf("waiting up to %s for %s", timeout, what), nil)
}
