package provider

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/autoami/terraform-provider-autoami/internal/awsclient"
	"github.com/autoami/terraform-provider-autoami/internal/contentstore"
	"github.com/autoami/terraform-provider-autoami/internal/testworld"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/faultproxy"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/client"
	"github.com/autoami/terraform-provider-autoami/internal/unpackerbinary"
	"github.com/autoami/terraform-provider-autoami/internal/unpackerinstance"
)

// unpackerSecretKey is the provider's secret access key in
// TestAccUnpacker_twoAccountsTwoRegions (moto checks no signatures): the
// test looks for it in the user-data.
const unpackerSecretKey = "autoamiAccTestSecretKeyMustNeverLeak0123"

func twoUnpackersConfig(binary string) string {
	return unpackerProvider() + fmt.Sprintf(`
resource "autoami_unpacker" "home" {
  allowed_cidrs   = ["127.0.0.0/8"]
  unpacker_binary = %[1]q
  tags            = { team = "images" }
}

resource "autoami_unpacker" "other" {
  region          = %[2]q
  role_arn        = %[3]q
  allowed_cidrs   = ["127.0.0.0/8"]
  unpacker_binary = %[1]q
}
`, binary, unpackerOtherRegion, unpackerOtherRole)
}

// Launch in two accounts and two regions; the pinned fingerprint is the
// daemon's (its console's line and its handshake); the user-data holds no
// private key and no credential; an unpacker stopped out of band is no
// drift, and a publication's EnsureReady starts it; destroy leaves nothing.
func TestAccUnpacker_twoAccountsTwoRegions(t *testing.T) {
	binary := testAccUnpackerSetup(t)
	t.Setenv("AWS_SECRET_ACCESS_KEY", unpackerSecretKey)
	ctx := context.Background()
	cfg := twoUnpackersConfig(binary)
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccUnpackerPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: testAccCheckUnpackersGone(t, awsclient.Target{Region: testAccRegion},
			awsclient.Target{RoleARN: unpackerOtherRole, Region: unpackerOtherRegion}),
		Steps: []resource.TestStep{
			{
				Config: cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("autoami_unpacker.home", tfjsonpath.New("instance_state"), knownvalue.StringExact("running")),
					statecheck.ExpectKnownValue("autoami_unpacker.home", tfjsonpath.New("region"), knownvalue.StringExact(testAccRegion)),
					statecheck.ExpectKnownValue("autoami_unpacker.home", tfjsonpath.New("account_id"), knownvalue.StringExact("123456789012")),
					statecheck.ExpectKnownValue("autoami_unpacker.home", tfjsonpath.New("unpacker_version"), knownvalue.StringExact("acc-1")),
					statecheck.ExpectKnownValue("autoami_unpacker.home", tfjsonpath.New("instance_type"), knownvalue.StringExact("t3.small")),
					statecheck.ExpectKnownValue("autoami_unpacker.home", tfjsonpath.New("idle_poweroff"), knownvalue.StringExact("30m")),
					statecheck.ExpectKnownValue("autoami_unpacker.home", tfjsonpath.New("port"), knownvalue.Int64Exact(6975)),
					statecheck.ExpectKnownValue("autoami_unpacker.other", tfjsonpath.New("account_id"), knownvalue.StringExact(unpackerOtherAccount)),
					statecheck.ExpectKnownValue("autoami_unpacker.other", tfjsonpath.New("target").AtMapKey("account_id"), knownvalue.StringExact(unpackerOtherAccount)),
					statecheck.ExpectKnownValue("autoami_unpacker.other", tfjsonpath.New("target").AtMapKey("region"), knownvalue.StringExact(unpackerOtherRegion)),
					statecheck.ExpectKnownValue("autoami_unpacker.other", tfjsonpath.New("target").AtMapKey("role_arn"), knownvalue.StringExact(unpackerOtherRole)),
					statecheck.ExpectKnownValue("autoami_unpacker.other", tfjsonpath.New("availability_zone"), knownvalue.StringRegexp(regexp.MustCompile(`^eu-west-1[a-z]$`))),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					testAccCheckPinnedAndClean(t, "autoami_unpacker.home", "", testAccRegion),
					testAccCheckPinnedAndClean(t, "autoami_unpacker.other", unpackerOtherRole, unpackerOtherRegion),
				),
			},
			{
				// Stopped out of band (as an idle unpacker stops itself):
				// instance_state says so, and the plan is empty.
				PreConfig: func() {
					s := testAccStateOf(t)
					a, _ := attrs(s, "autoami_unpacker.home")
					c := targetEC2(t, "", testAccRegion)
					if _, err := c.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{a["instance_id"]}}); err != nil {
						t.Fatal(err)
					}
					if err := waitInstanceState(ctx, c, a["instance_id"], ec2types.InstanceStateNameStopped); err != nil {
						t.Fatal(err)
					}
				},
				Config:             cfg,
				ConfigPlanChecks:   resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				ConfigStateChecks:  []statecheck.StateCheck{statecheck.ExpectKnownValue("autoami_unpacker.home", tfjsonpath.New("instance_state"), knownvalue.StringExact("stopped"))},
				Check:              testAccCheckEnsureReadyStarts(t, "autoami_unpacker.home"),
				ExpectNonEmptyPlan: false,
			},
		},
	})
}

