package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/autoami/terraform-provider-autoami/internal/awsclient"
	"github.com/autoami/terraform-provider-autoami/internal/policy"
)

const policyAddr = "autoami_policy.test"

// defaultPolicySummary is the summary of a policy that sets nothing.
const defaultPolicySummary = "critical within 4h, high within 24h, medium within 7d, low only after manual approval, " +
	"unknown within 24h; best before 30d; builds at any time; keeps 3 revisions, deregisters older ones after 30d " +
	"and deletes their snapshots; no budget"

// storedPolicyDocument reads a policy parameter straight from the test AWS.
func storedPolicyDocument(t *testing.T, name string) (policy.Policy, string, error) {
	t.Helper()
	c := testAccClients(t, awsclient.Target{})
	out, err := c.SSM.GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String(name)})
	if err != nil {
		return policy.Policy{}, "", fmt.Errorf("get %s: %w", name, err)
	}
	raw := aws.ToString(out.Parameter.Value)
	p, err := policy.ParseDocument([]byte(raw))
	return p, raw, err
}

func putParameter(t *testing.T, name, value string) {
	t.Helper()
	c := testAccClients(t, awsclient.Target{})
	_, err := c.SSM.PutParameter(context.Background(), &ssm.PutParameterInput{
		Name: aws.String(name), Value: aws.String(value), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("out-of-band put %s: %v", name, err)
	}
}

func parameterTags(t *testing.T, name string) map[string]string {
	t.Helper()
	c := testAccClients(t, awsclient.Target{})
	out, err := c.SSM.ListTagsForResource(context.Background(), &ssm.ListTagsForResourceInput{
		ResourceType: ssmtypes.ResourceTypeForTaggingParameter, ResourceId: aws.String(name),
	})
	if err != nil {
		t.Fatalf("list tags of %s: %v", name, err)
	}
	tags := map[string]string{}
	for _, tag := range out.TagList {
		tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	return tags
}

// testAccCheckPolicyDestroyed confirms no policy parameter is left.
func testAccCheckPolicyDestroyed(t *testing.T) func(*terraform.State) error {
	return func(s *terraform.State) error {
		for _, rs := range s.RootModule().Resources {
			if rs.Type != "autoami_policy" {
				continue
			}
			name := rs.Primary.Attributes["parameter_name"]
			c := testAccClients(t, awsclient.Target{})
			_, err := c.SSM.GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String(name)})
			var notFound *ssmtypes.ParameterNotFound
			if err == nil {
				return fmt.Errorf("policy parameter %s still exists after destroy", name)
			}
			if !errors.As(err, &notFound) {
				return fmt.Errorf("checking %s: %w", name, err)
			}
		}
		return nil
	}
}

// testAccCheckStoredPolicy checks the stored document against want.
func testAccCheckStoredPolicy(t *testing.T, name string, want func(p policy.Policy, raw string) error) resource.TestCheckFunc {
	return func(*terraform.State) error {
		p, raw, err := storedPolicyDocument(t, name)
		if err != nil {
			return fmt.Errorf("stored policy %s: %w (document %q)", name, err, raw)
		}
		return want(p, raw)
	}
}

