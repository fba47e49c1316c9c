package publisher

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// refresh compares each target's image with the publication; see
// Publisher.Refresh. One DescribeImages per target (each target is its
// own account and region), by the recorded image ID as a filter, so a
// deregistered image is an empty answer rather than an error.
func (p *publisher) refresh(ctx context.Context, pub Publication, targets []Target, records map[string]Record) (map[string]Drift, error) {
	var mu sync.Mutex
	drifts := map[string]Drift{}
	errs := p.forEachTarget(ctx, targets, func(ctx context.Context, _ int, t Target) error {
		d, err := p.refreshTarget(ctx, pub, t, records[t.Key()])
		if err != nil {
			return &TargetError{Target: t, Step: StepCheck, Err: fmt.Errorf("refresh: %w", err)}
		}
		mu.Lock()
		drifts[t.Key()] = d
		mu.Unlock()
		return nil
	})
	return drifts, errors.Join(errs...)
}

func (p *publisher) refreshTarget(ctx context.Context, pub Publication, t Target, rec Record) (Drift, error) {
	d := Drift{Target: t.Key()}
	missing := func(why string) (Drift, error) {
		d.ImageMissing = true
		d.Details = append(d.Details, why)
		return d, nil
	}
	if rec.ImageID == "" {
		return missing("no image published yet")
	}
	c, err := clientsFor(ctx, p.cfg.Clients, t)
	if err != nil {
		return d, err
	}
	out, err := c.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners: []string{"self"}, IncludeDeprecated: aws.Bool(true), IncludeDisabled: aws.Bool(true),
		Filters: []ec2types.Filter{{Name: aws.String("image-id"), Values: []string{rec.ImageID}}},
	})
	if err != nil {
		return d, fmt.Errorf("DescribeImages %s: %w", rec.ImageID, err)
	}
	if len(out.Images) == 0 {
		return missing(fmt.Sprintf("image %s was deregistered", rec.ImageID))
	}
	img := out.Images[0]
	if img.State != ec2types.ImageStateAvailable {
		return missing(fmt.Sprintf("image %s is %s (%s)", rec.ImageID, img.State, stateReason(img.StateReason)))
	}
	have, err := launchGrants(ctx, c.EC2, rec.ImageID)
	if err != nil {
		return d, err
	}
	if add, remove := diffGrants(have, wantedGrants(pub.LaunchPermission)); len(add)+len(remove) > 0 {
		d.LaunchPermission = true
		d.Details = append(d.Details, fmt.Sprintf("launch permissions of %s: missing %v, extra %v", rec.ImageID, add, remove))
	}
	if snap := rootSnapshotID(img); snap != "" {
		accounts, err := volumeAccounts(ctx, c.EC2, snap)
		if err != nil {
			return d, err
		}
		want := map[string]bool{}
		for _, a := range pub.LaunchPermission.AccountIDs {
			want[a] = true
		}
		if !maps.Equal(accounts, want) {
			d.SnapshotPermission = true
			d.Details = append(d.Details, fmt.Sprintf("createVolumePermission of snapshot %s: %v, want %v",
				snap, slices.Sorted(maps.Keys(accounts)), slices.Sorted(maps.Keys(want))))
		}
	}
	if change, _ := deprecationChange(img, pub.DeprecateAt, p.cfg.Now()); change {
		d.Deprecation = true
		d.Details = append(d.Details, fmt.Sprintf("deprecation time of %s is %q", rec.ImageID, aws.ToString(img.DeprecationTime)))
	}
	if protectionEnabled(img) != pub.DeregistrationProtection {
		d.Protection = true
		d.Details = append(d.Details, fmt.Sprintf("deregistration protection of %s is %q", rec.ImageID, aws.ToString(img.DeregistrationProtection)))
	}
	if sp := pub.SSMParameter; sp != nil {
		value, exists, err := getParameter(ctx, c.SSM, sp.Name)
		if err != nil {
			return d, err
		}
		if value != rec.ImageID {
			d.SSMParameter = true
			now := value
			if !exists {
				now = "nothing (deleted)"
			}
			d.Details = append(d.Details, fmt.Sprintf("SSM parameter %s holds %s, not %s", sp.Name, now, rec.ImageID))
		}
	}
	return d, nil
}
