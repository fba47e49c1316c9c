package faultproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
)

const region = "us-east-1"

var (
	server *moto.Server
	proxy  *Proxy
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "autoami-faultproxy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	server, err = moto.Start(context.Background(), moto.Options{LogPath: filepath.Join(dir, "moto.log")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer server.Stop()
	proxy, err = Start(server.URL)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer proxy.Close()
	return m.Run()
}

// fresh resets moto and the proxy, and returns an SDK config through the
// proxy whose retryer waits at most 20 ms between attempts.
func fresh(t *testing.T, maxAttempts int) (context.Context, aws.Config) {
	t.Helper()
	ctx := context.Background()
	if err := server.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	proxy.Reset()
	proxy.ForgetAccessKeys()
	cfg := moto.AWSConfig(proxy.URL, region)
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = maxAttempts
			o.MaxBackoff = 20 * time.Millisecond
		})
	}
	return ctx, cfg
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// The acceptance test: a throttled call succeeds through the SDK's
// retryer, and the proxy counts every attempt.
func TestThrottledCallSucceedsThroughRetryer(t *testing.T) {
	ctx, cfg := fresh(t, 3)
	proxy.SetRules(Rule{Actions: []string{"ec2:DescribeImages"}, Throttle: Share{First: 2}})
	c := ec2.NewFromConfig(cfg)
	out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}})
	if err != nil {
		t.Fatalf("describe images through two throttles: %v", err)
	}
	attempts, ok := retry.GetAttemptResults(out.ResultMetadata)
	if !ok || len(attempts.Results) != 3 {
		t.Fatalf("SDK attempts: %+v, want 3", attempts.Results)
	}
	if st := proxy.Stat("ec2:DescribeImages"); st.Calls != 3 || st.Throttled != 2 || st.ResponseBytes == 0 {
		t.Fatalf("proxy counted %+v, want 3 calls, 2 throttled, a response", st)
	}
	// Calls to other actions are counted but not throttled.
	if _, err := c.DescribeRegions(ctx, &ec2.DescribeRegionsInput{}); err != nil {
		t.Fatal(err)
	}
	if st := proxy.Stat("ec2:DescribeRegions"); st.Calls != 1 || st.Throttled != 0 {
		t.Fatalf("DescribeRegions: %+v", st)
	}
}

// Each protocol's throttling error is the one AWS sends, and the SDK
// classifies it as throttling.
func TestThrottleErrorsInEachProtocol(t *testing.T) {
	ctx, cfg := fresh(t, 1)
	proxy.SetRules(Rule{Throttle: Share{Fraction: 1}})
	cases := []struct {
		action, code string
		call         func() error
	}{
		{"ec2:DescribeRegions", "RequestLimitExceeded", func() error {
			_, err := ec2.NewFromConfig(cfg).DescribeRegions(ctx, &ec2.DescribeRegionsInput{})
			return err
		}},
		{"sts:GetCallerIdentity", "Throttling", func() error {
			_, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			return err
		}},
		{"ssm:GetParameter", "ThrottlingException", func() error {
			_, err := ssm.NewFromConfig(cfg).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/x")})
			return err
		}},
		{"kms:ListKeys", "ThrottlingException", func() error {
			_, err := kms.NewFromConfig(cfg).ListKeys(ctx, &kms.ListKeysInput{})
			return err
		}},
		{"s3:ListBuckets", "SlowDown", func() error {
			_, err := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }).ListBuckets(ctx, &s3.ListBucketsInput{})
			return err
		}},
		{"s3:PutObject", "SlowDown", func() error {
			_, err := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }).PutObject(ctx,
				&s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: bytes.NewReader([]byte("x"))})
			return err
		}},
		{"ebs:ListSnapshotBlocks", "RequestThrottledException", func() error {
			_, err := ebs.NewFromConfig(cfg).ListSnapshotBlocks(ctx, &ebs.ListSnapshotBlocksInput{SnapshotId: aws.String("snap-0123456789abcdef0")})
			return err
		}},
	}
	throttles := retry.IsErrorThrottles(retry.DefaultThrottles)
	for _, tc := range cases {
		t.Run(tc.action, func(t *testing.T) {
			err := tc.call()
			if got := apiCode(err); got != tc.code {
				t.Fatalf("error %v, want code %s", err, tc.code)
			}
			if throttles.IsErrorThrottle(err) != aws.TrueTernary {
				t.Fatalf("the SDK does not see %s as throttling: %v", tc.code, err)
			}
			if st := proxy.Stat(tc.action); st.Calls != 1 || st.Throttled != 1 {
				t.Fatalf("%s counted %+v", tc.action, st)
			}
		})
	}
}

