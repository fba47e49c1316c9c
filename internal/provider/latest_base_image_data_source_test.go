package provider

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/autoami/terraform-provider-autoami/internal/awsclient"
)

const al2023Parameter = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"

func TestAccLatestBaseImage_ssmParameter(t *testing.T) {
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: testAccProviderConfig + fmt.Sprintf(`
data "autoami_latest_base_image" "al2023" {
  ssm_parameter = %q
}`, al2023Parameter),
			Check: func(s *terraform.State) error {
				// The data source must say exactly what EC2 says of the image
				// the parameter names.
				c := testAccClients(t, awsclient.Target{})
				ctx := context.Background()
				p, err := c.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(al2023Parameter)})
				if err != nil {
					return err
				}
				out, err := c.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{aws.ToString(p.Parameter.Value)}})
				if err != nil {
					return err
				}
				img := out.Images[0]
				return resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttr("data.autoami_latest_base_image.al2023", "id", aws.ToString(img.ImageId)),
					resource.TestCheckResourceAttr("data.autoami_latest_base_image.al2023", "name", aws.ToString(img.Name)),
					resource.TestCheckResourceAttr("data.autoami_latest_base_image.al2023", "owner_id", aws.ToString(img.OwnerId)),
					resource.TestCheckResourceAttr("data.autoami_latest_base_image.al2023", "description", aws.ToString(img.Description)),
					resource.TestCheckResourceAttr("data.autoami_latest_base_image.al2023", "architecture", "x86_64"),
					resource.TestCheckResourceAttr("data.autoami_latest_base_image.al2023", "boot_mode", string(img.BootMode)),
					resource.TestCheckResourceAttr("data.autoami_latest_base_image.al2023", "root_device_name", aws.ToString(img.RootDeviceName)),
					resource.TestCheckResourceAttr("data.autoami_latest_base_image.al2023", "root_snapshot_id", aws.ToString(img.BlockDeviceMappings[0].Ebs.SnapshotId)),
					resource.TestCheckResourceAttr("data.autoami_latest_base_image.al2023", "region", testAccRegion),
					resource.TestCheckNoResourceAttr("data.autoami_latest_base_image.al2023", "previous_id"),
					resource.TestCheckResourceAttr("data.autoami_latest_base_image.al2023", "security_level", "unknown"),
					resource.TestCheckResourceAttr("data.autoami_latest_base_image.al2023", "update_type", "unknown"),
				)(s)
			},
		}},
	})
}

// registerImage registers an image in moto and optionally tags it.
func registerImage(t *testing.T, c *awsclient.Clients, name string, tags map[string]string) string {
	t.Helper()
	ctx := context.Background()
	out, err := c.EC2.RegisterImage(ctx, &ec2.RegisterImageInput{
		Name: aws.String(name), Description: aws.String("test image " + name),
		Architecture: ec2types.ArchitectureValuesX8664, VirtualizationType: aws.String("hvm"),
	})
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	if len(tags) > 0 {
		var ts []ec2types.Tag
		for k, v := range tags {
			ts = append(ts, ec2types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		if _, err := c.EC2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{aws.ToString(out.ImageId)}, Tags: ts}); err != nil {
			t.Fatal(err)
		}
	}
	return aws.ToString(out.ImageId)
}

func TestAccLatestBaseImage_ownersAndPrevious(t *testing.T) {
	var older, newer, other string
	resource.Test(t, resource.TestCase{
		PreCheck: func() {
			testAccPreCheck(t)
			c := testAccClients(t, awsclient.Target{})
			// Registered within the same second, the names decide; later
			// registrations also have the later names, so either way the
			// order is older < newer.
			older = registerImage(t, c, "team-base-2026.11.01", nil)
			newer = registerImage(t, c, "team-base-2026.11.02", map[string]string{"autoami:security-level": "critical"})
			other = registerImage(t, c, "other-2026.12.01", nil)
		},
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: testAccProviderConfig + `
data "autoami_latest_base_image" "team" {
  owners = ["self"]
  name   = "team-base-*"
}`,
			Check: func(s *terraform.State) error {
				return resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttr("data.autoami_latest_base_image.team", "id", newer),
					resource.TestCheckResourceAttr("data.autoami_latest_base_image.team", "name", "team-base-2026.11.02"),
					resource.TestCheckResourceAttr("data.autoami_latest_base_image.team", "previous_id", older),
					resource.TestCheckResourceAttr("data.autoami_latest_base_image.team", "previous_name", "team-base-2026.11.01"),
					resource.TestCheckResourceAttrSet("data.autoami_latest_base_image.team", "previous_creation_date"),
					resource.TestCheckResourceAttr("data.autoami_latest_base_image.team", "security_level", "critical"),
					resource.TestCheckResourceAttr("data.autoami_latest_base_image.team", "update_type", "security"),
					resource.TestCheckResourceAttr("data.autoami_latest_base_image.team", "owner_id", "123456789012"),
				)(s)
			},
		}, {
			// A filter block narrows the same search to one image: no previous.
			Config: testAccProviderConfig + `
data "autoami_latest_base_image" "team" {
  owners = ["self"]
  filter {
    name   = "name"
    values = ["other-*"]
  }
}`,
			Check: func(s *terraform.State) error {
				return resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttr("data.autoami_latest_base_image.team", "id", other),
					resource.TestCheckNoResourceAttr("data.autoami_latest_base_image.team", "previous_id"),
				)(s)
			},
		}},
	})
}

