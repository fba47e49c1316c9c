package awsclient

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/autoami/terraform-provider-autoami/internal/testworld"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
)

// motoURL is the test world's endpoint (moto behind the counting proxy).
var (
	motoURL string
	world   *testworld.World
)

func TestMain(m *testing.M) {
	// Static credentials and no instance metadata: nothing may leave loopback.
	os.Setenv("AWS_ACCESS_KEY_ID", "test")
	os.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Setenv("AWS_CONFIG_FILE", os.DevNull)
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	w, err := testworld.Start(context.Background(), moto.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	world, motoURL = w, w.Endpoint
	code := m.Run()
	_ = w.Stop()
	os.Exit(code)
}

func newTestFactory(t *testing.T, s Settings) *Factory {
	t.Helper()
	if s.Region == "" {
		s.Region = "us-east-1"
	}
	f, err := NewFactory(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestForResolvesAccountsAndCaches(t *testing.T) {
	ctx := context.Background()
	f := newTestFactory(t, Settings{EndpointURL: motoURL})
	home, err := f.Home(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if home.AccountID != moto.DefaultAccountID || home.Target.Region != "us-east-1" {
		t.Fatalf("home = %s in %s, want %s in us-east-1", home.AccountID, home.Target.Region, moto.DefaultAccountID)
	}
	again, err := f.For(ctx, Target{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	if again != home {
		t.Fatal("the home target was built twice")
	}
	other, err := f.For(ctx, Target{RoleARN: "arn:aws:iam::222222222222:role/publisher", Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	if other.AccountID != "222222222222" || other.Target.Region != "eu-west-1" {
		t.Fatalf("assumed target = %s in %s", other.AccountID, other.Target.Region)
	}
	if !strings.Contains(other.CallerARN, "assumed-role/publisher/autoami") {
		t.Fatalf("caller ARN %q does not show the assumed role session", other.CallerARN)
	}
}

func TestProviderAssumeRole(t *testing.T) {
	f := newTestFactory(t, Settings{EndpointURL: motoURL, AssumeRole: &AssumeRole{
		RoleARN: "arn:aws:iam::333333333333:role/ci", SessionName: "ci-run", ExternalID: "x"}})
	home, err := f.Home(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if home.AccountID != "333333333333" || !strings.Contains(home.CallerARN, "ci-run") {
		t.Fatalf("home = %s (%s), want the assumed account and session", home.AccountID, home.CallerARN)
	}
}

func TestS3PathStyleWithCustomEndpoint(t *testing.T) {
	ctx := context.Background()
	f := newTestFactory(t, Settings{Endpoints: map[Service]string{S3: motoURL, STS: motoURL}})
	c, err := f.Home(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !c.S3.Options().UsePathStyle {
		t.Fatal("S3 with a custom endpoint must use path-style addressing")
	}
	// A virtual-hosted request to 127.0.0.1 could not work; this proves the
	// bucket name went into the path.
	bucket := "path-style-check"
	if _, err := c.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	out, err := c.S3.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if !hasBucket(out.Buckets, bucket) {
		t.Fatalf("bucket %s not listed", bucket)
	}
}

func TestEnvironmentEndpoints(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1") // would fail if used for STS
	t.Setenv("AWS_ENDPOINT_URL_STS", motoURL)
	t.Setenv("AWS_ENDPOINT_URL_S3", motoURL)
	f := newTestFactory(t, Settings{})
	c, err := f.Home(context.Background())
	if err != nil {
		t.Fatalf("AWS_ENDPOINT_URL_STS was not honoured: %v", err)
	}
	if aws.ToString(c.S3.Options().BaseEndpoint) != motoURL || !c.S3.Options().UsePathStyle {
		t.Fatalf("S3 endpoint %q path-style %v", aws.ToString(c.S3.Options().BaseEndpoint), c.S3.Options().UsePathStyle)
	}
	if aws.ToString(c.EC2.Options().BaseEndpoint) != "http://127.0.0.1:1" {
		t.Fatalf("EC2 endpoint %q, want the AWS_ENDPOINT_URL one", aws.ToString(c.EC2.Options().BaseEndpoint))
	}
}

func TestUnreachableEndpointNamesTheSetting(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	f := newTestFactory(t, Settings{EndpointURL: dead, MaxRetries: 20})
	_, err = f.Home(context.Background())
	if err == nil {
		t.Fatal("no error for an unreachable endpoint")
	}
	for _, want := range []string{"cannot reach the STS endpoint", dead, "endpoint_url"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestBadSettings(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings Settings
		want     string
	}{
		{"region", Settings{Region: "us-east"}, `region: "us-east" is not an AWS region name`},
		{"region case", Settings{Region: "US-EAST-1"}, `region: "US-EAST-1" is not an AWS region name`},
		{"endpoint scheme", Settings{Region: "us-east-1", EndpointURL: "127.0.0.1:5000"}, "endpoint_url:"},
		{"service endpoint", Settings{Region: "us-east-1", Endpoints: map[Service]string{EC2: "ftp://x"}}, "endpoints.ec2:"},
		{"profile", Settings{Region: "us-east-1", Profile: "no-such-profile"}, `profile "no-such-profile"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewFactory(context.Background(), tc.settings)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	f := newTestFactory(t, Settings{EndpointURL: motoURL})
	if _, err := f.For(context.Background(), Target{Region: "moon-1"}); err == nil || !strings.Contains(err.Error(), `"moon-1" is not an AWS region name`) {
		t.Fatalf("bad target region: %v", err)
	}
}

func TestRegionNames(t *testing.T) {
	for _, ok := range []string{"us-east-1", "us-gov-west-1", "cn-northwest-1", "eu-isoe-west-1", "ap-southeast-7"} {
		if err := ValidateRegion(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	if !KnownRegion("eu-central-2") || KnownRegion("eu-centrl-2") {
		t.Error("KnownRegion")
	}
}

func hasBucket(buckets []s3types.Bucket, name string) bool {
	for _, b := range buckets {
		if aws.ToString(b.Name) == name {
			return true
		}
	}
	return false
}

func TestCallerIdentityOncePerTarget(t *testing.T) {
	world.Faults.Reset()
	f := newTestFactory(t, Settings{EndpointURL: motoURL})
	targets := []Target{{}, {Region: "eu-west-1"}, {RoleARN: "arn:aws:iam::222222222222:role/p", Region: "eu-west-1"}}
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		for _, target := range targets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := f.For(context.Background(), target); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	if got := world.Faults.Stat("sts:GetCallerIdentity").Calls; got != len(targets) {
		t.Errorf("GetCallerIdentity called %d times for %d targets", got, len(targets))
	}
	if got := world.Faults.Stat("sts:AssumeRole").Calls; got != 1 {
		t.Errorf("AssumeRole called %d times for one role target", got)
	}
}
