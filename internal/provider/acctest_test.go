package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"

	"github.com/autoami/terraform-provider-autoami/internal/awsclient"
	"github.com/autoami/terraform-provider-autoami/internal/testworld"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
)

// The acceptance tests of this package share one test world (moto with the
// harness's additions, behind the fault proxy; started in TestMain, reset by
// testAccPreCheck) and drive the real terraform CLI with the provider served
// in-process over protocol 6.

// testAccRegion is the home region of the acceptance tests.
const testAccRegion = "us-east-1"

// testAccProviderConfig configures the provider; the endpoint comes from
// AWS_ENDPOINT_URL, which TestMain points at moto.
const testAccProviderConfig = `
provider "autoami" {
  region = "us-east-1"
}
`

var testAccWorld *testworld.World

var testAccProtoV6ProviderFactories = map[string]func() (tfprotov6.ProviderServer, error){
	"autoami": providerserver.NewProtocol6WithError(New("test")()),
}

func TestMain(m *testing.M) {
	os.Exit(runWithMoto(m))
}

func runWithMoto(m *testing.M) int {
	// Only fake credentials and loopback endpoints: no test may reach AWS.
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           "test",
		"AWS_SECRET_ACCESS_KEY":       "test",
		"AWS_REGION":                  testAccRegion,
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"CHECKPOINT_DISABLE":          "1",
	} {
		os.Setenv(k, v)
	}
	// Empty is not unset: botocore inside moto fails on AWS_PROFILE="".
	// Nothing from the caller's environment may redirect a service away from
	// the test world, or make the SDK ignore the endpoint we set.
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_ENDPOINT_URL") || k == "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS" ||
			k == "AWS_SESSION_TOKEN" || k == "AWS_PROFILE" || k == "AWS_DEFAULT_PROFILE" {
			os.Unsetenv(k)
		}
	}
	if os.Getenv("TF_ACC") == "" {
		// Unit tests only; acceptance tests skip themselves (visibly).
		return m.Run()
	}
	logPath := filepath.Join(os.TempDir(), fmt.Sprintf("autoami-provider-moto-%d.log", os.Getpid()))
	world, err := testworld.Start(context.Background(), moto.Options{LogPath: logPath})
	if err != nil {
		fmt.Fprintln(os.Stderr, "acceptance tests:", err)
		return 1
	}
	defer world.Stop()
	testAccWorld = world
	os.Setenv("AWS_ENDPOINT_URL", world.Endpoint)
	return m.Run()
}

// testAccPreCheck gives each acceptance test a fresh AWS.
func testAccPreCheck(t *testing.T) {
	t.Helper()
	if testAccWorld == nil {
		t.Fatal("moto is not running: acceptance tests need TF_ACC=1 (make testacc)")
	}
	if err := testAccWorld.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// testAccClients returns SDK clients on the test AWS, for setting up and
// checking the world around a test.
func testAccClients(t *testing.T, target awsclient.Target) *awsclient.Clients {
	t.Helper()
	f, err := awsclient.NewFactory(context.Background(), awsclient.Settings{Region: testAccRegion, EndpointURL: testAccWorld.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.For(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// errorText matches text in a Terraform diagnostic, which the CLI wraps at
// any space: each run of spaces in text matches any run of white space.
func errorText(text string) *regexp.Regexp {
	words := strings.Fields(text)
	for i, w := range words {
		words[i] = regexp.QuoteMeta(w)
	}
	return regexp.MustCompile(strings.Join(words, `\s+`))
}
