package faultproxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
)

// httpStatus is the HTTP status of an SDK error's response, 0 if none.
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func s3Client(cfg aws.Config) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
}

// A chosen error is answered in the called service's protocol, with the
// status AWS uses for it, and the SDK parses its code and message.
func TestChosenErrorsInEachProtocol(t *testing.T) {
	ctx, cfg := fresh(t, 1)
	ec2c, s3c := ec2.NewFromConfig(cfg), s3Client(cfg)
	cases := []struct {
		action, code string
		status       int
		call         func() error
	}{
		// EC2 query XML.
		{"ec2:DescribeImages", "UnauthorizedOperation", 403, func() error {
			_, err := ec2c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}})
			return err
		}},
		{"ec2:RunInstances", "InsufficientInstanceCapacity", 500, func() error {
			_, err := ec2c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-12c6146b"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), InstanceType: ec2types.InstanceTypeT3Micro})
			return err
		}},
		{"ec2:RegisterImage", "IncorrectState", 400, func() error {
			_, err := ec2c.RegisterImage(ctx, &ec2.RegisterImageInput{Name: aws.String("web-1")})
			return err
		}},
		{"ec2:CreateSnapshot", "SnapshotCreationPerVolumeRateExceeded", 400, func() error {
			_, err := ec2c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String("vol-0123456789abcdef0")})
			return err
		}},
		{"ec2:DescribeSnapshots", "InternalError", 500, func() error {
			_, err := ec2c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}})
			return err
		}},
		{"ec2:DeleteSnapshot", "InvalidSnapshot.NotFound", 400, func() error {
			_, err := ec2c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String("snap-0123456789abcdef0")})
			return err
		}},
		// AWS query XML.
		{"sts:GetCallerIdentity", "AccessDenied", 403, func() error {
			_, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			return err
		}},
		{"iam:GetRole", "NoSuchEntity", 404, func() error {
			_, err := iam.NewFromConfig(cfg).GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("autoami")})
			return err
		}},
		// JSON 1.1.
		{"ssm:PutParameter", "InternalServerError", 500, func() error {
			_, err := ssm.NewFromConfig(cfg).PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/ami"), Value: aws.String("ami-1"), Type: "String"})
			return err
		}},
		{"kms:CreateKey", "AccessDeniedException", 400, func() error {
			_, err := kms.NewFromConfig(cfg).CreateKey(ctx, &kms.CreateKeyInput{})
			return err
		}},
		// EBS direct REST-JSON.
		{"ebs:StartSnapshot", "ValidationException", 400, func() error {
			_, err := ebs.NewFromConfig(cfg).StartSnapshot(ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1)})
			return err
		}},
		{"ebs:ListSnapshotBlocks", "InternalServerException", 500, func() error {
			_, err := ebs.NewFromConfig(cfg).ListSnapshotBlocks(ctx, &ebs.ListSnapshotBlocksInput{SnapshotId: aws.String("snap-0123456789abcdef0")})
			return err
		}},
		// S3 REST-XML.
		{"s3:PutObject", "AccessDenied", 403, func() error {
			_, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: bytes.NewReader([]byte("x"))})
			return err
		}},
		{"s3:ListObjectsV2", "InternalError", 500, func() error {
			_, err := s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("b")})
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.action+"/"+tc.code, func(t *testing.T) {
			proxy.Reset()
			message := "chosen by " + t.Name()
			proxy.SetRules(Rule{Actions: []string{tc.action}, Error: ErrorReply{Code: tc.code, Message: message, Share: Share{First: 1}}})
			err := tc.call()
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != tc.code {
				t.Fatalf("error %v, want API error code %s", err, tc.code)
			}
			if ae.ErrorMessage() != message {
				t.Errorf("message %q, want %q", ae.ErrorMessage(), message)
			}
			if got := httpStatus(err); got != tc.status {
				t.Errorf("HTTP status %d, want %d", got, tc.status)
			}
			// Answered by the proxy: nothing reached the server.
			if st := proxy.Stat(tc.action); st.Calls != 1 || st.Errors != 1 || st.RequestBytes != 0 {
				t.Fatalf("%s counted %+v, want 1 call answered with an error", tc.action, st)
			}
		})
	}
}