// testAccState remembers the last state a Check saw, for PreConfig steps.
var testAccLastState *terraform.State

func testAccStateOf(t *testing.T) *terraform.State {
	t.Helper()
	if testAccLastState == nil {
		t.Fatal("no state seen yet")
	}
	return testAccLastState
}

// testAccCheckPinnedAndClean: the pin equals the fingerprint line on the
// console and the daemon's handshake; the user-data holds no private key,
// no client certificate and no credential.
func testAccCheckPinnedAndClean(t *testing.T, addr, role, region string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		testAccLastState = s
		ctx := context.Background()
		target, err := unpackerTarget(s, addr)
		if err != nil {
			return err
		}
		a, _ := attrs(s, addr)
		if target.ServerCertificateFingerprint == "" || target.ServerCertificateFingerprint != a["server_certificate_fingerprint"] ||
			target.Endpoint != a["endpoint"] || target.InstanceID != a["instance_id"] || a["endpoint"] != a["private_ip"]+":6975" {
			return fmt.Errorf("%s: target %+v does not match the attributes %v", addr, target, a)
		}
		c := targetEC2(t, role, region)
		printed, err := consoleFingerprint(ctx, c, target.InstanceID)
		if err != nil {
			return err
		}
		if printed != target.ServerCertificateFingerprint {
			return fmt.Errorf("%s: pinned %s, the console printed %s", addr, target.ServerCertificateFingerprint, printed)
		}
		id := unpackerIdentity(target)
		cert, err := id.TLSCertificate()
		if err != nil {
			return err
		}
		shown, err := client.PeerFingerprint(ctx, target.Endpoint, cert)
		if err != nil || shown != target.ServerCertificateFingerprint {
			return fmt.Errorf("%s: the daemon's handshake shows %s (%v), pinned %s", addr, shown, err, target.ServerCertificateFingerprint)
		}
		data, err := userData(ctx, c, target.InstanceID)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(string(data), "#cloud-config\n") {
			return fmt.Errorf("%s: user-data is not cloud-config: %.40q", addr, data)
		}
		for what, secret := range map[string]string{
			"a private key": "PRIVATE KEY", "the client key": target.ClientPrivateKeyPEM, "the client certificate": target.ClientCertificatePEM,
			"the provider's secret access key": unpackerSecretKey, "a secret key setting": "aws_secret_access_key", "a session token": "X-Amz-Security-Token",
		} {
			if strings.Contains(string(data), secret) {
				return fmt.Errorf("%s: the user-data holds %s", addr, what)
			}
		}
		return nil
	}
}

