package provider

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/autoami/terraform-provider-autoami/internal/awsclient"
)

// registerDatedImage registers an x86_64 image in the target, dated created,
// public when public is set, and returns its ID.
func registerDatedImage(t *testing.T, target awsclient.Target, name string, created time.Time, public bool) string {
	t.Helper()
	ctx := context.Background()
	c := testAccClients(t, target)
	out, err := c.EC2.RegisterImage(ctx, &ec2.RegisterImageInput{
		Name: aws.String(name), Architecture: ec2types.ArchitectureValuesX8664, VirtualizationType: aws.String("hvm"),
	})
	if err != nil {
		t.Fatalf("register %s in %s: %v", name, c.Target.Region, err)
	}
	id := aws.ToString(out.ImageId)
	if public {
		if _, err := c.EC2.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(id),
			LaunchPermission: &ec2types.LaunchPermissionModifications{Add: []ec2types.LaunchPermission{{Group: ec2types.PermissionGroupAll}}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := testAccWorld.Moto.SetImageCreationDate(ctx, c.Target.Region, id, created); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestAccImageStream_baseImageIDsTrustOnlyOwners: base_image_ids takes each
// region's image from the selector's owners. Another account's public image
// of the same name, newer than ours, is never chosen (regression: the
// per-region lookup went by name alone), and a region where only such an
// image exists fails naming the region, the owner and the name.
func TestAccImageStream_baseImageIDsTrustOnlyOwners(t *testing.T) {
	t.Setenv("AUTOAMI_CACHE_DIR", t.TempDir())
	const name = "team-base-2026.11"
	attacker := func(region string) awsclient.Target {
		return awsclient.Target{RoleARN: "arn:aws:iam::999999999999:role/attacker", Region: region}
	}
	created := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	var ownUS, ownEU, foreignEU string
	config := func(regions string) string {
		return streamProviderConfig + fmt.Sprintf(`
resource "autoami_image_stream" "team" {
  name = "team/base"
  base_image = {
    owners  = ["self"]
    name    = "team-base-*"
    regions = %s
  }
}`, regions)
	}
	const addr = "autoami_image_stream.team"
	resource.Test(t, resource.TestCase{
		PreCheck: func() {
			testAccPreCheck(t)
			createTestBucket(t)
			ownUS = registerDatedImage(t, awsclient.Target{}, name, created, false)
			ownEU = registerDatedImage(t, awsclient.Target{Region: "eu-west-1"}, name, created, false)
			foreignEU = registerDatedImage(t, attacker("eu-west-1"), name, created.Add(24*time.Hour), true)
			registerDatedImage(t, attacker("ap-southeast-2"), name, created.Add(24*time.Hour), true)
			// The foreign image is visible to the stream's account: a
			// lookup by name alone would pick it, being newer.
			out, err := testAccClients(t, awsclient.Target{Region: "eu-west-1"}).EC2.DescribeImages(context.Background(), &ec2.DescribeImagesInput{
				ImageIds: []string{foreignEU},
			})
			if err != nil || len(out.Images) != 1 {
				t.Fatalf("the foreign image is not visible to the stream's account (%v); the test would prove nothing", err)
			}
		},
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config(`["us-east-1", "eu-west-1"]`),
				Check: func(s *terraform.State) error {
					return resource.ComposeTestCheckFunc(
						resource.TestCheckResourceAttr(addr, "base_image_name", name),
						resource.TestCheckResourceAttr(addr, "base_image_ids.us-east-1", ownUS),
						resource.TestCheckResourceAttr(addr, "base_image_ids.eu-west-1", ownEU),
					)(s)
				},
			},
			{
				Config:      config(`["us-east-1", "eu-west-1", "ap-southeast-2"]`),
				ExpectError: errorText(`no image named "team-base-2026.11" owned by self in ap-southeast-2`),
			},
		},
	})
}