func TestAccPolicy_defaultsImportUpdate(t *testing.T) {
	const param = "/autoami/policies/acc-defaults"
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckPolicyDestroyed(t),
		Steps: []resource.TestStep{
			{
				// Nothing but a name: every default is filled in and planned.
				Config: testAccProviderConfig + `
resource "autoami_policy" "test" {
  name = "acc-defaults"
}`,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(policyAddr, plancheck.ResourceActionCreate),
					plancheck.ExpectKnownValue(policyAddr, tfjsonpath.New("summary"), knownvalue.StringExact(defaultPolicySummary)),
					plancheck.ExpectKnownValue(policyAddr, tfjsonpath.New("rebuild_delays").AtMapKey("unknown"), knownvalue.StringExact("24h")),
					plancheck.ExpectUnknownValue(policyAddr, tfjsonpath.New("arn")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(policyAddr, tfjsonpath.New("id"), knownvalue.StringExact(param)),
					statecheck.ExpectKnownValue(policyAddr, tfjsonpath.New("parameter_name"), knownvalue.StringExact(param)),
					statecheck.ExpectKnownValue(policyAddr, tfjsonpath.New("arn"),
						knownvalue.StringRegexp(regexp.MustCompile(`^arn:aws:ssm:us-east-1:[0-9]{12}:parameter`+param+`$`))),
					statecheck.ExpectKnownValue(policyAddr, tfjsonpath.New("rebuild_delays"), knownvalue.ObjectExact(map[string]knownvalue.Check{
						"critical": knownvalue.StringExact("4h"), "high": knownvalue.StringExact("24h"),
						"medium": knownvalue.StringExact("7d"), "low": knownvalue.StringExact("manual"),
						"unknown": knownvalue.StringExact("24h"),
					})),
					statecheck.ExpectKnownValue(policyAddr, tfjsonpath.New("max_age"), knownvalue.StringExact("30d")),
					statecheck.ExpectKnownValue(policyAddr, tfjsonpath.New("build_window"), knownvalue.Null()),
					statecheck.ExpectKnownValue(policyAddr, tfjsonpath.New("retention"), knownvalue.ObjectExact(map[string]knownvalue.Check{
						"keep_revisions": knownvalue.Int64Exact(3), "deregister_after": knownvalue.StringExact("30d"),
						"delete_snapshots": knownvalue.Bool(true),
					})),
					statecheck.ExpectKnownValue(policyAddr, tfjsonpath.New("budget"), knownvalue.Null()),
					statecheck.ExpectKnownValue(policyAddr, tfjsonpath.New("summary"), knownvalue.StringExact(defaultPolicySummary)),
				},
				Check: testAccCheckStoredPolicy(t, param, func(p policy.Policy, raw string) error {
					if p.Name != "acc-defaults" || p.Summary() != defaultPolicySummary {
						return fmt.Errorf("stored policy %q says %q", p.Name, p.Summary())
					}
					return nil
				}),
			},
			{
				ResourceName:      policyAddr,
				ImportState:       true,
				ImportStateId:     "acc-defaults",
				ImportStateVerify: true,
			},
			{
				// Every rule set; the document follows.
				Config: testAccProviderConfig + `
resource "autoami_policy" "test" {
  name = "acc-defaults"
  rebuild_delays = {
    critical = "immediate"
    high     = "6h"
    medium   = "2w"
    low      = "30d"
  }
  max_age      = "14d"
  build_window = { start = "22:00", end = "04:30", timezone = "Europe/Berlin" }
  retention    = { keep_revisions = 5, deregister_after = "immediate", delete_snapshots = false }
  budget       = { monthly_usd = 100, urgent_usd = 50 }
  prices = {
    "eu-central-1" = { snapshot_gib_month_usd = 0.04, volume_gib_month_usd = 0.09, unpacker_hour_usd = 0.02 }
  }
  tags = { team = "platform" }
}`,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(policyAddr, plancheck.ResourceActionUpdate),
					// unknown follows high when not set.
					plancheck.ExpectKnownValue(policyAddr, tfjsonpath.New("rebuild_delays").AtMapKey("unknown"), knownvalue.StringExact("6h")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(policyAddr, tfjsonpath.New("summary"), knownvalue.StringExact(
						"critical immediately, high within 6h, medium within 14d, low within 30d, unknown within 6h; best before 14d; "+
							"builds 22:00-04:30 Europe/Berlin; keeps 5 revisions, deregisters older ones at once and keeps their snapshots; "+
							"budget $100.00/month (+$50.00 for critical rebuilds); custom prices for 1 region")),
					statecheck.ExpectKnownValue(policyAddr, tfjsonpath.New("rebuild_delays").AtMapKey("medium"), knownvalue.StringExact("2w")),
					statecheck.ExpectKnownValue(policyAddr, tfjsonpath.New("tags_all"), knownvalue.MapExact(map[string]knownvalue.Check{
						"team": knownvalue.StringExact("platform"),
					})),
				},
				Check: resource.ComposeTestCheckFunc(
					testAccCheckStoredPolicy(t, param, func(p policy.Policy, raw string) error {
						if d, _ := p.RebuildDelays.Medium.Duration(); d != 14*24*60*60*1e9 || p.BuildWindow == nil ||
							p.BuildWindow.Zone() != "Europe/Berlin" || p.Budget == nil || p.Budget.UrgentUSD != 50 ||
							p.Prices["eu-central-1"].UnpackerHourUSD != 0.02 || p.Retention.DeleteSnapshots {
							return fmt.Errorf("stored policy does not match the configuration:\n%s", raw)
						}
						return nil
					}),
					func(*terraform.State) error {
						if got := parameterTags(t, param); len(got) != 1 || got["team"] != "platform" {
							return fmt.Errorf("parameter tags = %v, want team=platform", got)
						}
						return nil
					},
				),
			},
			{
				// Import brings back the same rules; "2w" reads back as "14d".
				ResourceName:            policyAddr,
				ImportState:             true,
				ImportStateId:           param,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"rebuild_delays.medium"},
			},
			{
				// Back to defaults: removing attributes restores the defaults.
				Config: testAccProviderConfig + `
resource "autoami_policy" "test" {
  name = "acc-defaults"
}`,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(policyAddr, tfjsonpath.New("summary"), knownvalue.StringExact(defaultPolicySummary)),
					statecheck.ExpectKnownValue(policyAddr, tfjsonpath.New("tags_all"), knownvalue.MapSizeExact(0)),
				},
				Check: func(*terraform.State) error {
					if got := parameterTags(t, param); len(got) != 0 {
						return fmt.Errorf("parameter tags = %v after removing them", got)
					}
					return nil
				},
			},
		},
	})
}