// testAccCheckEnsureReadyStarts: what a publication does with the target of
// a stopped unpacker starts it and reaches its daemon.
func testAccCheckEnsureReadyStarts(t *testing.T, addr string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		testAccLastState = s
		ctx := context.Background()
		target, err := unpackerTarget(s, addr)
		if err != nil {
			return err
		}
		c, err := testAccEnsureReady(ctx, target)
		if err != nil {
			return fmt.Errorf("EnsureReady of the stopped %s: %w", addr, err)
		}
		h, err := c.Health(ctx)
		if err != nil || h.Status != "ok" {
			return fmt.Errorf("%s after EnsureReady: health %+v, %v", addr, h, err)
		}
		inst, err := describeInstance(ctx, targetEC2(t, target.RoleARN, target.Region), target.InstanceID)
		if err != nil {
			return err
		}
		if inst.State.Name != ec2types.InstanceStateNameRunning {
			return fmt.Errorf("%s is %s after EnsureReady, want running", addr, inst.State.Name)
		}
		return nil
	}
}

func oneUnpackerConfig(extra string) string {
	return unpackerProvider() + fmt.Sprintf(`
resource "autoami_unpacker" "u" {
  allowed_cidrs = ["127.0.0.0/8"]
%s
}
`, extra)
}

// In place: a new instance type (stop, change, start) with new tags, and a
// new unpacker binary at the same path (as a new provider version brings one: the plan
// sees the digest) upgrade the same instance, and the fingerprint stays.
func TestAccUnpacker_instanceTypeAndUpgrade(t *testing.T) {
	testAccUnpackerSetup(t)
	v1, v2 := testAccUnpackerBinary(t, "acc-1"), testAccUnpackerBinary(t, "acc-2")
	binary := t.TempDir() + "/unpacker"
	install := func(src string) {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(binary, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	install(v1)
	// The provider's default tags go on the instance too, and are no drift.
	typeConfig := func(instanceType, tags string) string {
		return fmt.Sprintf(`
provider "autoami" {
  region        = %q
  content_store = { bucket = %q }
  default_tags  = { owner = "platform" }
}

resource "autoami_unpacker" "u" {
  allowed_cidrs   = ["127.0.0.0/8"]
  unpacker_binary = %q
  instance_type   = %q
  tags            = %s
}
`, testAccRegion, testBucket, binary, instanceType, tags)
	}
	var first map[string]string
	remember := func(s *terraform.State) error {
		testAccLastState = s
		a, err := attrs(s, "autoami_unpacker.u")
		first = a
		return err
	}
	same := func(keys ...string) resource.TestCheckFunc {
		return func(s *terraform.State) error {
			a, err := attrs(s, "autoami_unpacker.u")
			if err != nil {
				return err
			}
			for _, k := range keys {
				if a[k] != first[k] {
					return fmt.Errorf("%s changed from %q to %q", k, first[k], a[k])
				}
			}
			return nil
		}
	}
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccUnpackerPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckUnpackersGone(t, awsclient.Target{Region: testAccRegion}),
		Steps: []resource.TestStep{
			{
				Config: typeConfig("t3.small", `{ team = "images" }`),
				Check:  remember,
			},
			{
				Config: typeConfig("t3.medium", `{ team = "images", stage = "prod" }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("autoami_unpacker.u", plancheck.ResourceActionUpdate)}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("autoami_unpacker.u", tfjsonpath.New("instance_type"), knownvalue.StringExact("t3.medium")),
					statecheck.ExpectKnownValue("autoami_unpacker.u", tfjsonpath.New("instance_state"), knownvalue.StringExact("running")),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					same("instance_id", "server_certificate_fingerprint", "target.client_certificate_pem"),
					testAccCheckInstanceType(t, "autoami_unpacker.u", "t3.medium"),
					testAccCheckInstanceTags(t, "autoami_unpacker.u", map[string]string{"team": "images", "stage": "prod",
						"owner": "platform", unpackerinstance.TagTarget: "123456789012/" + testAccRegion}),
					testAccCheckEnsureReadyStarts(t, "autoami_unpacker.u"),
				),
			},
			{
				PreConfig: func() { install(v2) },
				Config:    typeConfig("t3.medium", `{ team = "images", stage = "prod" }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("autoami_unpacker.u", plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue("autoami_unpacker.u", tfjsonpath.New("unpacker_version")),
					plancheck.ExpectKnownValue("autoami_unpacker.u", tfjsonpath.New("server_certificate_fingerprint"), knownvalue.NotNull()),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("autoami_unpacker.u", tfjsonpath.New("unpacker_version"), knownvalue.StringExact("acc-2")),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					same("instance_id", "server_certificate_fingerprint", "target.client_certificate_pem", "target.client_private_key_pem"),
					testAccCheckEnsureReadyStarts(t, "autoami_unpacker.u"),
				),
			},
		},
	})
}

func testAccCheckInstanceType(t *testing.T, addr, want string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		a, err := attrs(s, addr)
		if err != nil {
			return err
		}
		inst, err := describeInstance(context.Background(), targetEC2(t, "", testAccRegion), a["instance_id"])
		if err != nil {
			return err
		}
		if string(inst.InstanceType) != want {
			return fmt.Errorf("instance %s is a %s, want %s", a["instance_id"], inst.InstanceType, want)
		}
		return nil
	}
}

