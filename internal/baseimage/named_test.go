package baseimage

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
)

const (
	vendorAccount   = "111111111111"
	attackerAccount = "999999999999"
	baseName        = "vendor-base-2026.11"
)

// account is one account's clients in one region of the test world.
type account struct {
	ec2 *ec2.Client
	ssm *ssm.Client
}

func accountIn(t *testing.T, region, id string) account {
	t.Helper()
	cfg, err := world.Config(context.Background(), region, id)
	if err != nil {
		t.Fatal(err)
	}
	return account{ec2: ec2.NewFromConfig(cfg), ssm: ssm.NewFromConfig(cfg)}
}

func resetWorld(t *testing.T) {
	t.Helper()
	if err := world.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// registerPublic registers a public x86_64 image dated created and returns
// its ID.
func registerPublic(t *testing.T, a account, region, name string, created time.Time) string {
	t.Helper()
	ctx := context.Background()
	out, err := a.ec2.RegisterImage(ctx, &ec2.RegisterImageInput{
		Name: aws.String(name), Architecture: ec2types.ArchitectureValuesX8664, VirtualizationType: aws.String("hvm"),
	})
	if err != nil {
		t.Fatalf("register %s in %s: %v", name, region, err)
	}
	id := aws.ToString(out.ImageId)
	if _, err := a.ec2.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(id),
		LaunchPermission: &ec2types.LaunchPermissionModifications{Add: []ec2types.LaunchPermission{{Group: ec2types.PermissionGroupAll}}}}); err != nil {
		t.Fatal(err)
	}
	if err := world.Moto.SetImageCreationDate(ctx, region, id, created); err != nil {
		t.Fatal(err)
	}
	return id
}

func putParameter(t *testing.T, a account, name string, values ...string) {
	t.Helper()
	for _, v := range values {
		if _, err := a.ssm.PutParameter(context.Background(), &ssm.PutParameterInput{
			Name: aws.String(name), Value: aws.String(v), Type: "String", Overwrite: aws.Bool(true),
		}); err != nil {
			t.Fatal(err)
		}
	}
}

func regionClients(t *testing.T, regions ...string) []RegionClients {
	t.Helper()
	var out []RegionClients
	for _, r := range regions {
		a := accountIn(t, r, moto.DefaultAccountID)
		out = append(out, RegionClients{Region: r, EC2: a.ec2, SSM: a.ssm})
	}
	return out
}

func wantMissing(t *testing.T, err error, region, message string) {
	t.Helper()
	var missing *MissingError
	if !errors.As(err, &missing) || missing.Region != region {
		t.Fatalf("got %v, want a MissingError for %s", err, region)
	}
	if !strings.Contains(err.Error(), message) {
		t.Fatalf("error %q does not say %q", err, message)
	}
}

// TestFindNamedTrustsOnlyTheOwners: in every region the image comes from the
// selector's owners. A public image of the same name from another account,
// newer than the owner's, is never chosen; a region where only that one
// exists is an error naming the region, the owner and the name.
func TestFindNamedTrustsOnlyTheOwners(t *testing.T) {
	resetWorld(t)
	ctx := context.Background()
	created := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	vendorUS := registerPublic(t, accountIn(t, "us-east-1", vendorAccount), "us-east-1", baseName, created)
	vendorEU := registerPublic(t, accountIn(t, "eu-west-1", vendorAccount), "eu-west-1", baseName, created)
	registerPublic(t, accountIn(t, "eu-west-1", attackerAccount), "eu-west-1", baseName, created.Add(24*time.Hour))
	registerPublic(t, accountIn(t, "ap-southeast-2", attackerAccount), "ap-southeast-2", baseName, created.Add(24*time.Hour))

	sel := Selector{Owners: []string{vendorAccount}, Name: "vendor-base-*"}
	got, err := FindNamed(ctx, sel, baseName, regionClients(t, "us-east-1", "eu-west-1"))
	if err != nil {
		t.Fatal(err)
	}
	if got["us-east-1"].ID != vendorUS || got["eu-west-1"].ID != vendorEU || got["eu-west-1"].OwnerID != vendorAccount {
		t.Fatalf("got us-east-1 %s, eu-west-1 %s (owner %s); want the vendor's %s and %s",
			got["us-east-1"].ID, got["eu-west-1"].ID, got["eu-west-1"].OwnerID, vendorUS, vendorEU)
	}

	_, err = FindNamed(ctx, sel, baseName, regionClients(t, "us-east-1", "ap-southeast-2"))
	wantMissing(t, err, "ap-southeast-2", `no image named "vendor-base-2026.11" owned by 111111111111 in ap-southeast-2`)
}

// TestFindNamedBySSMParameter: for an SSM parameter selector the image is
// the one the same parameter names in that region, now or in an earlier
// version (a stream still on an older image), never a search by name.
func TestFindNamedBySSMParameter(t *testing.T) {
	resetWorld(t)
	ctx := context.Background()
	created := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	const param = "/vendor/base/x86_64"
	vendorUS := registerPublic(t, accountIn(t, "us-east-1", vendorAccount), "us-east-1", baseName, created)
	vendorEU := registerPublic(t, accountIn(t, "eu-west-1", vendorAccount), "eu-west-1", baseName, created)
	newerEU := registerPublic(t, accountIn(t, "eu-west-1", vendorAccount), "eu-west-1", "vendor-base-2026.12", created.AddDate(0, 1, 0))
	registerPublic(t, accountIn(t, "eu-west-1", attackerAccount), "eu-west-1", baseName, created.Add(24*time.Hour))
	otherAP := registerPublic(t, accountIn(t, "ap-southeast-2", vendorAccount), "ap-southeast-2", "vendor-base-2026.12", created)
	registerPublic(t, accountIn(t, "ap-southeast-2", attackerAccount), "ap-southeast-2", baseName, created)

	putParameter(t, accountIn(t, "us-east-1", moto.DefaultAccountID), param, vendorUS)
	// In eu-west-1 the parameter has moved on to a newer image since.
	putParameter(t, accountIn(t, "eu-west-1", moto.DefaultAccountID), param, vendorEU, newerEU)
	putParameter(t, accountIn(t, "ap-southeast-2", moto.DefaultAccountID), param, otherAP)

	sel := Selector{SSMParameter: param}
	got, err := FindNamed(ctx, sel, baseName, regionClients(t, "us-east-1", "eu-west-1"))
	if err != nil {
		t.Fatal(err)
	}
	if got["us-east-1"].ID != vendorUS || got["eu-west-1"].ID != vendorEU {
		t.Fatalf("got us-east-1 %s, eu-west-1 %s; want %s and %s (from the parameter's history)",
			got["us-east-1"].ID, got["eu-west-1"].ID, vendorUS, vendorEU)
	}

	_, err = FindNamed(ctx, sel, baseName, regionClients(t, "ap-southeast-2"))
	wantMissing(t, err, "ap-southeast-2", `no image named "vendor-base-2026.11" named by SSM parameter /vendor/base/x86_64 in ap-southeast-2`)

	_, err = FindNamed(ctx, sel, baseName, regionClients(t, "sa-east-1"))
	if err == nil || !strings.Contains(err.Error(), "SSM parameter /vendor/base/x86_64 does not exist in sa-east-1") {
		t.Fatalf("region without the parameter: %v", err)
	}
}
