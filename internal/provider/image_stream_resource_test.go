package provider

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/autoami/terraform-provider-autoami/internal/awsclient"
	"github.com/autoami/terraform-provider-autoami/internal/policy"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
)

const testBucket = "autoami-content"

// streamProviderConfig is the provider block of stream tests: a default
// content store in the home region.
const streamProviderConfig = `
provider "autoami" {
  region = "us-east-1"
  content_store = {
    bucket = "autoami-content"
    prefix = "store/"
  }
}
`

func createTestBucket(t *testing.T) {
	t.Helper()
	c := testAccClients(t, awsclient.Target{})
	if _, err := c.S3.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(testBucket)}); err != nil {
		t.Fatal(err)
	}
}

// writeTree writes files (path → content) under dir with fixed mtimes, so
// that tarballs made from it describe the same tree.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	stamp := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, stamp, stamp); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"etc", "usr/bin", "."} {
		if _, err := os.Stat(filepath.Join(dir, d)); err == nil {
			os.Chtimes(filepath.Join(dir, d), stamp, stamp)
		}
	}
}

func treeRevision(t *testing.T, dir string) string {
	t.Helper()
	m, err := manifest.FromDirectory(context.Background(), dir, manifest.DirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := m.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func testStreamFiles() map[string]string {
	return map[string]string{
		"etc/os-release": "NAME=test\n",
		"etc/hostname":   "builder\n",
		"usr/bin/tool":   string(make([]byte, 70000)),
		"usr/bin/other":  "#!/bin/sh\necho other\n",
	}
}

func TestAccImageStream_directory(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("AUTOAMI_CACHE_DIR", cache)
	dir := t.TempDir()
	writeTree(t, dir, testStreamFiles())
	config := streamProviderConfig + fmt.Sprintf(`
resource "autoami_image_stream" "web" {
  name = "web/debian"
  root_filesystem = {
    directory = %q
  }
  tags = { team = "web" }
}`, dir)
	var firstRevision string
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t); createTestBucket(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			// Delete removes the stream's manifests and record, not objects.
			c := testAccClients(t, awsclient.Target{})
			out, err := c.S3.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(testBucket), Prefix: aws.String("store/streams/")})
			if err != nil {
				return err
			}
			if len(out.Contents) != 0 {
				return fmt.Errorf("%d stream keys left after destroy", len(out.Contents))
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				Config: config,
				Check: func(s *terraform.State) error {
					firstRevision = treeRevision(t, dir)
					return resource.ComposeTestCheckFunc(
						resource.TestCheckResourceAttr("autoami_image_stream.web", "id", "web/debian"),
						resource.TestCheckResourceAttr("autoami_image_stream.web", "revision", firstRevision),
						resource.TestCheckResourceAttr("autoami_image_stream.web", "file_count", "4"),
						resource.TestCheckResourceAttr("autoami_image_stream.web", "size_bytes", fmt.Sprint(10+8+70000+21)),
						resource.TestCheckResourceAttr("autoami_image_stream.web", "objects_uploaded", "4"),
						resource.TestCheckResourceAttr("autoami_image_stream.web", "manifest_uri",
							"s3://autoami-content/store/streams/web/debian/revisions/"+firstRevision+".manifest"),
						resource.TestCheckResourceAttrSet("autoami_image_stream.web", "revision_created_at"),
						resource.TestCheckNoResourceAttr("autoami_image_stream.web", "base_image_name"),
						resource.TestCheckResourceAttr("autoami_image_stream.web", "rebuild_required", "false"),
					)(s)
				},
			},
			{
				// Unchanged source: the plan is empty.
				Config:            config,
				ConfigPlanChecks:  resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				ConfigStateChecks: []statecheck.StateCheck{statecheck.ExpectKnownValue("autoami_image_stream.web", tfjsonpath.New("objects_uploaded"), knownvalue.Int64Exact(4))},
			},
			{
				// One file changes: the plan shows the new revision, and apply
				// uploads only that object.
				PreConfig: func() { writeTree(t, dir, map[string]string{"etc/hostname": "builder-2\n"}) },
				Config:    config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("autoami_image_stream.web", plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue("autoami_image_stream.web", tfjsonpath.New("revision"), knownvalue.StringFunc(func(v string) error {
						if v == firstRevision || v != treeRevision(t, dir) {
							return fmt.Errorf("planned revision %s; first %s, source now %s", v, firstRevision, treeRevision(t, dir))
						}
						return nil
					})),
				}},
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttr("autoami_image_stream.web", "objects_uploaded", "1"),
					resource.TestCheckResourceAttr("autoami_image_stream.web", "bytes_uploaded", "10"),
				),
			},
			{
				ResourceName:                         "autoami_image_stream.web",
				ImportState:                          true,
				ImportStateId:                        "web/debian",
				ImportStateVerify:                    true,
				ImportStateVerifyIdentifierAttribute: "name",
				ImportStateVerifyIgnore:              []string{"root_filesystem", "bytes_uploaded", "objects_uploaded", "timeouts"},
			},
		},
	})
}