// The daemon powers its instance off when idle (shutdown behaviour stop):
// the refresh shows it stopped with no diff, and EnsureReady starts it.
func TestAccUnpacker_idlePoweroffThenEnsureReady(t *testing.T) {
	binary := testAccUnpackerSetup(t)
	cfg := oneUnpackerConfig(fmt.Sprintf("  unpacker_binary = %q\n  idle_poweroff = \"2s\"", binary))
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccUnpackerPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckUnpackersGone(t, awsclient.Target{Region: testAccRegion}),
		Steps: []resource.TestStep{
			{
				Config: cfg,
				Check: func(s *terraform.State) error {
					testAccLastState = s
					a, err := attrs(s, "autoami_unpacker.u")
					if err != nil {
						return err
					}
					// The daemon's own power-off, no API call.
					return waitInstanceState(context.Background(), targetEC2(t, "", testAccRegion), a["instance_id"], ec2types.InstanceStateNameStopped)
				},
			},
			{
				Config:            cfg,
				ConfigPlanChecks:  resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				ConfigStateChecks: []statecheck.StateCheck{statecheck.ExpectKnownValue("autoami_unpacker.u", tfjsonpath.New("instance_state"), knownvalue.StringExact("stopped"))},
				Check: resource.ComposeAggregateTestCheckFunc(
					func(s *terraform.State) error {
						a, _ := attrs(s, "autoami_unpacker.u")
						inst, err := describeInstance(context.Background(), targetEC2(t, "", testAccRegion), a["instance_id"])
						if err != nil {
							return err
						}
						if code := aws.ToString(inst.StateReason.Code); code != "Client.InstanceInitiatedShutdown" {
							return fmt.Errorf("stopped with state reason %s, want the instance's own shutdown", code)
						}
						return nil
					},
					testAccCheckEnsureReadyStarts(t, "autoami_unpacker.u"),
				),
			},
		},
	})
}