func TestAccLatestBaseImage_ssmHistoryGivesPrevious(t *testing.T) {
	var first, second string
	resource.Test(t, resource.TestCase{
		PreCheck: func() {
			testAccPreCheck(t)
			c := testAccClients(t, awsclient.Target{})
			first = registerImage(t, c, "golden-1", nil)
			second = registerImage(t, c, "golden-2", nil)
			for _, id := range []string{first, second} {
				if _, err := c.SSM.PutParameter(context.Background(), &ssm.PutParameterInput{
					Name: aws.String("/golden/latest"), Value: aws.String(id), Type: "String", Overwrite: aws.Bool(true),
				}); err != nil {
					t.Fatal(err)
				}
			}
		},
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: testAccProviderConfig + `
data "autoami_latest_base_image" "golden" {
  ssm_parameter = "/golden/latest"
}`,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("data.autoami_latest_base_image.golden", tfjsonpath.New("name"), knownvalue.StringExact("golden-2")),
				statecheck.ExpectKnownValue("data.autoami_latest_base_image.golden", tfjsonpath.New("previous_name"), knownvalue.StringExact("golden-1")),
			},
			Check: func(s *terraform.State) error {
				return resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttr("data.autoami_latest_base_image.golden", "id", second),
					resource.TestCheckResourceAttr("data.autoami_latest_base_image.golden", "previous_id", first),
				)(s)
			},
		}},
	})
}

func writeTestFeed(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "advisories.json")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAccLatestBaseImage_advisories(t *testing.T) {
	feed := `{"advisories": [
  {"image_name": "svc-2026.*", "security_level": "high", "update_type": "security",
   "changelog_url": "https://example.invalid/changes/svc-2026", "cves": ["CVE-2026-1111", "CVE-2026-2222"]}
]}`
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, feed)
	}))
	defer server.Close()
	feedFile := writeTestFeed(t, feed)

	check := func(addr string) resource.TestCheckFunc {
		return resource.ComposeTestCheckFunc(
			resource.TestCheckResourceAttr(addr, "security_level", "high"),
			resource.TestCheckResourceAttr(addr, "update_type", "security"),
			resource.TestCheckResourceAttr(addr, "changelog_url", "https://example.invalid/changes/svc-2026"),
			resource.TestCheckResourceAttr(addr, "cves.#", "2"),
			resource.TestCheckResourceAttr(addr, "cves.1", "CVE-2026-2222"),
		)
	}
	resource.Test(t, resource.TestCase{
		PreCheck: func() {
			testAccPreCheck(t)
			c := testAccClients(t, awsclient.Target{})
			registerImage(t, c, "svc-2026.11", nil)
			registerImage(t, c, "tagged-2026.11", map[string]string{"team:level": "low"})
		},
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: testAccProviderConfig + fmt.Sprintf(`
data "autoami_latest_base_image" "from_url" {
  owners     = ["self"]
  name       = "svc-*"
  advisories = %q
}
data "autoami_latest_base_image" "from_file" {
  owners     = ["self"]
  name       = "svc-*"
  advisories = %q
}
# The tag wins over the feed, and a custom tag key works.
data "autoami_latest_base_image" "tagged" {
  owners             = ["self"]
  name               = "tagged-*"
  security_level_tag = "team:level"
  advisories         = %q
}`, server.URL+"/feed.json", feedFile, writeTestFeed(t, `{"advisories": [{"image_name": "tagged-*", "security_level": "critical"}]}`)),
			Check: resource.ComposeTestCheckFunc(
				check("data.autoami_latest_base_image.from_url"),
				check("data.autoami_latest_base_image.from_file"),
				resource.TestCheckResourceAttr("data.autoami_latest_base_image.tagged", "security_level", "low"),
			),
		}},
	})
}

