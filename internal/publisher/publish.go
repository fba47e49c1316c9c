package publisher

import (
	"context"
)

// publish runs one actor per target, at most Concurrency at a time. A
// target's failure is its own: the others go on.
func (p *publisher) publish(ctx context.Context, pub Publication, targets []Target) Outcome {
	out := Outcome{Results: make([]Result, len(targets))}
	for i, t := range targets {
		out.Results[i] = Result{Target: t, Record: Record{Target: t.Key(), Revision: pub.Revision}}
	}
	if err := validatePublication(pub); err != nil {
		out.Err = err
		return out
	}
	if err := validateTargets(targets); err != nil {
		out.Err = err
		return out
	}
	if err := validateKMSKeyID(pub.KMSKeyID, targets); err != nil {
		out.Err = err
		return out
	}
	rev, err := loadRevision(ctx, p.cfg.Store, pub.Stream, pub.Revision)
	if err != nil {
		out.Err = err
		return out
	}
	errs := p.forEachTarget(ctx, targets, func(ctx context.Context, i int, t Target) error {
		a := newActor(p, pub, rev, t)
		err := a.run(ctx)
		out.Results[i].Record = a.rec
		return err
	})
	for i, err := range errs {
		if err != nil {
			if _, ok := err.(*TargetError); !ok {
				err = &TargetError{Target: targets[i], Step: StepCheck, Err: err}
			}
			out.Results[i].Err = err
		}
	}
	return out
}