// An unpacker terminated out of band leaves the state at the refresh, and
// the plan launches a new one.
func TestAccUnpacker_terminatedOutOfBandPlansRecreate(t *testing.T) {
	binary := testAccUnpackerSetup(t)
	cfg := oneUnpackerConfig(fmt.Sprintf("  unpacker_binary = %q", binary))
	var firstID string
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccUnpackerPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckUnpackersGone(t, awsclient.Target{Region: testAccRegion}),
		Steps: []resource.TestStep{
			{
				Config: cfg,
				Check: func(s *terraform.State) error {
					a, err := attrs(s, "autoami_unpacker.u")
					firstID = a["instance_id"]
					return err
				},
			},
			{
				PreConfig: func() {
					ctx := context.Background()
					c := targetEC2(t, "", testAccRegion)
					if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{firstID}}); err != nil {
						t.Fatal(err)
					}
					if err := waitInstanceState(ctx, c, firstID, ec2types.InstanceStateNameTerminated); err != nil {
						t.Fatal(err)
					}
				},
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("autoami_unpacker.u", plancheck.ResourceActionCreate)}},
				Check: func(s *terraform.State) error {
					a, err := attrs(s, "autoami_unpacker.u")
					if err != nil {
						return err
					}
					if a["instance_id"] == firstID || a["instance_state"] != "running" {
						return fmt.Errorf("after the re-create: instance %s (%s), the terminated one was %s", a["instance_id"], a["instance_state"], firstID)
					}
					return nil
				},
			},
		},
	})
}

// An unpacker made outside this configuration (here: in another account,
// through its role) is imported by ROLE_ARN/REGION/INSTANCE_ID. Its client
// CA cannot be read back, so the apply makes a new client identity and
// installs its CA through stop, user-data, start: the daemon keeps its key
// (same fingerprint), answers the new identity and refuses the old one. An
// import of the managed unpacker reads back what the configuration says.
func TestAccUnpacker_import(t *testing.T) {
	binary := testAccUnpackerSetup(t)
	ctx := context.Background()
	// The world is reset and the unpacker launched before the test case:
	// the import block needs its instance ID.
	testAccUnpackerPreCheck(t)
	f, err := awsclient.NewFactory(ctx, awsclient.Settings{Region: testAccRegion, EndpointURL: testAccWorld.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	home, err := f.Home(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := unpackerinstance.New(unpackerinstance.Config{Clients: f, Polling: unpackerTestPolling,
		Store:     contentstore.New(home.S3, contentstore.Location{Bucket: testBucket}, contentstore.Options{}),
		Presigner: s3.NewPresignClient(home.S3)})
	if err != nil {
		t.Fatal(err)
	}
	bin, err := unpackerbinary.FromFile(binary, unpackerbinary.X86_64)
	if err != nil {
		t.Fatal(err)
	}
	oldID, err := unpackerinstance.NewIdentity("made elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := mgr.Create(ctx, unpackerinstance.Spec{Target: awsclient.Target{RoleARN: unpackerOtherRole, Region: unpackerOtherRegion},
		AllowedCIDRs: []string{"127.0.0.0/8"}, IdlePoweroff: 45 * time.Minute, Tags: map[string]string{"team": "images"}, Binary: bin}, oldID)
	if err != nil {
		t.Fatal(err)
	}
	importID := unpackerOtherRole + "/" + unpackerOtherRegion + "/" + foreign.InstanceID
	cfg := unpackerProvider() + fmt.Sprintf(`
import {
  to = autoami_unpacker.imported
  id = %[1]q
}

resource "autoami_unpacker" "imported" {
  region          = %[2]q
  role_arn        = %[3]q
  allowed_cidrs   = ["127.0.0.0/8"]
  idle_poweroff   = "45m"
  unpacker_binary = %[4]q
  tags            = { team = "images" }
}
`, importID, unpackerOtherRegion, unpackerOtherRole, binary)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckUnpackersGone(t, awsclient.Target{RoleARN: unpackerOtherRole, Region: unpackerOtherRegion}),
		Steps: []resource.TestStep{
			{
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("autoami_unpacker.imported", plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue("autoami_unpacker.imported", tfjsonpath.New("target")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("autoami_unpacker.imported", tfjsonpath.New("instance_id"), knownvalue.StringExact(foreign.InstanceID)),
					statecheck.ExpectKnownValue("autoami_unpacker.imported", tfjsonpath.New("server_certificate_fingerprint"), knownvalue.StringExact(foreign.ServerCertificateFingerprint)),
					statecheck.ExpectKnownValue("autoami_unpacker.imported", tfjsonpath.New("account_id"), knownvalue.StringExact(unpackerOtherAccount)),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					testAccCheckEnsureReadyStarts(t, "autoami_unpacker.imported"),
					func(s *terraform.State) error {
						target, err := unpackerTarget(s, "autoami_unpacker.imported")
						if err != nil {
							return err
						}
						if target.ClientCertificatePEM == oldID.ClientCertificatePEM {
							return fmt.Errorf("the imported unpacker kept the identity it was made with")
						}
						// The daemon now trusts only the new client CA.
						cert, err := oldID.TLSCertificate()
						if err != nil {
							return err
						}
						old, err := client.New(client.Config{Address: target.Endpoint, Fingerprint: target.ServerCertificateFingerprint,
							Certificate: cert, RetryMax: 1, Timeout: 10 * time.Second})
						if err != nil {
							return err
						}
						if _, err := old.Health(ctx); err == nil {
							return fmt.Errorf("the daemon still accepts the client certificate of the old CA")
						}
						return nil
					},
				),
			},
			{
				ResourceName:      "autoami_unpacker.imported",
				ImportState:       true,
				ImportStateId:     importID,
				ImportStateVerify: true,
				// The identity is made by the first apply after an import;
				// the daemon's version is learnt when it answers; the rest
				// cannot be read back from the instance.
				ImportStateVerifyIgnore: []string{"target", "unpacker_version", "unpacker_binary", "timeouts", "connect_via", "kms_key_id"},
			},
		},
	})
}

// Bad import IDs are refused with the expected form.
func TestAccUnpacker_importIDErrors(t *testing.T) {
	testAccUnpackerSetup(t)
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccUnpackerPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: unpackerProvider() + `
import {
  to = autoami_unpacker.x
  id = "i-0123456789abcdef0"
}

resource "autoami_unpacker" "x" {
  allowed_cidrs = ["127.0.0.0/8"]
}
`,
			ExpectError: errorText("want REGION/INSTANCE_ID, or ROLE_ARN/REGION/INSTANCE_ID"),
		}},
	})
}