// writeTarball archives dir's files as a tarball with the same metadata.
func writeTarball(t *testing.T, dir, out string) {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		hdr, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		hdr.Name = "./" + filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			src, err := os.Open(p)
			if err != nil {
				return err
			}
			defer src.Close()
			_, err = io.Copy(tw, src)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestAccImageStream_tarballAndRawImage(t *testing.T) {
	t.Setenv("AUTOAMI_CACHE_DIR", t.TempDir())
	dir := t.TempDir()
	writeTree(t, dir, testStreamFiles())
	tarball := filepath.Join(t.TempDir(), "rootfs.tar")
	writeTarball(t, dir, tarball)

	raw := filepath.Join(t.TempDir(), "disk.img")
	image := make([]byte, 4*manifest.BlockSize)
	for i := range image {
		image[i] = byte(i / manifest.BlockSize) // four distinct blocks
	}
	if err := os.WriteFile(raw, image, 0o644); err != nil {
		t.Fatal(err)
	}
	config := streamProviderConfig + fmt.Sprintf(`
resource "autoami_image_stream" "tar" {
  name = "web/from-tar"
  root_filesystem = { tarball = %q }
}
resource "autoami_image_stream" "dir" {
  name = "web/from-dir"
  root_filesystem = { directory = %q }
}
resource "autoami_image_stream" "raw" {
  name      = "unikernel/hello"
  raw_image = { path = %q }
}`, tarball, dir, raw)
	var rawRevision string
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t); createTestBucket(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config,
				Check: resource.ComposeTestCheckFunc(
					// A tarball of a tree is the same revision as the tree.
					resource.TestCheckResourceAttrPair("autoami_image_stream.tar", "revision", "autoami_image_stream.dir", "revision"),
					resource.TestCheckResourceAttr("autoami_image_stream.raw", "size_bytes", fmt.Sprint(len(image))),
					resource.TestCheckResourceAttr("autoami_image_stream.raw", "objects_uploaded", "4"),
					resource.TestCheckResourceAttr("autoami_image_stream.raw", "file_count", "0"),
					func(s *terraform.State) error {
						rawRevision = s.RootModule().Resources["autoami_image_stream.raw"].Primary.Attributes["revision"]
						return nil
					},
				),
			},
			{
				// One block changes: a new revision, one block uploaded.
				PreConfig: func() {
					image[2*manifest.BlockSize+7] ^= 0xff
					if err := os.WriteFile(raw, image, 0o644); err != nil {
						t.Fatal(err)
					}
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("autoami_image_stream.raw", plancheck.ResourceActionUpdate),
					plancheck.ExpectResourceAction("autoami_image_stream.tar", plancheck.ResourceActionNoop),
				}},
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttr("autoami_image_stream.raw", "objects_uploaded", "1"),
					resource.TestCheckResourceAttr("autoami_image_stream.raw", "bytes_uploaded", fmt.Sprint(manifest.BlockSize)),
					func(s *terraform.State) error {
						if got := s.RootModule().Resources["autoami_image_stream.raw"].Primary.Attributes["revision"]; got == rawRevision {
							return fmt.Errorf("revision did not change")
						}
						return nil
					},
				),
			},
		},
	})
}