// An explicit status wins over the default for the code.
func TestChosenErrorStatus(t *testing.T) {
	ctx, cfg := fresh(t, 1)
	proxy.SetRules(Rule{Actions: []string{"ec2:DescribeRegions"}, Error: ErrorReply{Code: "InternalError", Status: 503, Share: Share{First: 1}}})
	_, err := ec2.NewFromConfig(cfg).DescribeRegions(ctx, &ec2.DescribeRegionsInput{})
	if apiCode(err) != "InternalError" || httpStatus(err) != 503 {
		t.Fatalf("error %v (status %d), want InternalError with 503", err, httpStatus(err))
	}
}

// An error for the Nth call hits exactly that call; a server error is
// retried by the SDK like any other.
func TestErrorOnTheNthCall(t *testing.T) {
	ctx, cfg := fresh(t, 1)
	proxy.SetRules(Rule{Actions: []string{"ssm:PutParameter"}, Error: ErrorReply{Code: "InternalServerError", Share: Share{Nth: 3}}})
	c := ssm.NewFromConfig(cfg)
	var failed []bool
	for i := 0; i < 5; i++ {
		_, err := c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(fmt.Sprintf("/p/%d", i)), Value: aws.String("v"), Type: "String"})
		if err != nil && apiCode(err) != "InternalServerError" {
			t.Fatal(err)
		}
		failed = append(failed, err != nil)
	}
	if want := []bool{false, false, true, false, false}; fmt.Sprint(failed) != fmt.Sprint(want) {
		t.Fatalf("failed calls %v, want only the third %v", failed, want)
	}
	if st := proxy.Stat("ssm:PutParameter"); st.Calls != 5 || st.Errors != 1 {
		t.Fatalf("counted %+v", st)
	}

	// With retries, the retry after the Nth call's 500 succeeds.
	ctx, cfg = fresh(t, 3)
	proxy.SetRules(Rule{Actions: []string{"ec2:CreateVolume"}, Error: ErrorReply{Code: "InsufficientVolumeCapacity", Share: Share{Nth: 1}}})
	vol, err := ec2.NewFromConfig(cfg).CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(region + "a"), Size: aws.Int32(1)})
	if err != nil || vol.VolumeId == nil {
		t.Fatalf("CreateVolume after one InsufficientVolumeCapacity: %v", err)
	}
	if st := proxy.Stat("ec2:CreateVolume"); st.Calls != 2 || st.Errors != 1 {
		t.Fatalf("CreateVolume counted %+v, want 2 attempts, 1 error", st)
	}
}

// Rules aimed at a region hit only calls signed for it.
func TestRulesAimedAtARegion(t *testing.T) {
	ctx, cfg := fresh(t, 1)
	proxy.SetRules(
		Rule{Actions: []string{"ec2:DescribeRegions"}, Regions: []string{"eu-west-1"}, Error: ErrorReply{Code: "UnauthorizedOperation", Share: Share{Fraction: 1}}},
		Rule{Actions: []string{"ec2:DescribeRegions"}, Regions: []string{"ap-*"}, Error: ErrorReply{Code: "InternalError", Share: Share{Fraction: 1}}},
	)
	for region, want := range map[string]string{
		"eu-west-1":      "UnauthorizedOperation",
		"ap-southeast-2": "InternalError",
		"ap-northeast-1": "InternalError",
		"us-east-1":      "",
		"eu-central-1":   "",
	} {
		inRegion := cfg.Copy()
		inRegion.Region = region
		_, err := ec2.NewFromConfig(inRegion).DescribeRegions(ctx, &ec2.DescribeRegionsInput{})
		if apiCode(err) != want || (want == "" && err != nil) {
			t.Errorf("%s: error %v, want %q", region, err, want)
		}
	}
	if st := proxy.Stat("ec2:DescribeRegions"); st.Calls != 5 || st.Errors != 3 {
		t.Fatalf("counted %+v, want 5 calls, 3 errors", st)
	}
}