// With 30 % of every AWS call throttled (EC2, STS, S3 of the provider and
// the instances' downloads), two unpackers come out as without throttling,
// and the destroy leaves nothing.
func TestAccUnpacker_throttling(t *testing.T) {
	binary := testAccUnpackerSetup(t)
	cfg := twoUnpackersConfig(binary)
	resource.Test(t, resource.TestCase{
		PreCheck: func() {
			testAccUnpackerPreCheck(t)
			testAccWorld.Faults.SetRules(faultproxy.Rule{Throttle: faultproxy.Share{Fraction: 0.3}})
		},
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(s *terraform.State) error {
			defer testAccWorld.Faults.SetRules()
			if n := testAccWorld.Faults.Stat("ec2:DescribeInstances").Throttled; n == 0 {
				return fmt.Errorf("no DescribeInstances call was throttled")
			}
			return testAccCheckUnpackersGone(t, awsclient.Target{Region: testAccRegion},
				awsclient.Target{RoleARN: unpackerOtherRole, Region: unpackerOtherRegion})(s)
		},
		Steps: []resource.TestStep{{
			Config: cfg,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("autoami_unpacker.home", tfjsonpath.New("instance_state"), knownvalue.StringExact("running")),
				statecheck.ExpectKnownValue("autoami_unpacker.other", tfjsonpath.New("instance_state"), knownvalue.StringExact("running")),
				statecheck.ExpectKnownValue("autoami_unpacker.home", tfjsonpath.New("unpacker_version"), knownvalue.StringExact("acc-1")),
				statecheck.ExpectKnownValue("autoami_unpacker.other", tfjsonpath.New("unpacker_version"), knownvalue.StringExact("acc-1")),
			},
			Check: resource.ComposeAggregateTestCheckFunc(
				testAccCheckPinnedAndClean(t, "autoami_unpacker.home", "", testAccRegion),
				testAccCheckPinnedAndClean(t, "autoami_unpacker.other", unpackerOtherRole, unpackerOtherRegion),
				func(*terraform.State) error {
					for _, action := range []string{"ec2:RunInstances", "ec2:GetConsoleOutput", "s3:GetObject"} {
						if st := testAccWorld.Faults.Stat(action); st.Calls == 0 {
							return fmt.Errorf("no %s call went through the proxy", action)
						}
					}
					return nil
				},
			),
		}},
	})
}

