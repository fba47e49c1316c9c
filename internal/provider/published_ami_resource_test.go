package provider

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/bootdisk"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/bootfs"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/qemuboot"
)

// pubCopyTree copies a bootable tree to a directory of the test's own (the
// stream's source, which a later step changes).
func pubCopyTree(t *testing.T, src string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rootfs")
	if out, err := exec.Command("cp", "-a", src, dir).CombinedOutput(); err != nil {
		t.Fatalf("copy the tree: %v: %s", err, out)
	}
	return dir
}

// Two accounts × two regions, a from-scratch tree stream (the boot
// fixture's tree): every AMI is available with the asked attributes,
// encrypted with its target's default EBS key, shared with the consumer and
// the organization (and the consumer may create volumes from its
// snapshot), its SSM parameter holding its ID; one target's AMI boots
// under BIOS; the root file systems of all four hold the revision's files.
// Revision 2 changes one file: each unpacker fetches only that object, each
// new snapshot differs from the previous one in at most 16 blocks of 512
// KiB, the AMI of another target boots under UEFI, `amis` and the SSM
// parameters hold the new AMIs, and the old AMIs stay registered. The
// destroy leaves nothing (protected AMIs included).
func TestAccPublishedAMI_fourTargets(t *testing.T) {
	w := newPubWorld(t, pubFourTargets...)
	trees := bootfs.MustBuild(t)
	t.Setenv("AUTOAMI_CACHE_DIR", t.TempDir())
	src := pubCopyTree(t, trees.Rev1)
	cfg := w.config(pubConfig{
		provider:  `  default_tags  = { owner = "platform" }`,
		stream:    treeSource(src),
		published: pubSharedArgs + "  deregistration_protection = true\n",
	})
	want := pubDefaults()
	want.description = "autoami acceptance test image"
	want.protected = true
	want.tags = map[string]string{"team": "web", "owner": "platform"}
	changed := []byte("web-rev2\n")
	var rev1, rev2 map[string]pubAMI
	var revision1 string
	var describes int
	var started time.Time
	resource.Test(t, resource.TestCase{
		PreCheck:                 w.preCheck,
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             w.checkNothingLeft,
		Steps: []resource.TestStep{
			{
				PreConfig: func() { started = time.Now() },
				Config:    cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(pubAddr, tfjsonpath.New("id"), knownvalue.StringExact(pubStreamName)),
					statecheck.ExpectKnownValue(pubAddr, tfjsonpath.New("amis"), knownvalue.MapSizeExact(4)),
					statecheck.ExpectKnownValue(pubAddr, tfjsonpath.New("deprecation_time"), knownvalue.Null()),
					statecheck.ExpectKnownValue(pubAddr, tfjsonpath.New("tags_all"), knownvalue.MapExact(map[string]knownvalue.Check{
						"team": knownvalue.StringExact("web"), "owner": knownvalue.StringExact("platform")})),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					func(*terraform.State) error {
						t.Logf("revision 1: unpackers, stream and publication to 4 targets in %s", time.Since(started).Round(time.Second))
						return nil
					},
					w.remember(&rev1),
					func(s *terraform.State) error {
						a, err := attrs(s, pubAddr)
						revision1 = a["revision"]
						return err
					},
					w.checkAMIs(want),
					w.checkShared(true),
					w.checkParameter(pubParameter),
					w.checkInventory(1, true, true),
					w.checkSameFiles(),
					w.checkBoots(pubOwnEast, qemuboot.BIOS),
				),
			},
			{
				// Revision 2: one file changed.
				PreConfig: func() {
					if err := os.WriteFile(filepath.Join(src, "etc", "hostname"), changed, 0o644); err != nil {
						t.Fatal(err)
					}
					started = time.Now()
				},
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(pubAddr, plancheck.ResourceActionUpdate),
					// The stream's new revision is known at plan.
					plancheck.ExpectKnownValue(pubAddr, tfjsonpath.New("revision"), knownvalue.StringFunc(func(v string) error {
						if v == revision1 || len(v) != 64 {
							return fmt.Errorf("planned revision %q; revision 1 was %s", v, revision1)
						}
						return nil
					})),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					func(*terraform.State) error {
						t.Logf("revision 2: stream and publication to 4 targets in %s", time.Since(started).Round(time.Second))
						return nil
					},
					w.remember(&rev2),
					w.checkFetched(1, int64(len(changed))),
					w.checkChangedBlocks(&rev1, 16),
					w.checkAMIs(want),
					w.checkShared(true),
					w.checkParameter(pubParameter),
					w.checkStillRegistered(&rev1),
					w.checkInventory(2, true, true),
					w.checkBoots(pubOtherWest, qemuboot.UEFI),
				),
			},
			{
				// Nothing changed: the plan is empty, and its refresh of four
				// targets in two accounts and two regions makes at most two
				// DescribeImages per account and region (issue 14).
				PreConfig: func() { describes = testAccWorld.Faults.Stat("ec2:DescribeImages").Calls },
				Config:    cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
				Check: func(*terraform.State) error {
					n := testAccWorld.Faults.Stat("ec2:DescribeImages").Calls - describes
					t.Logf("the refresh of 4 targets made %d DescribeImages calls", n)
					if n == 0 || n > 2*len(pubFourTargets) {
						return fmt.Errorf("the refresh of 4 targets made %d DescribeImages calls, want 1 to %d", n, 2*len(pubFourTargets))
					}
					return nil
				},
			},
		},
	})
}

// A raw-image stream (the boot fixture's disk) is published without an
// unpacker and boots; with a policy's max_age the AMIs are deprecated at
// the publication time plus max_age, rounded up to the minute, which
// deprecation_time says.
func TestAccPublishedAMI_rawImageDeprecated(t *testing.T) {
	w := newPubWorld(t, pubOwnEast)
	disk, err := bootdisk.Build(context.Background(), bootdisk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("AUTOAMI_CACHE_DIR", t.TempDir())
	cfg := w.config(pubConfig{
		stream:    rawSource(disk.Path),
		published: "  policy_id = autoami_policy.p.id\n",
		extra: `
resource "autoami_policy" "p" {
  name    = "published-acc"
  max_age = "30d"
}
`,
	})
	var before time.Time
	resource.Test(t, resource.TestCase{
		PreCheck:                 w.preCheck,
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             w.checkNothingLeft,
		Steps: []resource.TestStep{{
			PreConfig: func() { before = time.Now() },
			Config:    cfg,
			Check: func(s *terraform.State) error {
				after := time.Now()
				a, err := attrs(s, pubAddr)
				if err != nil {
					return err
				}
				at, err := time.Parse(time.RFC3339, a["deprecation_time"])
				if err != nil {
					return fmt.Errorf("deprecation_time %q: %w", a["deprecation_time"], err)
				}
				const maxAge = 30 * 24 * time.Hour
				if at.Before(before.Add(maxAge)) || at.After(after.Add(maxAge+time.Minute)) || at.Second() != 0 || at.Nanosecond() != 0 {
					return fmt.Errorf("deprecation_time %s, want the publication time (%s to %s) + 30d rounded up to the minute",
						at, before.UTC().Format(time.RFC3339), after.UTC().Format(time.RFC3339))
				}
				want := pubDefaults()
				want.deprecation = at.UTC().Format("2006-01-02T15:04:05.000Z")
				return resource.ComposeAggregateTestCheckFunc(
					w.checkAMIs(want),
					w.checkShared(false),
					// No stream volume: EBS direct writes the snapshot.
					w.checkInventory(1, false, false),
					w.checkBoots(pubOwnEast, qemuboot.BIOS),
				)(s)
			},
		}},
	})
}