const driftConfig = testAccProviderConfig + `
resource "autoami_policy" "test" {
  name = "acc-drift"
  rebuild_delays = { high = "12h" }
  tags = { owner = "sec" }
}`

const driftParam = "/autoami/policies/acc-drift"

func TestAccPolicy_outOfBandEdit(t *testing.T) {
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckPolicyDestroyed(t),
		Steps: []resource.TestStep{
			{Config: driftConfig},
			{
				// Someone loosens the high rebuild delay by hand: the plan shows it
				// and apply puts the configured rules back.
				PreConfig: func() {
					_, raw, err := storedPolicyDocument(t, driftParam)
					if err != nil {
						t.Fatal(err)
					}
					putParameter(t, driftParam, strings.Replace(raw, `"high": "12h"`, `"high": "7d"`, 1))
				},
				Config: driftConfig,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(policyAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(policyAddr, tfjsonpath.New("rebuild_delays").AtMapKey("high"), knownvalue.StringExact("12h")),
				}},
				Check: testAccCheckStoredPolicy(t, driftParam, func(p policy.Policy, raw string) error {
					if d, _ := p.RebuildDelays.High.Duration(); d.Hours() != 12 {
						return fmt.Errorf("high rebuild delay not restored: %s", raw)
					}
					return nil
				}),
			},
			{
				// Someone overwrites it with something that is not a policy.
				PreConfig: func() { putParameter(t, driftParam, "rebuild whenever") },
				Config:    driftConfig,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(policyAddr, plancheck.ResourceActionUpdate),
				}},
				Check: testAccCheckStoredPolicy(t, driftParam, func(p policy.Policy, raw string) error {
					if !strings.Contains(p.Summary(), "high within 12h") {
						return fmt.Errorf("policy not restored: %s", raw)
					}
					return nil
				}),
			},
			{
				// Someone adds a tag and changes another: both are undone.
				PreConfig: func() {
					c := testAccClients(t, awsclient.Target{})
					_, err := c.SSM.AddTagsToResource(context.Background(), &ssm.AddTagsToResourceInput{
						ResourceType: ssmtypes.ResourceTypeForTaggingParameter, ResourceId: aws.String(driftParam),
						Tags: []ssmtypes.Tag{{Key: aws.String("owner"), Value: aws.String("nobody")}, {Key: aws.String("extra"), Value: aws.String("x")}},
					})
					if err != nil {
						t.Fatal(err)
					}
				},
				Config: driftConfig,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(policyAddr, plancheck.ResourceActionUpdate),
				}},
				Check: func(*terraform.State) error {
					if got := parameterTags(t, driftParam); len(got) != 1 || got["owner"] != "sec" {
						return fmt.Errorf("tags not restored: %v", got)
					}
					return nil
				},
			},
			{
				// And a refresh with nothing changed plans nothing.
				Config: driftConfig,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
		},
	})
}

