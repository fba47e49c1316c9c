package provider

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// Bad input is refused at plan time, before anything is published, each
// error at its attribute (the CLI shows the attribute's configuration line):
// a layered stream (this version publishes tree and raw-image streams), a
// name template with an unknown placeholder, a kms_key_id ARN of another
// account, and one target twice.
func TestAccPublishedAMI_badInputAtPlan(t *testing.T) {
	w := newPubWorld(t, pubOwnEast)
	t.Setenv("AUTOAMI_CACHE_DIR", t.TempDir())
	tree, overlay := t.TempDir(), t.TempDir()
	writeTree(t, tree, testStreamFiles())
	writeTree(t, overlay, map[string]string{"etc/motd": "hello\n"})
	// The layered stream "web/boot" and a tree stream "web/tree".
	streams := w.config(pubConfig{
		stream:    fmt.Sprintf("base_image = { ssm_parameter = \"/vendor/base/x86_64\" }\n  overlay    = { directory = %q }", overlay),
		published: "-",
		extra: fmt.Sprintf(`
resource "autoami_image_stream" "tree" {
  name            = "web/tree"
  root_filesystem = { directory = %q }
}
`, tree),
	})
	published := func(stream, targets, args string) string {
		return streams + fmt.Sprintf(`
resource "autoami_published_ami" "web" {
  image_stream = autoami_image_stream.%[1]s.id
  revision     = autoami_image_stream.%[1]s.revision
  targets      = [%[2]s]
%[3]s
}
`, stream, targets, args)
	}
	const one = "autoami_unpacker.own_us_east_1.target"
	// atAttribute matches an error with summary that the CLI shows at the
	// configuration line of attr, and then detail.
	atAttribute := func(summary, attr, detail string) *regexp.Regexp {
		return regexp.MustCompile(`(?s)` + errorText(summary).String() + `.*\d+:\s+` + regexp.QuoteMeta(attr) + `\s+=.*` + errorText(detail).String())
	}
	resource.Test(t, resource.TestCase{
		PreCheck: func() {
			w.preCheck()
			registerVendorImage(t, "vendor-2026.11.20", time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
		},
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             w.checkNothingLeft,
		Steps: []resource.TestStep{
			{
				Config: streams,
			},
			{
				Config:      published("web", one, ""),
				PlanOnly:    true,
				ExpectError: atAttribute("Layered streams cannot be published yet", "image_stream", `Stream "web/boot" is a layered stream`),
			},
			{
				Config:      published("tree", one, `  name = "{stream}-{commit}"`),
				PlanOnly:    true,
				ExpectError: atAttribute("", "name", `unknown placeholder {commit}`),
			},
			{
				Config:      published("tree", one, `  kms_key_id = "arn:aws:kms:us-east-1:999999999999:key/1234abcd-12ab-34cd-56ef-1234567890ab"`),
				PlanOnly:    true,
				ExpectError: atAttribute("Invalid kms_key_id", "kms_key_id", "belongs to account 999999999999, but targets[0] is account 123456789012 in us-east-1"),
			},
			{
				Config:      published("tree", one+", "+one, ""),
				PlanOnly:    true,
				ExpectError: atAttribute("Invalid targets", "targets", "targets[1].account_id: account 123456789012 in us-east-1 is also targets[0]"),
			},
		},
	})
}
