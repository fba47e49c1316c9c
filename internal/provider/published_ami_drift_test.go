package provider

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/bootfs"
)

// amisEntry is the plan path of one target's `amis` entry.
func amisEntry(tg pubTarget) tfjsonpath.Path { return tfjsonpath.New("amis").AtMapKey(tg.key()) }

// keepsImage is a plan check: tg's `amis` entry stays known with the image
// ID it had in *before.
func keepsImage(before *map[string]pubAMI, tg pubTarget) plancheck.PlanCheck {
	return plancheck.ExpectKnownValue(pubAddr, amisEntry(tg).AtMapKey("image_id"), knownvalue.StringFunc(func(v string) error {
		if want := (*before)[tg.key()].ImageID; v != want {
			return fmt.Errorf("planned image_id %s, want the unchanged %s", v, want)
		}
		return nil
	}))
}

// Drift, disappearance and import of a publication in two targets (own
// account in us-east-1, the other account in eu-west-1):
//   - one AMI deregistered out of band: the refresh plan is an update in
//     which only that target's `amis` entry is unknown; the apply republishes
//     that target only;
//   - a launch permission removed and the SSM parameter overwritten out of
//     band: the plan sets launch_permission and ssm_parameter again, and the
//     apply restores both;
//   - every AMI gone: the plan updates (the resource stays) and the apply
//     republishes every target;
//   - import by the stream name, after the resource left the state (a
//     removed block): the next plan adopts the AMIs found by their tags and
//     the apply makes no new AMI and keeps the image IDs.
func TestAccPublishedAMI_driftDisappearsImport(t *testing.T) {
	w := newPubWorld(t, pubOwnEast, pubOtherWest)
	trees := bootfs.MustBuild(t)
	t.Setenv("AUTOAMI_CACHE_DIR", t.TempDir())
	// Registration attributes besides the defaults, which the adopting
	// apply after the import must match too.
	cfg := w.config(pubConfig{stream: treeSource(trees.Rev1), published: pubSharedArgs + `  volume_type = "gp2"
  volume_size = 4
`})
	want := pubDefaults()
	want.volumeType, want.volumeSize = "gp2", 4
	want.description = "autoami acceptance test image"
	want.tags = map[string]string{"team": "web"}
	ctx := context.Background()
	var first, second, third, fourth map[string]pubAMI
	everything := func(into *map[string]pubAMI, images int) resource.TestCheckFunc {
		return resource.ComposeAggregateTestCheckFunc(
			w.remember(into),
			w.checkAMIs(want),
			w.checkShared(true),
			w.checkParameter(pubParameter),
			w.checkInventory(images, true, true),
		)
	}
	resource.Test(t, resource.TestCase{
		PreCheck:                 w.preCheck,
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             w.checkNothingLeft,
		Steps: []resource.TestStep{
			{
				Config: cfg,
				Check:  everything(&first, 1),
			},
			{
				// Drift: the other target's AMI deregistered (its snapshot
				// left, as by a console user).
				PreConfig: func() { pubDeregister(t, pubOtherWest, first[pubOtherWest.key()], false) },
				Config:    cfg,
				PlanOnly:  true,
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(pubAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue(pubAddr, amisEntry(pubOtherWest)),
					keepsImage(&first, pubOwnEast),
				}},
				ExpectNonEmptyPlan: true,
			},
			{
				// The apply republishes that target only.
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(pubAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue(pubAddr, amisEntry(pubOtherWest)),
					keepsImage(&first, pubOwnEast),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					w.remember(&second),
					w.checkAMIs(want),
					w.checkShared(true),
					w.checkParameter(pubParameter),
					func(*terraform.State) error {
						if second[pubOwnEast.key()] != first[pubOwnEast.key()] {
							return fmt.Errorf("%s was republished: %+v, before %+v", pubOwnEast, second[pubOwnEast.key()], first[pubOwnEast.key()])
						}
						if second[pubOtherWest.key()].ImageID == first[pubOtherWest.key()].ImageID {
							return fmt.Errorf("%s still names the deregistered %s", pubOtherWest, first[pubOtherWest.key()].ImageID)
						}
						return nil
					},
				),
			},
			{
				// A launch permission removed and the SSM parameter
				// overwritten out of band: restored by the next apply.
				PreConfig: func() {
					c, err := pubEC2(ctx, pubOwnEast)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := c.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(second[pubOwnEast.key()].ImageID),
						LaunchPermission: &ec2types.LaunchPermissionModifications{Remove: []ec2types.LaunchPermission{{UserId: aws.String(pubConsumer)}}}}); err != nil {
						t.Fatal(err)
					}
					pubOverwriteParameter(t, pubOtherWest)
				},
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(pubAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(pubAddr, tfjsonpath.New("launch_permission").AtMapKey("account_ids"),
						knownvalue.SetExact([]knownvalue.Check{knownvalue.StringExact(pubConsumer)})),
					plancheck.ExpectKnownValue(pubAddr, tfjsonpath.New("ssm_parameter").AtMapKey("name"), knownvalue.StringExact(pubParameter)),
					keepsImage(&second, pubOwnEast),
					keepsImage(&second, pubOtherWest),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					w.checkSameAMIs(&second),
					w.checkShared(true),
					w.checkParameter(pubParameter),
				),
			},
			{
				// Disappears: every AMI and snapshot deleted out of band. The
				// resource stays; the apply republishes every target.
				PreConfig: func() {
					for _, tg := range w.targets {
						pubDeregister(t, tg, second[tg.key()], true)
					}
				},
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(pubAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue(pubAddr, amisEntry(pubOwnEast)),
					plancheck.ExpectUnknownValue(pubAddr, amisEntry(pubOtherWest)),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					everything(&third, 1),
					func(*terraform.State) error {
						for _, tg := range w.targets {
							if third[tg.key()].ImageID == second[tg.key()].ImageID {
								return fmt.Errorf("%s still names the deregistered %s", tg, second[tg.key()].ImageID)
							}
						}
						return nil
					},
				),
			},
			{
				// The resource leaves the state, its AMIs stay.
				Config: w.config(pubConfig{stream: treeSource(trees.Rev1), published: "-", extra: `
removed {
  from = autoami_published_ami.web
  lifecycle {
    destroy = false
  }
}
`}),
				Check: w.checkInventory(1, true, true),
			},
			{
				// Import by the stream name.
				Config:             cfg,
				ResourceName:       pubAddr,
				ImportState:        true,
				ImportStateId:      pubStreamName,
				ImportStatePersist: true,
				ImportStateCheck: func(states []*terraform.InstanceState) error {
					// The state holds the whole configuration's resources;
					// the imported one knows only its ID (and stream).
					var imported []*terraform.InstanceState
					for _, s := range states {
						if _, ok := s.Attributes["image_stream"]; ok {
							imported = append(imported, s)
						}
					}
					if len(imported) != 1 || imported[0].ID != pubStreamName || imported[0].Attributes["amis.%"] != "" {
						return fmt.Errorf("imported %v, want one publication with ID %s and nothing else known", imported, pubStreamName)
					}
					return nil
				},
			},
			{
				// The plan adopts the AMIs found by their tags: no new AMI,
				// the same image IDs.
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(pubAddr, plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					everything(&fourth, 1),
					w.checkSameAMIs(&third),
				),
			},
		},
	})
}

// pubOverwriteParameter puts another AMI (one of Amazon's in the region) in
// the target's SSM parameter, as someone outside Terraform would.
func pubOverwriteParameter(t *testing.T, tg pubTarget) {
	t.Helper()
	ctx := context.Background()
	c, err := pubEC2(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	images, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"},
		Filters: []ec2types.Filter{{Name: aws.String("architecture"), Values: []string{"x86_64"}}}})
	if err != nil || len(images.Images) == 0 {
		t.Fatalf("an Amazon image in %s: %v", tg, err)
	}
	s, err := pubSSM(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(pubParameter), Value: images.Images[0].ImageId,
		Type: ssmtypes.ParameterTypeString, DataType: aws.String(pubImageDataType), Overwrite: aws.Bool(true)}); err != nil {
		t.Fatalf("overwrite %s in %s: %v", pubParameter, tg, err)
	}
}