func TestAccPolicy_outOfBandDelete(t *testing.T) {
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckPolicyDestroyed(t),
		Steps: []resource.TestStep{
			{Config: driftConfig},
			{
				PreConfig: func() {
					c := testAccClients(t, awsclient.Target{})
					if _, err := c.SSM.DeleteParameter(context.Background(), &ssm.DeleteParameterInput{Name: aws.String(driftParam)}); err != nil {
						t.Fatal(err)
					}
				},
				Config: driftConfig,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(policyAddr, plancheck.ResourceActionCreate),
				}},
				Check: resource.ComposeTestCheckFunc(
					testAccCheckStoredPolicy(t, driftParam, func(p policy.Policy, raw string) error {
						if !strings.Contains(p.Summary(), "high within 12h") {
							return fmt.Errorf("policy not recreated: %s", raw)
						}
						return nil
					}),
					func(*terraform.State) error {
						if got := parameterTags(t, driftParam); got["owner"] != "sec" {
							return fmt.Errorf("recreated parameter tags = %v", got)
						}
						return nil
					},
				),
			},
		},
	})
}

func TestAccPolicy_customPrefixAndDefaultTags(t *testing.T) {
	const param = "/team-a/rules/acc-prefix"
	config := `
provider "autoami" {
  region       = "us-east-1"
  default_tags = { managed_by = "terraform", team = "default", env = "test" }
}

resource "autoami_policy" "test" {
  name             = "acc-prefix"
  parameter_prefix = "/team-a/rules/"
  build_window     = { start = "23:00", end = "01:00" }
  budget           = { monthly_usd = 12.5 }
  tags             = { team = "a", env = "test" }
}`
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckPolicyDestroyed(t),
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(policyAddr, tfjsonpath.New("parameter_name"), knownvalue.StringExact(param)),
					statecheck.ExpectKnownValue(policyAddr, tfjsonpath.New("build_window").AtMapKey("timezone"), knownvalue.StringExact("UTC")),
					statecheck.ExpectKnownValue(policyAddr, tfjsonpath.New("budget"), knownvalue.ObjectExact(map[string]knownvalue.Check{
						"monthly_usd": knownvalue.Float64Exact(12.5), "urgent_usd": knownvalue.Float64Exact(0),
					})),
					statecheck.ExpectKnownValue(policyAddr, tfjsonpath.New("tags_all"), knownvalue.MapExact(map[string]knownvalue.Check{
						"managed_by": knownvalue.StringExact("terraform"), "team": knownvalue.StringExact("a"),
						"env": knownvalue.StringExact("test"),
					})),
				},
				Check: func(*terraform.State) error {
					if got := parameterTags(t, param); got["team"] != "a" || got["managed_by"] != "terraform" {
						return fmt.Errorf("parameter tags = %v", got)
					}
					return nil
				},
			},
			{
				// A tag the configuration sets to the same value as a default
				// tag stays the configuration's: no perpetual diff.
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
			{
				ResourceName: policyAddr, ImportState: true, ImportStateId: param, ImportStateVerify: true,
				// On import nothing says which tags the configuration set
				// itself; env equals the default tag, so it lands in tags_all only.
				ImportStateVerifyIgnore: []string{"tags.%", "tags.env"},
			},
		},
	})
}

func TestAccPolicy_createOverExisting(t *testing.T) {
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			PreConfig: func() { putParameter(t, "/autoami/policies/taken", "someone else's") },
			Config: testAccProviderConfig + `
resource "autoami_policy" "test" {
  name = "taken"
}`,
			ExpectError: regexp.MustCompile(`(?s)/autoami/policies/taken already exists.*import\s+it`),
		}},
	})
}

func TestAccPolicy_importErrors(t *testing.T) {
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:        testAccProviderConfig + `resource "autoami_policy" "test" { name = "missing" }`,
				ResourceName:  policyAddr,
				ImportState:   true,
				ImportStateId: "missing",
				ExpectError:   regexp.MustCompile(`no SSM parameter /autoami/policies/missing`),
			},
			{
				Config:        testAccProviderConfig + `resource "autoami_policy" "test" { name = "x" }`,
				ResourceName:  policyAddr,
				ImportState:   true,
				ImportStateId: "bad name!",
				ExpectError:   regexp.MustCompile(`Invalid import ID`),
			},
		},
	})
}

