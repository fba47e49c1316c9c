package publisher

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/bootfs"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/faultproxy"
)

// RegisterImage answering InternalError in one target (a fault aimed at
// its account and region): that target fails with an error naming it and
// the step, keeping its snapshot as progress; the three others are
// published; the next run registers the failed target's image from that
// snapshot without unpacking again, and leaves the others as they are.
func TestRegisterFailureInOneTargetIsFinishedByTheNextRun(t *testing.T) {
	e := newEnv(t)
	trees := bootfs.MustBuild(t)
	targets := e.targets(accountA, accountB)
	rev := e.upload("web/boot", trees.Rev1)
	pub := testPublication("pub-failure", "web/boot", rev)
	p := e.publisher()
	failing := Target{AccountID: accountB, Region: "us-east-1"}
	world.Faults.SetRules(faultproxy.Rule{
		Actions: []string{"ec2:RegisterImage"}, Regions: []string{failing.Region}, Accounts: []string{failing.AccountID},
		Error: faultproxy.ErrorReply{Code: "InternalError", Message: "injected", Share: faultproxy.Share{First: 1000}},
	})
	out := p.Publish(e.ctx, pub, targets)
	var failedSnapshot string
	for _, r := range out.Results {
		if r.Target.Key() != failing.Key() {
			if r.Err != nil || !r.Record.Published() {
				t.Errorf("%s: %v, record %+v; want published despite the other target's failure", r.Target, r.Err, r.Record)
			}
			continue
		}
		var te *TargetError
		if !errors.As(r.Err, &te) || te.Step != StepRegister || te.Target.Key() != failing.Key() {
			t.Fatalf("%s: error %v, want a *TargetError at step %q", r.Target, r.Err, StepRegister)
		}
		for _, s := range []string{"account 333333333333 in us-east-1", "register image", "InternalError"} {
			if !strings.Contains(r.Err.Error(), s) {
				t.Errorf("error %q does not name %q", r.Err, s)
			}
		}
		if r.Record.SnapshotID == "" || r.Record.ImageID != "" || r.Record.Step != StepWaitSnapshot {
			t.Errorf("failed target's record %+v: want its completed snapshot kept and no image", r.Record)
		}
		failedSnapshot = r.Record.SnapshotID
	}
	if err := out.Error(); err == nil || !strings.Contains(err.Error(), failing.AccountID) {
		t.Errorf("Outcome.Error() = %v, want the failed target's error", err)
	}

	world.Faults.SetRules()
	e.events.reset()
	again := p.Publish(e.ctx, pub, targets)
	if err := again.Error(); err != nil {
		t.Fatal(err)
	}
	for i, r := range again.Results {
		steps := e.events.steps(r.Target.Key())
		if slices.Contains(steps, StepUnpack) || slices.Contains(steps, StepCreateSnapshot) {
			t.Errorf("%s: the second run went through %v; want no unpack and no new snapshot", r.Target, steps)
		}
		if r.Target.Key() == failing.Key() {
			if r.Record.SnapshotID != failedSnapshot || !slices.Contains(steps, StepRegister) {
				t.Errorf("%s: second run %+v through %v; want snapshot %s registered", r.Target, r.Record, steps, failedSnapshot)
			}
		} else if r.Record.ImageID != out.Results[i].Record.ImageID || slices.Contains(steps, StepRegister) {
			t.Errorf("%s: second run %+v through %v; want image %s found again", r.Target, r.Record, steps, out.Results[i].Record.ImageID)
		}
	}
	e.wantOnePerTarget(pub, targets, 1)
}