// Rules aimed at an account hit only calls acting as it, the account being
// the one moto acts as: each credential's moto GetCallerIdentity account is
// the account the rule sees.
func TestRulesAimedAtAnAccount(t *testing.T) {
	ctx, plain := fresh(t, 1)
	const a, b = "111111111111", "222222222222"
	configs := map[string]aws.Config{moto.DefaultAccountID: plain}
	for _, account := range []string{a, b} {
		cfg, err := moto.AccountConfig(ctx, proxy.URL, region, account)
		if err != nil {
			t.Fatal(err)
		}
		configs[account] = cfg
	}
	// A user's own access key, made by IAM CreateAccessKey in account b.
	bIAM := iam.NewFromConfig(configs[b])
	if _, err := bIAM.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("publisher")}); err != nil {
		t.Fatal(err)
	}
	key, err := bIAM.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("publisher")})
	if err != nil {
		t.Fatal(err)
	}
	userCfg := plain.Copy()
	userCfg.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(key.AccessKey.AccessKeyId), aws.ToString(key.AccessKey.SecretAccessKey), "")
	const userOfB = "user of " + b
	configs[userOfB] = userCfg

	proxy.SetRules(
		Rule{Actions: []string{"ec2:DescribeImages"}, Accounts: []string{b}, Error: ErrorReply{Code: "UnauthorizedOperation", Share: Share{Fraction: 1}}},
		Rule{Actions: []string{"ec2:DescribeImages"}, Accounts: []string{moto.DefaultAccountID}, Error: ErrorReply{Code: "InternalError", Share: Share{Fraction: 1}}},
	)
	for name, want := range map[string]struct{ account, code string }{
		moto.DefaultAccountID: {moto.DefaultAccountID, "InternalError"},
		a:                     {a, ""},
		b:                     {b, "UnauthorizedOperation"},
		userOfB:               {b, "UnauthorizedOperation"},
	} {
		cfg := configs[name]
		id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			t.Fatal(err)
		}
		if got := aws.ToString(id.Account); got != want.account {
			t.Fatalf("%s: moto acts as %s, want %s", name, got, want.account)
		}
		_, err = ec2.NewFromConfig(cfg).DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}})
		if apiCode(err) != want.code || (want.code == "" && err != nil) {
			t.Errorf("%s: DescribeImages error %v, want %q", name, err, want.code)
		}
	}

	// A presigned URL belongs to the account whose key signed it.
	proxy.SetRules(Rule{Actions: []string{"s3:GetObject"}, Accounts: []string{b}, Error: ErrorReply{Code: "AccessDenied", Share: Share{Fraction: 1}}})
	if _, err := s3Client(configs[a]).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("store")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s3Client(configs[a]).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("store"), Key: aws.String("k"), Body: bytes.NewReader([]byte("content"))}); err != nil {
		t.Fatal(err)
	}
	for account, want := range map[string]int{a: http.StatusOK, b: http.StatusForbidden} {
		req, err := s3.NewPresignClient(s3Client(configs[account])).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("store"), Key: aws.String("k")})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(req.URL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || (want == http.StatusForbidden && !bytes.Contains(body, []byte("<Code>AccessDenied</Code>"))) {
			t.Errorf("presigned GET signed by %s: %d %s, want %d", account, resp.StatusCode, body, want)
		}
	}
}

// Reset keeps the keys learned (moto still knows them); ForgetAccessKeys,
// called when moto is reset, forgets them as moto does, and calls with them
// act as the default account again, in the proxy as in moto.
func TestForgetAccessKeysWithTheServer(t *testing.T) {
	ctx, _ := fresh(t, 1)
	const account = "333333333333"
	cfg, err := moto.AccountConfig(ctx, proxy.URL, region, account)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+creds.AccessKeyID+"/20260101/"+region+"/ec2/aws4_request")
	accountOf := func() string {
		proxy.mu.Lock()
		defer proxy.mu.Unlock()
		return proxy.accountOf(r)
	}
	if got := accountOf(); got != account {
		t.Fatalf("key %s acts as %s, want %s", creds.AccessKeyID, got, account)
	}
	proxy.Reset()
	if got := accountOf(); got != account {
		t.Fatalf("after the proxy's Reset the key acts as %s, want still %s", got, account)
	}
	if err := server.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	proxy.ForgetAccessKeys()
	if got := accountOf(); got != moto.DefaultAccountID {
		t.Fatalf("after ForgetAccessKeys the key acts as %s, want the default account", got)
	}
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Account) != moto.DefaultAccountID {
		t.Fatalf("moto after its reset: %v, %v; want the default account, as the proxy says", id, err)
	}
}
