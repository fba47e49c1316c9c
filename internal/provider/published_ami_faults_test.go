package provider

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/bootfs"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/faultproxy"
)

// Faults in two targets (own account in us-east-1, the other account in
// eu-west-1), with the unpackers and the stream made first:
//   - 30 % of every AWS call throttled (EC2, EBS, SSM, STS, KMS, S3, the
//     unpackers' downloads included): the publication comes out as without
//     throttling;
//   - after that publication is destroyed, RegisterImage answering
//     InternalError in eu-west-1: the create fails with an error naming that
//     target and the step, the other target is published (its AMI kept,
//     though the failed create saved no state); the next apply, the fault
//     gone, adopts that AMI and finishes the failed target, and leaves no
//     orphan.
func TestAccPublishedAMI_faults(t *testing.T) {
	w := newPubWorld(t, pubOwnEast, pubOtherWest)
	trees := bootfs.MustBuild(t)
	t.Setenv("AUTOAMI_CACHE_DIR", t.TempDir())
	without := w.config(pubConfig{stream: treeSource(trees.Rev1), published: "-"})
	cfg := w.config(pubConfig{stream: treeSource(trees.Rev1), published: pubSharedArgs})
	// Against an error that never ends, the default 8 retries (backoff up
	// to 30 s) take about 2.5 minutes to give up; 2 take seconds.
	fewRetries := w.config(pubConfig{provider: "  max_retries = 2", stream: treeSource(trees.Rev1), published: pubSharedArgs})
	want := pubDefaults()
	want.description = "autoami acceptance test image"
	want.tags = map[string]string{"team": "web"}
	published := resource.ComposeAggregateTestCheckFunc(
		w.checkAMIs(want),
		w.checkShared(true),
		w.checkParameter(pubParameter),
		w.checkInventory(1, true, true),
	)
	var adopted pubAMI
	resource.Test(t, resource.TestCase{
		PreCheck:                 w.preCheck,
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(s *terraform.State) error {
			testAccWorld.Faults.SetRules()
			return w.checkNothingLeft(s)
		},
		Steps: []resource.TestStep{
			{
				Config: without,
			},
			{
				PreConfig: func() {
					testAccWorld.Faults.SetRules(faultproxy.Rule{Throttle: faultproxy.Share{Fraction: 0.3}})
				},
				Config: cfg,
				Check: resource.ComposeAggregateTestCheckFunc(
					func(*terraform.State) error {
						// Checked without faults; what was throttled is counted first.
						stats := testAccWorld.Faults.Stats()
						testAccWorld.Faults.SetRules()
						// Which calls are hit depends on the order of the
						// targets' calls; every service is hit somewhere.
						calls, throttled := map[string]int{}, map[string]int{}
						for action, st := range stats {
							service, _, _ := strings.Cut(action, ":")
							calls[service] += st.Calls
							throttled[service] += st.Throttled
						}
						t.Logf("calls throttled by service: %v of %v", throttled, calls)
						for _, service := range []string{"ec2", "ssm", "s3", "sts"} {
							if throttled[service] == 0 {
								return fmt.Errorf("no %s call was throttled (%d calls)", service, calls[service])
							}
						}
						return nil
					},
					published,
				),
			},
			{
				// The publication goes; the unpackers and the stream stay.
				Config: without,
				Check: func(*terraform.State) error {
					left, err := pubLeftovers(context.Background())
					if err != nil || len(left) > 0 {
						return fmt.Errorf("left of the destroyed publication: %v %v", left, err)
					}
					return nil
				},
			},
			{
				PreConfig: func() {
					testAccWorld.Faults.SetRules(faultproxy.Rule{Actions: []string{"ec2:RegisterImage"}, Regions: []string{pubOtherWest.region},
						Error: faultproxy.ErrorReply{Code: "InternalError", Message: "injected", Share: faultproxy.Share{First: 1000}}})
				},
				Config:      fewRetries,
				ExpectError: errorText("publish to account 222222222222 in eu-west-1: register image:"),
			},
			{
				// The fault gone: the failed create left no state, so the
				// plan creates; the apply adopts the AMI published in
				// us-east-1 and finishes eu-west-1.
				PreConfig: func() {
					if st := testAccWorld.Faults.Stat("ec2:RegisterImage"); st.Errors != 3 {
						t.Errorf("RegisterImage answered InternalError %d times, want 3 (max_retries = 2): %+v", st.Errors, st)
					}
					testAccWorld.Faults.SetRules()
					ctx := context.Background()
					got, err := pubCountByKind(ctx)
					if err != nil {
						t.Fatal(err)
					}
					want := map[string]int{
						pubOwnEast.key() + " volume": 1, pubOwnEast.key() + " snapshot": 1, pubOwnEast.key() + " image": 1, pubOwnEast.key() + " parameter": 1,
						pubOtherWest.key() + " volume": 1, pubOtherWest.key() + " snapshot": 1,
					}
					if !maps.Equal(got, want) {
						t.Fatalf("after the failed create the publication holds %v, want %v", got, want)
					}
					left, err := pubLeftovers(ctx)
					if err != nil {
						t.Fatal(err)
					}
					for _, r := range left {
						if r.Kind == "image" {
							adopted = pubAMI{ImageID: r.ID}
						}
					}
				},
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(pubAddr, plancheck.ResourceActionCreate),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					published,
					func(s *terraform.State) error {
						amis, err := pubAMIs(s)
						if err != nil {
							return err
						}
						if got := amis[pubOwnEast.key()].ImageID; got != adopted.ImageID {
							return fmt.Errorf("%s: image %s, want %s published by the failed create", pubOwnEast, got, adopted.ImageID)
						}
						return nil
					},
				),
			},
		},
	})
}