// TestAccPolicy_invalidConfig checks that bad values fail at plan time with
// an error naming the attribute and the accepted forms.
func TestAccPolicy_invalidConfig(t *testing.T) {
	tests := []struct {
		name, policyName, body string
		want                   string
	}{
		{"delay word", "", `rebuild_delays = { high = "soon" }`,
			`(?s)rebuild_delays\.high: invalid delay "soon".*` + "`immediate`, `manual`, or.*30m, 4h, 7d or 2w"},
		{"delay unit", "", `rebuild_delays = { critical = "4s" }`, `(?s)rebuild_delays\.critical: invalid delay "4s"`},
		{"delay zero", "", `rebuild_delays = { unknown = "0h" }`, `(?s)rebuild_delays\.unknown: invalid delay "0h"`},
		{"max age keyword", "", `max_age = "manual"`, `(?s)max_age: invalid duration "manual".*30m, 4h, 7d or\s+2w`},
		{"max age order", "", `max_age = "1h1d"`, `(?s)max_age: invalid duration "1h1d".*out of order`},
		{"deregister", "", `retention = { deregister_after = "later" }`, `(?s)retention\.deregister_after: invalid delay "later"`},
		{"keep zero", "", `retention = { keep_revisions = 0 }`, `(?s)keep_revisions.*between 1 and 1000`},
		{"window start equals end", "", `build_window = { start = "02:00", end = "02:00" }`, `(?s)build_window: build window start and end are both\s+02:00`},
		{"window bad time", "", `build_window = { start = "25:00", end = "02:00" }`, `(?s)build_window\.start: invalid time of day "25:00".*HH:MM`},
		{"window bad zone", "", `build_window = { start = "01:00", end = "02:00", timezone = "Mars/Base" }`,
			`(?s)build_window\.timezone: unknown time zone "Mars/Base".*IANA`},
		{"window local zone", "", `build_window = { start = "01:00", end = "02:00", timezone = "Local" }`, `(?s)depends on the\s+machine`},
		{"negative budget", "", `budget = { monthly_usd = -1 }`, `(?s)monthly_usd.*at least 0`},
		{"price region", "", `prices = { "mars-1" = { snapshot_gib_month_usd = 1, volume_gib_month_usd = 1, unpacker_hour_usd = 1 } }`, `(?s)prices`},
		{"prefix", "", `parameter_prefix = "autoami"`, `(?s)parameter_prefix "autoami": must start and end with`},
		{"reserved prefix", "", `parameter_prefix = "/aws/x/"`, `(?s)reserves parameter names beginning with aws`},
	}
	tests = append(tests, struct {
		name, policyName, body string
		want                   string
	}{"name", "bad/name", "", `(?s)name "bad/name": must be 1 to 128 letters`})
	for _, tc := range tests {
		name := "acc-invalid"
		if tc.policyName != "" {
			name = tc.policyName
		}
		t.Run(tc.name, func(t *testing.T) {
			resource.Test(t, resource.TestCase{
				PreCheck:                 func() { testAccPreCheck(t) },
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				Steps: []resource.TestStep{{
					Config: testAccProviderConfig + fmt.Sprintf(`
resource "autoami_policy" "test" {
  name = %q
  %s
}`, name, tc.body),
					ExpectError: regexp.MustCompile(tc.want),
				}},
			})
		})
	}
}

// The unit tests below need no AWS.

