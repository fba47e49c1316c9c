package provider

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/bootfs"
)

// Changes in place of a publication in two targets: dropping a target
// removes its AMI, snapshot, stream volume and SSM parameter there; a
// renamed ssm_parameter is written under the new name and the old one is
// deleted; a tag dropped from the configuration is deleted from the AMI and
// its snapshot while the provider's default tags stay (tags_all); a launch
// permission added is granted. The kept target keeps its AMI: its `amis`
// entry stays known in the plan and nothing is republished.
func TestAccPublishedAMI_updatesInPlace(t *testing.T) {
	w := newPubWorld(t, pubOwnEast, pubOtherWest)
	trees := bootfs.MustBuild(t)
	t.Setenv("AUTOAMI_CACHE_DIR", t.TempDir())
	const renamed = "/autoami/web/boot/latest"
	defaults := `default_tags = { owner = "platform" }`
	before := w.config(pubConfig{provider: defaults, stream: treeSource(trees.Rev1), published: `
  ssm_parameter = { name = "/autoami/web/boot/image-id" }
  tags          = { team = "web", cost-center = "42" }
`})
	after := w.config(pubConfig{provider: defaults, stream: treeSource(trees.Rev1), targets: []pubTarget{pubOwnEast}, published: `
  ssm_parameter     = { name = "/autoami/web/boot/latest" }
  tags              = { team = "web" }
  launch_permission = { account_ids = ["444444444444"] }
`})
	ctx := context.Background()
	var first, second map[string]pubAMI
	resource.Test(t, resource.TestCase{
		PreCheck:                 w.preCheck,
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             w.checkNothingLeft,
		Steps: []resource.TestStep{
			{
				Config: before,
				Check: resource.ComposeAggregateTestCheckFunc(
					w.remember(&first),
					resource.TestCheckResourceAttr(pubAddr, "tags_all.owner", "platform"),
					resource.TestCheckResourceAttr(pubAddr, "tags_all.cost-center", "42"),
					w.checkParameter(pubParameter),
					w.checkInventory(1, true, true),
					pubCheckImageTags(pubOwnEast, map[string]string{"team": "web", "cost-center": "42", "owner": "platform"}, nil),
				),
			},
			{
				Config: after,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(pubAddr, plancheck.ResourceActionUpdate),
					keepsImage(&first, pubOwnEast),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					w.remember(&second),
					func(*terraform.State) error {
						if got, want := second[pubOwnEast.key()].ImageID, first[pubOwnEast.key()].ImageID; got != want {
							return fmt.Errorf("%s republished: image %s, was %s", pubOwnEast, got, want)
						}
						if _, ok := second[pubOtherWest.key()]; ok || len(second) != 1 {
							return fmt.Errorf("amis after dropping %s: %v", pubOtherWest, second)
						}
						return nil
					},
					pubCheckDropped(pubOtherWest),
					pubCheckParameters(pubOwnEast, renamed, &second, pubParameter),
					pubCheckImageTags(pubOwnEast, map[string]string{"team": "web", "owner": "platform"}, []string{"cost-center"}),
					func(*terraform.State) error {
						grants, err := pubLaunchGrants(ctx, pubOwnEast, second[pubOwnEast.key()].ImageID)
						if err != nil {
							return err
						}
						if !slices.Contains(grants, "account:"+pubConsumer) {
							return fmt.Errorf("launch grants of %s: %v, want %s added", pubOwnEast, grants, pubConsumer)
						}
						return nil
					},
				),
			},
		},
	})
}

// pubCheckDropped: the publication holds nothing in tg any more (no image,
// snapshot, volume or parameter of it), and tg has no SSM parameter of it.
func pubCheckDropped(tg pubTarget) resource.TestCheckFunc {
	return func(*terraform.State) error {
		counts, err := pubCountByKind(context.Background())
		if err != nil {
			return err
		}
		for k, n := range counts {
			if strings.HasPrefix(k, tg.key()+" ") && n > 0 {
				return fmt.Errorf("the dropped target %s still holds %d %s", tg, n, strings.TrimPrefix(k, tg.key()+" "))
			}
		}
		if v, _, ok, err := pubParameterValue(context.Background(), tg, pubParameter); err != nil || ok {
			return fmt.Errorf("the dropped target %s still has parameter %s = %q (%v)", tg, pubParameter, v, err)
		}
		return nil
	}
}

// pubCheckParameters: in tg, name holds the target's AMI and gone does not
// exist.
func pubCheckParameters(tg pubTarget, name string, amis *map[string]pubAMI, gone string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		ctx := context.Background()
		v, dt, ok, err := pubParameterValue(ctx, tg, name)
		if err != nil {
			return err
		}
		if want := (*amis)[tg.key()].ImageID; !ok || v != want || dt != pubImageDataType {
			return fmt.Errorf("%s: parameter %s = %q (exists %v, type %q), want %s", tg, name, v, ok, dt, want)
		}
		if v, _, ok, err := pubParameterValue(ctx, tg, gone); err != nil || ok {
			return fmt.Errorf("%s: the renamed parameter %s still holds %q (%v)", tg, gone, v, err)
		}
		return nil
	}
}

// pubCheckImageTags: tg's AMI and its snapshot carry want and none of
// absent.
func pubCheckImageTags(tg pubTarget, want map[string]string, absent []string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		ctx := context.Background()
		amis, err := pubAMIs(s)
		if err != nil {
			return err
		}
		img, err := pubImage(ctx, tg.account, tg.region, amis[tg.key()].ImageID)
		if err != nil {
			return err
		}
		tags := pubTags(img.Tags)
		for k, v := range want {
			if tags[k] != v {
				return fmt.Errorf("%s: image tag %s = %q, want %q (tags %v)", tg, k, tags[k], v, tags)
			}
		}
		for _, k := range absent {
			if _, ok := tags[k]; ok {
				return fmt.Errorf("%s: image still has the removed tag %s (tags %v)", tg, k, tags)
			}
		}
		return nil
	}
}