// No capacity in one target (InsufficientInstanceCapacity from
// RunInstances in eu-west-1) fails that unpacker with an error naming the
// type, the zone and what to do; the other target's unpacker is created,
// and the next apply, with capacity back, creates only the missing one.
func TestAccUnpacker_insufficientCapacityInOneTarget(t *testing.T) {
	binary := testAccUnpackerSetup(t)
	cfg := twoUnpackersConfig(binary)
	var homeID string
	resource.Test(t, resource.TestCase{
		PreCheck: func() {
			testAccUnpackerPreCheck(t)
			testAccWorld.Faults.SetRules(faultproxy.Rule{Actions: []string{"ec2:RunInstances"}, Regions: []string{unpackerOtherRegion},
				Error: faultproxy.ErrorReply{Code: "InsufficientInstanceCapacity",
					Message: "We currently do not have sufficient t3.small capacity in the Availability Zone you requested.",
					Share:   faultproxy.Share{Fraction: 1}}})
		},
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: testAccCheckUnpackersGone(t, awsclient.Target{Region: testAccRegion},
			awsclient.Target{RoleARN: unpackerOtherRole, Region: unpackerOtherRegion}),
		Steps: []resource.TestStep{
			{
				Config:      cfg,
				ExpectError: regexp.MustCompile(`(?s)AWS has no capacity for t3\.small in\s+eu-west-1a.*instance_type or\s+subnet_id`),
			},
			{
				// Capacity is back: only the failed target is left to create.
				PreConfig: func() {
					testAccWorld.Faults.SetRules()
					inv, err := testAccWorld.Inventory(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					var running []string
					for _, r := range inv.Leftovers(testworld.TaggedWith(unpackerinstance.TagTarget, "")) {
						if r.Kind == "instance" {
							running = append(running, r.Account+"/"+r.Region+"/"+r.ID)
							homeID = r.ID
						}
					}
					if len(running) != 1 || !strings.HasPrefix(running[0], "123456789012/"+testAccRegion+"/") {
						t.Fatalf("after the failed apply the world has instances %v; want only the home target's", running)
					}
				},
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("autoami_unpacker.home", plancheck.ResourceActionNoop),
					plancheck.ExpectResourceAction("autoami_unpacker.other", plancheck.ResourceActionCreate),
				}},
				Check: func(s *terraform.State) error {
					a, err := attrs(s, "autoami_unpacker.home")
					if err != nil {
						return err
					}
					if a["instance_id"] != homeID {
						return fmt.Errorf("the home unpacker is %s, the one the failed apply made was %s", a["instance_id"], homeID)
					}
					return nil
				},
			},
		},
	})
}

// A provider built without the unpacker (plain `go build`, as these tests
// are) refuses at plan time to launch one without unpacker_binary, saying
// what to do.
func TestAccUnpacker_withoutBinaryAtPlan(t *testing.T) {
	testAccUnpackerSetup(t)
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccUnpackerPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config:      oneUnpackerConfig(""),
			PlanOnly:    true,
			ExpectError: errorText("carries no unpacker binary"),
		}},
	})
}

func testAccCheckInstanceTags(t *testing.T, addr string, want map[string]string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		a, err := attrs(s, addr)
		if err != nil {
			return err
		}
		inst, err := describeInstance(context.Background(), targetEC2(t, "", testAccRegion), a["instance_id"])
		if err != nil {
			return err
		}
		got := map[string]string{}
		for _, tag := range inst.Tags {
			got[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("instance %s has tags %v, want %v", a["instance_id"], got, want)
		}
		return nil
	}
}