// TestAccLatestBaseImage_vendorLevelWords: an image tagged with a vendor's
// word for its level (Amazon Linux's "important", Red Hat's "moderate",
// Ubuntu's "negligible") is found and reported at the canonical level
// (regression: the lookup rejected them while the policy accepted them).
func TestAccLatestBaseImage_vendorLevelWords(t *testing.T) {
	resource.Test(t, resource.TestCase{
		PreCheck: func() {
			testAccPreCheck(t)
			c := testAccClients(t, awsclient.Target{})
			registerImage(t, c, "al-2026.11", map[string]string{"autoami:security-level": "important"})
			registerImage(t, c, "rh-2026.11", map[string]string{"autoami:security-level": "Moderate"})
			registerImage(t, c, "ub-2026.11", nil)
		},
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: testAccProviderConfig + fmt.Sprintf(`
data "autoami_latest_base_image" "important" {
  owners = ["self"]
  name   = "al-*"
}
data "autoami_latest_base_image" "moderate" {
  owners = ["self"]
  name   = "rh-*"
}
data "autoami_latest_base_image" "negligible" {
  owners     = ["self"]
  name       = "ub-*"
  advisories = %q
}`, writeTestFeed(t, `{"advisories": [{"image_name": "ub-*", "security_level": "negligible"}]}`)),
			Check: resource.ComposeTestCheckFunc(
				resource.TestCheckResourceAttr("data.autoami_latest_base_image.important", "security_level", "high"),
				resource.TestCheckResourceAttr("data.autoami_latest_base_image.important", "update_type", "security"),
				resource.TestCheckResourceAttr("data.autoami_latest_base_image.moderate", "security_level", "medium"),
				resource.TestCheckResourceAttr("data.autoami_latest_base_image.negligible", "security_level", "low"),
			),
		}},
	})
}

func TestAccLatestBaseImage_errors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadFeed := "http://" + l.Addr().String() + "/feed.json"
	l.Close()
	notJSON := writeTestFeed(t, "<html>not a feed</html>")
	badLevel := writeTestFeed(t, `{"advisories": [{"image_name": "err-*", "security_level": "severe"}]}`)

	steps := []struct {
		config string
		want   string // literal text; Terraform wraps lines anywhere
	}{
		{`owners = ["self"]
  name = "nothing-matches-*"`, `no image matches: searched images owned by self named "nothing-matches-*"`},
		{`ssm_parameter = "/does/not/exist"`, `SSM parameter /does/not/exist does not exist`},
		{`ssm_parameter = "/not/an/ami"`, `SSM parameter /not/an/ami does not hold an AMI ID (it holds "hello")`},
		{`ssm_parameter = "/x"
  owners = ["self"]`, `These attributes cannot be configured together: [ssm_parameter,owners]`},
		{`ssm_parameter = "/x"
  name = "y"`, `Attribute "ssm_parameter" cannot be specified when "name" is specified`},
		{`name = "y"`, `Attribute "owners" must be specified when "name" is specified`},
		{`owners = ["self"]`, `owners needs a name pattern or at least one filter block`},
		{`filter {
    name   = "name"
    values = ["x"]
  }`, `Attribute "owners" must be specified when "filter" is specified`},
		{`owners = ["self"]
  name = "err-*"
  advisories = "` + deadFeed + `"`, `fetch advisory feed ` + deadFeed},
		{`owners = ["self"]
  name = "err-*"
  advisories = "` + notJSON + `"`, `is not a valid feed document`},
		{`owners = ["self"]
  name = "err-*"
  advisories = "` + badLevel + `"`, `advisories[0] (image_name "err-*"): security_level: unknown security level "severe"`},
		{`owners = ["self"]
  name = "badtag-*"`, `has tag autoami:security-level = "severe", which is not a security level (want critical, high (or important)`},
		{`owners = ["self"]
  name = "err-*"
  architecture = "sparc"`, `value must be one of`},
	}
	var testSteps []resource.TestStep
	for _, s := range steps {
		testSteps = append(testSteps, resource.TestStep{
			Config:      testAccProviderConfig + "data \"autoami_latest_base_image\" \"e\" {\n  " + s.config + "\n}\n",
			ExpectError: errorText(s.want),
		})
	}
	resource.Test(t, resource.TestCase{
		PreCheck: func() {
			testAccPreCheck(t)
			c := testAccClients(t, awsclient.Target{})
			registerImage(t, c, "err-1", nil)
			registerImage(t, c, "badtag-1", map[string]string{"autoami:security-level": "severe"})
			if _, err := c.SSM.PutParameter(context.Background(), &ssm.PutParameterInput{
				Name: aws.String("/not/an/ami"), Value: aws.String("hello"), Type: "String",
			}); err != nil {
				t.Fatal(err)
			}
		},
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps:                    testSteps,
	})
}