func TestAccImageStream_badInput(t *testing.T) {
	t.Setenv("AUTOAMI_CACHE_DIR", t.TempDir())
	dir := t.TempDir()
	writeTree(t, dir, testStreamFiles())
	evil := filepath.Join(t.TempDir(), "evil.tar")
	func() {
		f, _ := os.Create(evil)
		defer f.Close()
		tw := tar.NewWriter(f)
		tw.WriteHeader(&tar.Header{Name: "../escape", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
		tw.Write([]byte("x"))
		tw.Close()
	}()
	steps := []struct{ config, want string }{
		{`root_filesystem = { directory = "/no/such/rootfs" }`, `root_filesystem.directory /no/such/rootfs: cannot read the directory`},
		{`root_filesystem = { tarball = "` + evil + `" }`, `root_filesystem.tarball ` + evil},
		{`root_filesystem = { directory = "` + dir + `" }
  raw_image = { path = "/x" }`, `Exactly one of these attributes must be configured: [root_filesystem,base_image,raw_image]`},
		{`root_filesystem = {
    directory = "` + dir + `"
    tarball = "/x.tar"
  }`, `root_filesystem needs exactly one of directory or tarball (2 given)`},
		{`root_filesystem = { directory = "` + dir + `" }
  content_store = { bucket = "no-such-bucket" }`, `bucket "no-such-bucket" does not exist`},
		{`base_image = {
    owners = ["self"]
    name = "nothing-*"
  }`, `no image matches: searched images owned by self named "nothing-*"`},
		{`root_filesystem = { directory = "` + dir + `" }
  rebuild_trigger = "x"`, `Attribute "base_image" must be specified when "rebuild_trigger" is specified`},
	}
	var testSteps []resource.TestStep
	for _, s := range steps {
		testSteps = append(testSteps, resource.TestStep{
			Config:      streamProviderConfig + "resource \"autoami_image_stream\" \"bad\" {\n  name = \"bad/input\"\n  " + s.config + "\n}\n",
			ExpectError: errorText(s.want),
		})
	}
	// Null list elements are refused at plan, naming the attribute
	// (regression: the region list's conversion error was dropped at apply).
	for _, nulls := range []string{`ssm_parameter = "/x"
    regions = ["us-east-1", null]`, `owners = ["self", null]
    name = "x-*"`} {
		testSteps = append(testSteps, resource.TestStep{
			Config:      streamProviderConfig + "resource \"autoami_image_stream\" \"bad\" {\n  name = \"bad/input\"\n  base_image = {\n    " + nulls + "\n  }\n}\n",
			ExpectError: regexp.MustCompile(`(?s)Null List Value.*This attribute contains a null value`),
		})
	}
	testSteps = append(testSteps, resource.TestStep{
		Config:      streamProviderConfig + "resource \"autoami_image_stream\" \"bad\" {\n  name = \"Bad Name\"\n  root_filesystem = { directory = \"" + dir + "\" }\n}\n",
		ExpectError: regexp.MustCompile(`Invalid stream name`),
	})
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t); createTestBucket(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps:                    testSteps,
	})
}

// layeredWorld registers the vendor image the stream starts on and points
// the SSM parameter at it.
func registerVendorImage(t *testing.T, name string, created time.Time) string {
	t.Helper()
	c := testAccClients(t, awsclient.Target{})
	ctx := context.Background()
	out, err := c.EC2.RegisterImage(ctx, &ec2.RegisterImageInput{
		Name: aws.String(name), Architecture: ec2types.ArchitectureValuesX8664, VirtualizationType: aws.String("hvm"),
	})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.ImageId)
	if err := testAccWorld.Moto.SetImageCreationDate(ctx, testAccRegion, id, created); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SSM.PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String("/vendor/base/x86_64"), Value: aws.String(id), Type: "String", Overwrite: aws.Bool(true),
	}); err != nil {
		t.Fatal(err)
	}
	return id
}

func putPolicy(t *testing.T, name string, p policy.Policy) string {
	t.Helper()
	doc, err := p.Document()
	if err != nil {
		t.Fatal(err)
	}
	id := "/autoami/policies/" + name
	c := testAccClients(t, awsclient.Target{})
	if _, err := c.SSM.PutParameter(context.Background(), &ssm.PutParameterInput{
		Name: aws.String(id), Value: aws.String(string(doc)), Type: "String", Overwrite: aws.Bool(true),
	}); err != nil {
		t.Fatal(err)
	}
	return id
}

func setClock(t *testing.T, at time.Time) {
	t.Helper()
	saved := now
	now = func() time.Time { return at }
	t.Cleanup(func() { now = saved })
}

