package publisher

import (
	"context"
	"errors"
	"sync"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// lookup reads each target's image of the revision from tags; see
// Publisher.Lookup.
func (p *publisher) lookup(ctx context.Context, pub Publication, targets []Target) (map[string]Record, error) {
	var mu sync.Mutex
	records := map[string]Record{}
	errs := p.forEachTarget(ctx, targets, func(ctx context.Context, _ int, t Target) error {
		c, err := clientsFor(ctx, p.cfg.Clients, t)
		if err != nil {
			return &TargetError{Target: t, Step: StepResume, Err: err}
		}
		images, err := describeOwnImages(ctx, c.EC2, pub.ID, t.Key())
		if err != nil {
			return &TargetError{Target: t, Step: StepResume, Err: err}
		}
		a := &actor{rec: Record{Target: t.Key(), Revision: pub.Revision}}
		for _, img := range images {
			if tagValue(img.Tags, TagRevision) == pub.Revision && img.State == ec2types.ImageStateAvailable {
				a.useImage(img)
				a.rec.Step = StepDone
			}
		}
		mu.Lock()
		records[t.Key()] = a.rec
		mu.Unlock()
		return nil
	})
	return records, errors.Join(errs...)
}
