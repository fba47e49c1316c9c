package policystore

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/autoami/terraform-provider-autoami/internal/policy"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
)

const region = "eu-west-1"

func newStore(t *testing.T) (*Store, *ssm.Client) {
	t.Helper()
	ctx := context.Background()
	if err := world.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	cfg, err := world.Config(ctx, region, moto.DefaultAccountID)
	if err != nil {
		t.Fatal(err)
	}
	client := ssm.NewFromConfig(cfg)
	return New(client, region), client
}

func mustErr(t *testing.T, err, target error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one containing %q", fragments)
	}
	if target != nil && !errors.Is(err, target) {
		t.Errorf("error %q does not wrap %v", err, target)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not contain %q", err, f)
		}
	}
}

// TestLifecycle: create, read back, refuse a second create, update rules and
// tags, load, delete (twice).
func TestLifecycle(t *testing.T) {
	s, client := newStore(t)
	ctx := context.Background()
	const name = "/autoami/policies/prod"
	p := policy.Policy{Name: "prod", MaxAge: 14 * 24 * time.Hour}
	if err := s.Create(ctx, name, p, map[string]string{"team": "platform", "env": "prod"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	want, err := p.Document()
	if err != nil {
		t.Fatal(err)
	}
	if got.Document != string(want) || !strings.HasSuffix(got.ARN, ":parameter"+name) ||
		!maps.Equal(got.Tags, map[string]string{"team": "platform", "env": "prod"}) {
		t.Fatalf("read back %+v", got)
	}
	desc, err := client.DescribeParameters(ctx, &ssm.DescribeParametersInput{})
	if err != nil || len(desc.Parameters) != 1 || aws.ToString(desc.Parameters[0].Description) != Description(p) {
		t.Fatalf("parameter description: %+v, %v; want %q", desc, err, Description(p))
	}

	mustErr(t, s.Create(ctx, name, p, nil), ErrExists, "policy parameter /autoami/policies/prod in eu-west-1: already exists")

	p.MaxAge = 7 * 24 * time.Hour
	if err := s.Update(ctx, name, p, got.Tags, map[string]string{"team": "web", "cost": "a"}); err != nil {
		t.Fatal(err)
	}
	loaded, err := s.Load(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Equal(p) {
		t.Fatalf("loaded %s, want %s", loaded.Summary(), p.Summary())
	}
	got, err = s.Get(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got.Tags, map[string]string{"team": "web", "cost": "a"}) {
		t.Fatalf("tags after update: %v", got.Tags)
	}

	if err := s.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, name); err != nil {
		t.Fatalf("deleting a deleted policy: %v", err)
	}
	_, err = s.Get(ctx, name)
	mustErr(t, err, ErrNotFound, "no SSM parameter /autoami/policies/prod in eu-west-1")
}

// TestLoadErrors: a missing policy and a parameter that holds no valid policy
// are errors naming the policy.
func TestLoadErrors(t *testing.T) {
	s, client := newStore(t)
	ctx := context.Background()
	_, err := s.Load(ctx, "/autoami/policies/missing")
	mustErr(t, err, ErrNotFound, "policy /autoami/policies/missing does not exist (no SSM parameter /autoami/policies/missing in eu-west-1)")

	if _, err := client.PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String("/autoami/policies/broken"), Value: aws.String(`{"version": 1, "max_age": "soon"}`), Type: "String",
	}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Load(ctx, "/autoami/policies/broken")
	mustErr(t, err, nil, "policy /autoami/policies/broken: policy document max_age")
}

func TestTruncateRunes(t *testing.T) {
	if got := truncateRunes("ab", 5); got != "ab" {
		t.Errorf("short string changed: %q", got)
	}
}

func TestDescriptionFitsSSM(t *testing.T) {
	long := policy.Policy{Name: strings.Repeat("é", 2000)}
	if d := Description(long); len([]rune(d)) != maxDescriptionRunes || !strings.HasSuffix(d, "…") {
		t.Fatalf("description of %d runes, ends %q", len([]rune(d)), d[len(d)-8:])
	}
	if d := Description(policy.Policy{Name: "prod"}); !strings.HasPrefix(d, `autoami rebuild policy "prod": critical within 4h`) {
		t.Fatalf("description %q", d)
	}
}