// TestAccImageStream_baseImageUpdates walks a layered stream through the
// four outcomes of a newer base image: immediate, inside the build window,
// deferred to the build window, and waiting for manual approval (then approved
// through rebuild_trigger).
func TestAccImageStream_baseImageUpdates(t *testing.T) {
	window, err := policy.ParseBuildWindow("02:00", "06:00", "UTC")
	if err != nil {
		t.Fatal(err)
	}
	createdB := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		policy policy.Policy
		level  string
		// feedLevel is the advisory's word for the level; "" means level.
		feedLevel string
		clock     time.Time
		rebuild   bool
		reason    string // regexp on rebuild_reason
		approval  bool
	}{
		{"immediate", policy.Policy{RebuildDelays: policy.RebuildDelays{High: policy.Immediate()}, BuildWindow: &window},
			"high", "", createdB.Add(time.Hour), true, `rebuild now because the high rebuild delay is immediate`, false},
		{"in window", policy.Policy{BuildWindow: &window},
			"high", "", time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC), true, `rebuild now inside the build window \(open until 2026-11-21 06:00 UTC\)`, false},
		{"deferred", policy.Policy{BuildWindow: &window},
			"high", "important", createdB.Add(time.Hour), false, `rebuild deferred until the build window opens at 2026-11-21 02:00 UTC`, false},
		{"manual", policy.Policy{BuildWindow: &window},
			"low", "", createdB.Add(time.Hour), false, `awaiting manual approval because the low rebuild delay is manual; to approve, change rebuild_trigger`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AUTOAMI_CACHE_DIR", t.TempDir())
			overlay := t.TempDir()
			writeTree(t, overlay, map[string]string{"etc/motd": "hello\n"})
			feedLevel := tc.feedLevel
			if feedLevel == "" {
				feedLevel = tc.level
			}
			feed := writeTestFeed(t, fmt.Sprintf(`{"advisories": [{"image_name": "vendor-2026.11.20", "security_level": %q}]}`, feedLevel))
			policyName := "p-" + regexp.MustCompile(`\W`).ReplaceAllString(tc.name, "-")
			config := func(trigger string) string {
				return streamProviderConfig + fmt.Sprintf(`
resource "autoami_image_stream" "app" {
  name = "app/vendor"
  base_image = {
    ssm_parameter = "/vendor/base/x86_64"
    advisories    = %q
  }
  overlay         = { directory = %q }
  policy_id       = "/autoami/policies/%s"
  rebuild_trigger = %q
}`, feed, overlay, policyName, trigger)
			}
			const addr = "autoami_image_stream.app"
			var imageA, imageB string
			steps := []resource.TestStep{
				{
					Config: config("one"),
					Check: func(s *terraform.State) error {
						return resource.ComposeTestCheckFunc(
							resource.TestCheckResourceAttr(addr, "base_image_name", "vendor-2026.11.01"),
							resource.TestCheckResourceAttr(addr, "base_image_ids.us-east-1", imageA),
							resource.TestCheckResourceAttr(addr, "rebuild_required", "false"),
						)(s)
					},
				},
				{
					// A newer base image appears; refresh asks the policy.
					PreConfig:          func() { imageB = registerVendorImage(t, "vendor-2026.11.20", createdB) },
					RefreshState:       true,
					ExpectNonEmptyPlan: tc.rebuild,
					Check: func(s *terraform.State) error {
						return resource.ComposeTestCheckFunc(
							resource.TestCheckResourceAttr(addr, "latest_base_image.name", "vendor-2026.11.20"),
							resource.TestCheckResourceAttr(addr, "latest_base_image.id", imageB),
							resource.TestCheckResourceAttr(addr, "latest_base_image.security_level", tc.level),
							resource.TestCheckResourceAttr(addr, "latest_base_image.creation_date", createdB.Format(time.RFC3339)),
							resource.TestCheckResourceAttr(addr, "rebuild_required", fmt.Sprint(tc.rebuild)),
							resource.TestMatchResourceAttr(addr, "rebuild_reason", regexp.MustCompile(
								`^Base image `+imageB+` \(vendor-2026.11.20\) replaces `+imageA+` \(vendor-2026.11.01\).*`+tc.reason)),
						)(s)
					},
				},
			}
			if tc.rebuild {
				steps = append(steps, resource.TestStep{
					Config: config("one"),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue(addr, tfjsonpath.New("base_image_name"), knownvalue.StringExact("vendor-2026.11.20")),
					}},
					Check: func(s *terraform.State) error {
						return resource.ComposeTestCheckFunc(
							resource.TestCheckResourceAttr(addr, "base_image_ids.us-east-1", imageB),
							resource.TestCheckResourceAttr(addr, "rebuild_required", "false"),
							resource.TestCheckNoResourceAttr(addr, "rebuild_reason"),
						)(s)
					},
				})
			} else {
				steps = append(steps, resource.TestStep{
					Config:           config("one"),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
					Check:            resource.TestCheckResourceAttr(addr, "base_image_name", "vendor-2026.11.01"),
				})
			}
			if tc.name == "deferred" {
				// The build window opens: the next scheduled plan rebuilds.
				steps = append(steps, resource.TestStep{
					PreConfig: func() { setClock(t, time.Date(2026, 11, 21, 2, 30, 0, 0, time.UTC)) },
					Config:    config("one"),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue(addr, tfjsonpath.New("base_image_name"), knownvalue.StringExact("vendor-2026.11.20")),
					}},
				})
			}
			if tc.name == "manual" {
				// Reporting options of the selector change; the waiting
				// update must not slip in with them.
				steps = append(steps, resource.TestStep{
					Config: strings.Replace(config("one"), `advisories    =`, `regions       = ["us-east-1"]
    advisories    =`, 1),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectKnownValue(addr, tfjsonpath.New("base_image_name"), knownvalue.StringExact("vendor-2026.11.01")),
					}},
					Check: resource.TestCheckResourceAttr(addr, "base_image_name", "vendor-2026.11.01"),
				})
			}
			if tc.approval {
				steps = append(steps, resource.TestStep{
					Config: config("two"),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue(addr, tfjsonpath.New("base_image_name"), knownvalue.StringExact("vendor-2026.11.20")),
					}},
					Check: func(s *terraform.State) error {
						return resource.TestCheckResourceAttr(addr, "base_image_ids.us-east-1", imageB)(s)
					},
				})
			}
			resource.Test(t, resource.TestCase{
				PreCheck: func() {
					testAccPreCheck(t)
					createTestBucket(t)
					imageA = registerVendorImage(t, "vendor-2026.11.01", time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC))
					putPolicy(t, policyName, tc.policy)
					setClock(t, tc.clock)
				},
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				Steps:                    steps,
			})
		})
	}
}