func TestResolvePolicyPlanDefaults(t *testing.T) {
	ctx := context.Background()
	var diags diag.Diagnostics
	cfg := policyResourceModel{
		Name:            types.StringValue("prod"),
		ParameterPrefix: types.StringNull(),
		RebuildDelays: objectFrom(ctx, rebuildDelaysAttrTypes, rebuildDelaysModel{
			Critical: types.StringNull(), High: types.StringValue("2h"), Medium: types.StringNull(), Low: types.StringNull(), Unknown: types.StringNull(),
		}, &diags),
		MaxAge:      types.StringNull(),
		BuildWindow: types.ObjectNull(buildWindowAttrTypes),
		Retention:   types.ObjectNull(retentionAttrTypes),
		Budget:      types.ObjectNull(budgetAttrTypes),
		Prices:      types.MapNull(priceObjectType),
		Tags:        types.MapNull(types.StringType),
	}
	m, diags := resolvePolicyPlan(ctx, cfg, &providerData{defaultTags: map[string]string{"env": "test"}})
	if diags.HasError() {
		t.Fatal(diags)
	}
	if got := m.ParameterName.ValueString(); got != "/autoami/policies/prod" || m.ID.ValueString() != got {
		t.Errorf("parameter_name = %q, id = %q", got, m.ID.ValueString())
	}
	var delays rebuildDelaysModel
	m.RebuildDelays.As(ctx, &delays, objectAsOptions)
	if delays.Critical.ValueString() != "4h" || delays.High.ValueString() != "2h" || delays.Unknown.ValueString() != "2h" || delays.Low.ValueString() != "manual" {
		t.Errorf("rebuild delays = %+v", delays)
	}
	var r retentionModel
	m.Retention.As(ctx, &r, objectAsOptions)
	if r.KeepRevisions.ValueInt64() != 3 || r.DeregisterAfter.ValueString() != "30d" || !r.DeleteSnapshots.ValueBool() {
		t.Errorf("retention = %+v", r)
	}
	if m.MaxAge.ValueString() != "30d" || !m.BuildWindow.IsNull() || !m.Budget.IsNull() {
		t.Errorf("max_age %v, build_window %v, budget %v", m.MaxAge, m.BuildWindow, m.Budget)
	}
	if !strings.HasPrefix(m.Summary.ValueString(), "critical within 4h, high within 2h, medium within 7d") {
		t.Errorf("summary = %q", m.Summary.ValueString())
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(m.Document.ValueString()), &doc); err != nil || doc["name"] != "prod" {
		t.Errorf("document = %s (%v)", m.Document.ValueString(), err)
	}
	if m.TagsAll.Elements()["env"] == nil {
		t.Errorf("tags_all = %v, want the default tag", m.TagsAll)
	}

	// The same configuration twice gives the same plan.
	again, _ := resolvePolicyPlan(ctx, cfg, &providerData{defaultTags: map[string]string{"env": "test"}})
	if !again.Document.Equal(m.Document) || !again.Summary.Equal(m.Summary) {
		t.Errorf("plans differ between runs")
	}

	// An unknown value leaves the derived attributes unknown.
	cfg.MaxAge = types.StringUnknown()
	m, diags = resolvePolicyPlan(ctx, cfg, &providerData{})
	if diags.HasError() || !m.Summary.IsUnknown() || !m.Document.IsUnknown() {
		t.Errorf("with unknown max_age: summary %v, document %v, %v", m.Summary, m.Document, diags)
	}
}

func TestPolicyModelRoundTrip(t *testing.T) {
	ctx := context.Background()
	bw, err := policy.ParseBuildWindow("22:00", "04:30", "Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	want := policy.Policy{
		Name: "prod",
		RebuildDelays: policy.RebuildDelays{
			Critical: policy.Immediate(), High: policy.Within(6 * 3600e9), Low: policy.Manual(),
		},
		MaxAge:      14 * 24 * 3600e9,
		BuildWindow: &bw,
		Retention:   policy.Retention{KeepRevisions: 2, DeregisterAfter: policy.Manual(), DeleteSnapshots: true},
		Budget:      &policy.Budget{MonthlyUSD: 10, UrgentUSD: 2.5},
		Prices:      map[string]policy.RegionPrices{"default": {SnapshotGiBMonthUSD: 1, VolumeGiBMonthUSD: 2, UnpackerHourUSD: 3}},
	}
	m := policyResourceModel{Name: types.StringValue("prod")}
	if diags := setModelFromPolicy(ctx, want, &m); diags.HasError() {
		t.Fatal(diags)
	}
	got, ok, diags := policyFromModel(ctx, m)
	if diags.HasError() || !ok {
		t.Fatalf("policyFromModel: ok=%v %v", ok, diags)
	}
	if !got.Equal(want) {
		a, _ := got.Document()
		b, _ := want.Document()
		t.Errorf("round trip changed the policy:\n%s\nvs\n%s", a, b)
	}
}

func TestSplitPolicyImportID(t *testing.T) {
	tests := []struct {
		id, prefix, name, err string
	}{
		{id: "prod", prefix: "/autoami/policies/", name: "prod"},
		{id: "/autoami/policies/prod", prefix: "/autoami/policies/", name: "prod"},
		{id: "/team/rules/web.v2", prefix: "/team/rules/", name: "web.v2"},
		{id: "/prod", prefix: "/", name: "prod"},
		{id: "bad name", err: "must be 1 to 128"},
		{id: "/team/rules/", err: "must be 1 to 128"},
		{id: "/aws/x/prod", err: "reserves"},
		{id: "/a//b", err: "must start and end with"},
	}
	for _, tc := range tests {
		prefix, name, err := splitPolicyImportID(tc.id)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("splitPolicyImportID(%q) error = %v, want %q", tc.id, err, tc.err)
			}
			continue
		}
		if err != nil || prefix != tc.prefix || name != tc.name {
			t.Errorf("splitPolicyImportID(%q) = %q, %q, %v; want %q, %q", tc.id, prefix, name, err, tc.prefix, tc.name)
		}
	}
}