func TestAccProvider_misconfiguration(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	ds := fmt.Sprintf("data \"autoami_latest_base_image\" \"x\" {\n  ssm_parameter = %q\n}\n", al2023Parameter)
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      `provider "autoami" { region = "us-east" }` + "\n" + ds,
				ExpectError: errorText(`"us-east" is not an AWS region name`),
			},
			{
				Config:      fmt.Sprintf("provider \"autoami\" {\n  region = \"us-east-1\"\n  endpoint_url = %q\n}\n", dead) + ds,
				ExpectError: errorText(`cannot reach the STS endpoint ` + dead + ` for region us-east-1 (set by endpoint_url)`),
			},
			{
				Config:      "provider \"autoami\" {\n  region = \"us-east-1\"\n  assume_role {\n    role_arn = \"arn:aws:iam::12:role/x\"\n  }\n}\n" + ds,
				ExpectError: errorText(`must be an IAM role ARN`),
			},
			{
				// The region given to the data source wins over the home region.
				Config: testAccProviderConfig + fmt.Sprintf("data \"autoami_latest_base_image\" \"x\" {\n  ssm_parameter = %q\n  region = \"eu-west-1\"\n  role_arn = \"arn:aws:iam::222222222222:role/reader\"\n}\n", al2023Parameter),
				Check:  resource.TestCheckResourceAttr("data.autoami_latest_base_image.x", "region", "eu-west-1"),
			},
		},
	})
}

// TestAccLatestBaseImage_roleARN looks up an image that exists only in
// another account: found through role_arn, not found without it.
func TestAccLatestBaseImage_roleARN(t *testing.T) {
	var id string
	const other = "222222222222"
	resource.Test(t, resource.TestCase{
		PreCheck: func() {
			testAccPreCheck(t)
			c := testAccClients(t, awsclient.Target{RoleARN: "arn:aws:iam::" + other + ":role/setup", Region: "eu-west-1"})
			id = registerImage(t, c, "private-base-1", nil)
			if _, err := c.SSM.PutParameter(context.Background(), &ssm.PutParameterInput{
				Name: aws.String("/private/base"), Value: aws.String(id), Type: "String",
			}); err != nil {
				t.Fatal(err)
			}
		},
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: testAccProviderConfig + `
data "autoami_latest_base_image" "x" {
  ssm_parameter = "/private/base"
  region        = "eu-west-1"
}`,
				ExpectError: errorText("SSM parameter /private/base does not exist"),
			},
			{
				Config: testAccProviderConfig + `
data "autoami_latest_base_image" "x" {
  ssm_parameter = "/private/base"
  region        = "eu-west-1"
  role_arn      = "arn:aws:iam::222222222222:role/reader"
}`,
				Check: func(s *terraform.State) error {
					return resource.ComposeTestCheckFunc(
						resource.TestCheckResourceAttr("data.autoami_latest_base_image.x", "id", id),
						resource.TestCheckResourceAttr("data.autoami_latest_base_image.x", "owner_id", other),
					)(s)
				},
			},
		},
	})
}

// TestAccProvider_unknownSettings: a setting known only after apply is an
// error, never silently read as empty (which would run in the wrong account
// or against the wrong endpoint).
func TestAccProvider_unknownSettings(t *testing.T) {
	ds := fmt.Sprintf("data \"autoami_latest_base_image\" \"x\" {\n  ssm_parameter = %q\n}\n", al2023Parameter)
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: `resource "terraform_data" "role" { input = "arn:aws:iam::222222222222:role/x" }
provider "autoami" {
  region = "us-east-1"
  assume_role {
    role_arn = terraform_data.role.output
  }
}
` + ds,
				ExpectError: errorText(`assume_role.role_arn is not known until apply`),
			},
			{
				Config: `resource "terraform_data" "ep" { input = "http://127.0.0.1:1" }
provider "autoami" {
  region = "us-east-1"
  endpoints {
    sts = terraform_data.ep.output
  }
}
` + ds,
				ExpectError: errorText(`endpoints.sts is not known until apply`),
			},
			{
				Config:      "provider \"autoami\" {\n  region = \"us-east-1\"\n  assume_role {\n    session_name = \"x\"\n  }\n}\n" + ds,
				ExpectError: errorText(`assume_role needs role_arn`),
			},
		},
	})
}