// TestAccImageStream_defaultTagsAndUnknowns: provider default tags do not
// make a perpetual diff; a bucket and a trigger known only at apply plan an
// unknown revision instead of a wrong one; a missing policy fails the apply
// (not the plan: policies are often created in the same apply).
func TestAccImageStream_defaultTagsAndUnknowns(t *testing.T) {
	t.Setenv("AUTOAMI_CACHE_DIR", t.TempDir())
	dir := t.TempDir()
	writeTree(t, dir, testStreamFiles())
	withDefaults := `
provider "autoami" {
  region       = "us-east-1"
  default_tags = { env = "test", team = "platform" }
  content_store = {
    bucket = "autoami-content"
  }
}
`
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t); createTestBucket(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				// The framework's plan after apply must be empty.
				Config: withDefaults + fmt.Sprintf(`
resource "autoami_image_stream" "s" {
  name            = "tagged/stream"
  root_filesystem = { directory = %q }
}`, dir),
				Check: resource.TestCheckNoResourceAttr("autoami_image_stream.s", "tags.%"),
			},
			{
				ResourceName:                         "autoami_image_stream.s",
				ImportState:                          true,
				ImportStateId:                        "autoami-content:tagged/stream",
				ImportStateVerify:                    true,
				ImportStateVerifyIdentifierAttribute: "name",
				// content_store is given by the import ID; the stream had none of its own.
				ImportStateVerifyIgnore: []string{"root_filesystem", "bytes_uploaded", "objects_uploaded", "timeouts", "content_store"},
			},
			{
				Config: withDefaults + fmt.Sprintf(`
resource "terraform_data" "later" { input = "approved-1" }
resource "autoami_image_stream" "s" {
  name            = "tagged/stream"
  root_filesystem = { directory = %q }
  content_store   = { bucket = "autoami-content", prefix = terraform_data.later.output }
}`, dir),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectUnknownValue("autoami_image_stream.s", tfjsonpath.New("revision")),
				}},
				Check: resource.TestCheckResourceAttr("autoami_image_stream.s", "manifest_uri",
					"s3://autoami-content/approved-1/streams/tagged/stream/revisions/"+treeRevision(t, dir)+".manifest"),
			},
			{
				Config: withDefaults + fmt.Sprintf(`
resource "autoami_image_stream" "s" {
  name            = "tagged/stream"
  root_filesystem = { directory = %q }
  policy_id       = "/autoami/policies/does-not-exist"
}`, dir),
				ExpectError: errorText("policy /autoami/policies/does-not-exist does not exist"),
			},
		},
	})
}

// TestAccImageStream_policyCreatedTogether: a stream may name a policy that
// the same apply creates (regression: the plan must not require it yet).
func TestAccImageStream_policyCreatedTogether(t *testing.T) {
	t.Setenv("AUTOAMI_CACHE_DIR", t.TempDir())
	dir := t.TempDir()
	writeTree(t, dir, testStreamFiles())
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t); createTestBucket(t) },
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: streamProviderConfig + fmt.Sprintf(`
resource "autoami_policy" "p" {
  name = "together"
}
resource "autoami_image_stream" "s" {
  name            = "with/policy"
  root_filesystem = { directory = %q }
  policy_id       = autoami_policy.p.id
}`, dir),
			Check: resource.TestCheckResourceAttr("autoami_image_stream.s", "policy_id", "/autoami/policies/together"),
		}},
	})
}
