package publisher

import (
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/bootfs"
)

// Refresh finds what changed out of band, with one DescribeImages per
// target (account and region): a launch permission added and one removed,
// the SSM parameter pointed at another image and the deprecation lifted in
// one target; the image deregistered in the other. Publish then restores
// the first target in place and registers the second again from its kept
// snapshot, without unpacking, and the next refresh finds nothing.
func TestRefreshFindsDriftAndPublishRepairsIt(t *testing.T) {
	e := newEnv(t)
	trees := bootfs.MustBuild(t)
	targets := e.targets(accountA)
	rev := e.upload("web/boot", trees.Rev1)
	pub := testPublication("pub-drift", "web/boot", rev)
	p := e.publisher()
	out := p.Publish(e.ctx, pub, targets)
	if err := out.Error(); err != nil {
		t.Fatal(err)
	}
	records := map[string]Record{}
	for _, r := range out.Results {
		records[r.Target.Key()] = r.Record
	}
	// Records lost (or an import): found again from the tags.
	found, err := p.Lookup(e.ctx, pub, targets)
	if err != nil {
		t.Fatal(err)
	}
	for k, r := range records {
		f := found[k]
		if !f.Published() || f.ImageID != r.ImageID || f.SnapshotID != r.SnapshotID || f.Name != r.Name || !f.CreatedAt.Equal(r.CreatedAt) {
			t.Errorf("%s: Lookup found %+v, want %+v", k, f, r)
		}
	}
	refresh := func() map[string]Drift {
		t.Helper()
		before := world.Faults.Stat("ec2:DescribeImages").Calls
		drift, err := p.Refresh(e.ctx, pub, targets, records)
		if err != nil {
			t.Fatal(err)
		}
		if calls := world.Faults.Stat("ec2:DescribeImages").Calls - before; calls > 2*len(targets) {
			t.Errorf("Refresh of %d targets made %d DescribeImages calls, want at most 2 per account and region", len(targets), calls)
		}
		return drift
	}
	for k, d := range refresh() {
		if d.Any() {
			t.Errorf("%s: drift right after publishing: %+v", k, d)
		}
	}

	changed, gone := targets[0], targets[1]
	ci := records[changed.Key()].ImageID
	c := e.ec2In(changed.AccountID, changed.Region)
	if _, err := c.ModifyImageAttribute(e.ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(ci), LaunchPermission: &ec2types.LaunchPermissionModifications{
		Add: []ec2types.LaunchPermission{{UserId: aws.String("555555555555")}}, Remove: []ec2types.LaunchPermission{{UserId: aws.String(consumer)}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DisableImageDeprecation(e.ctx, &ec2.DisableImageDeprecationInput{ImageId: aws.String(ci)}); err != nil {
		t.Fatal(err)
	}
	debian, err := c.DescribeImages(e.ctx, &ec2.DescribeImagesInput{Owners: []string{"136693071363"}})
	if err != nil || len(debian.Images) == 0 {
		t.Fatalf("a Debian image to point the parameter at: %v", err)
	}
	cfg, err := world.Config(e.ctx, changed.Region, changed.AccountID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ssm.NewFromConfig(cfg).PutParameter(e.ctx, &ssm.PutParameterInput{Name: aws.String(pub.SSMParameter.Name),
		Value: debian.Images[0].ImageId, Type: ssmtypes.ParameterTypeString, DataType: aws.String(imageDataType), Overwrite: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	gi := records[gone.Key()].ImageID
	if _, err := e.ec2In(gone.AccountID, gone.Region).DeregisterImage(e.ctx, &ec2.DeregisterImageInput{ImageId: aws.String(gi)}); err != nil {
		t.Fatal(err)
	}

	drift := refresh()
	dc, dg := drift[changed.Key()], drift[gone.Key()]
	if dc.ImageMissing || !dc.LaunchPermission || !dc.SSMParameter || !dc.Deprecation || dc.Protection {
		t.Errorf("%s: drift %+v; want launch permission, SSM parameter and deprecation", changed, dc)
	}
	if !dg.ImageMissing || !strings.Contains(strings.Join(dg.Details, " "), gi) {
		t.Errorf("%s: drift %+v; want the image %s missing", gone, dg, gi)
	}

	e.events.reset()
	again := p.Publish(e.ctx, pub, targets)
	if err := again.Error(); err != nil {
		t.Fatal(err)
	}
	for _, r := range again.Results {
		steps := e.events.steps(r.Target.Key())
		if slices.Contains(steps, StepUnpack) {
			t.Errorf("%s: the repair unpacked again (%v)", r.Target, steps)
		}
		switch r.Target.Key() {
		case changed.Key():
			if r.Record.ImageID != ci {
				t.Errorf("%s: repaired as a new image %s, want %s restored", r.Target, r.Record.ImageID, ci)
			}
		case gone.Key():
			if r.Record.ImageID == gi || r.Record.SnapshotID != records[gone.Key()].SnapshotID || !slices.Contains(steps, StepRegister) {
				t.Errorf("%s: repaired %+v through %v; want a new image from snapshot %s", r.Target, r.Record, steps, records[gone.Key()].SnapshotID)
			}
		}
		records[r.Target.Key()] = r.Record
	}
	for k, d := range refresh() {
		if d.Any() {
			t.Errorf("%s: drift after the repair: %+v", k, d)
		}
	}
	if got, want := e.launchGrantsOf(changed, ci), []grant{grant("account:" + consumer), grant("organization:" + orgARN)}; !slices.Equal(got, want) {
		t.Errorf("launch permissions after the repair: %v, want %v", got, want)
	}
	e.wantOnePerTarget(pub, targets, 1)

	// The parameter renamed: the new one written, the old one removed.
	renamed := pub
	renamed.SSMParameter = &SSMParameter{Name: "/autoami/renamed/image-id"}
	if err := p.Publish(e.ctx, renamed, targets).Error(); err != nil {
		t.Fatal(err)
	}
	if err := p.DeleteParameter(e.ctx, renamed, pub.SSMParameter.Name, targets); err != nil {
		t.Fatal(err)
	}
	for _, tg := range targets {
		if v, ok := e.parameter(tg.AccountID, tg.Region, pub.SSMParameter.Name); ok {
			t.Errorf("%s: the old parameter still holds %s", tg, v)
		}
		if v, _ := e.parameter(tg.AccountID, tg.Region, renamed.SSMParameter.Name); v != records[tg.Key()].ImageID {
			t.Errorf("%s: the renamed parameter holds %q, want %s", tg, v, records[tg.Key()].ImageID)
		}
	}
}