// Fractions hit evenly spread, predictable calls.
func TestThrottleFractionIsDeterministic(t *testing.T) {
	ctx, cfg := fresh(t, 1)
	proxy.SetRules(Rule{Actions: []string{"ssm:*"}, Throttle: Share{Fraction: 0.25}})
	c := ssm.NewFromConfig(cfg)
	var pattern []bool
	for i := 0; i < 8; i++ {
		_, err := c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(fmt.Sprintf("/p/%d", i)), Value: aws.String("v"), Type: "String"})
		pattern = append(pattern, apiCode(err) == "ThrottlingException")
		if err != nil && apiCode(err) != "ThrottlingException" {
			t.Fatal(err)
		}
	}
	want := []bool{false, false, false, true, false, false, false, true}
	if fmt.Sprint(pattern) != fmt.Sprint(want) {
		t.Fatalf("throttled calls %v, want %v", pattern, want)
	}
	if st := proxy.Stat("ssm:PutParameter"); st.Calls != 8 || st.Throttled != 2 {
		t.Fatalf("counted %+v", st)
	}
}

// A dropped request never reached the server: the SDK retries and succeeds.
// A dropped response did reach it: the retry meets the first attempt's effect,
// which is what idempotency has to handle.
func TestDroppedConnections(t *testing.T) {
	ctx, cfg := fresh(t, 3)
	c := ssm.NewFromConfig(cfg)
	put := func(name string) error {
		_, err := c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String("v"), Type: "String"})
		return err
	}

	proxy.SetRules(Rule{Actions: []string{"ssm:PutParameter"}, DropRequest: Share{First: 1}})
	if err := put("/dropped/request"); err != nil {
		t.Fatalf("put after a dropped request: %v", err)
	}
	if st := proxy.Stat("ssm:PutParameter"); st.Calls != 2 || st.DroppedRequests != 1 {
		t.Fatalf("dropped request counted %+v", st)
	}

	proxy.Reset()
	proxy.SetRules(Rule{Actions: []string{"ssm:PutParameter"}, DropResponse: Share{First: 1}})
	err := put("/dropped/response")
	if apiCode(err) != "ParameterAlreadyExists" {
		t.Fatalf("retry after a dropped response: %v, want ParameterAlreadyExists (the first attempt took effect)", err)
	}
	if st := proxy.Stat("ssm:PutParameter"); st.Calls != 2 || st.DroppedResponses != 1 {
		t.Fatalf("dropped response counted %+v", st)
	}
}

// Latency is added per matching call, and request bytes are counted per
// action (uploads are measured this way).
func TestLatencyAndRequestBytes(t *testing.T) {
	ctx, cfg := fresh(t, 3)
	const latency = 150 * time.Millisecond
	proxy.SetRules(Rule{Actions: []string{"s3:PutObject"}, Latency: latency})
	c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("store")}); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("autoami "), 128*1024) // 1 MiB
	began := time.Now()
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("store"), Key: aws.String("objects/a"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	// A lower bound only: sleeping guarantees it, however slow the machine.
	if took := time.Since(began); took < latency {
		t.Errorf("PutObject took %s, less than the injected %s", took, latency)
	}
	st := proxy.Stat("s3:PutObject")
	if st.Calls != 1 || st.RequestBytes < int64(len(body)) || st.RequestBytes > int64(len(body))+4096 {
		t.Fatalf("PutObject counted %+v, want 1 call of about %d bytes", st, len(body))
	}
	if got := proxy.Stat("s3:CreateBucket"); got.Calls != 1 {
		t.Fatalf("CreateBucket counted %+v", got)
	}
}

func TestResetForgetsRulesAndCounts(t *testing.T) {
	ctx, cfg := fresh(t, 1)
	proxy.SetRules(Rule{Throttle: Share{Fraction: 1}})
	c := ec2.NewFromConfig(cfg)
	if _, err := c.DescribeRegions(ctx, &ec2.DescribeRegionsInput{}); apiCode(err) != "RequestLimitExceeded" {
		t.Fatalf("want throttled, got %v", err)
	}
	proxy.Reset()
	if len(proxy.Stats()) != 0 {
		t.Fatalf("counts after Reset: %v", proxy.Stats())
	}
	out, err := c.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{Filters: []ec2types.Filter{{Name: aws.String("region-name"), Values: []string{region}}}})
	if err != nil || len(out.AvailabilityZones) == 0 {
		t.Fatalf("after Reset: %v", err)
	}
}
