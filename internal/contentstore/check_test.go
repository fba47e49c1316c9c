package contentstore

import (
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Check: a missing bucket and a forbidden one are errors naming the bucket;
// no default encryption and public access not fully blocked are warnings
// naming it; a well-set bucket gives none.
func TestCheckBucket(t *testing.T) {
	e := newEnv(t)

	_, err := New(e.client, Location{Bucket: "autoami-nope"}, Options{}).Check(e.ctx)
	mustErr(t, err, ErrBucketNotFound, `bucket "autoami-nope" does not exist`)
	_, err = New(e.client, Location{}, Options{}).Check(e.ctx)
	mustErr(t, err, nil, "no bucket")

	denied, _ := e.deniedStore(func(r *http.Request) bool { return r.Method == http.MethodHead })
	_, err = denied.Check(e.ctx)
	mustErr(t, err, ErrAccessDenied, `credentials cannot access bucket "`+testBucket+`"`)

	s := e.store(Options{})
	check := func(wantFragments ...string) {
		t.Helper()
		c, err := s.Check(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Warnings) != len(wantFragments) {
			t.Fatalf("warnings %q, want %d", c.Warnings, len(wantFragments))
		}
		for i, f := range wantFragments {
			if !strings.Contains(c.Warnings[i], f) || !strings.Contains(c.Warnings[i], `"`+testBucket+`"`) {
				t.Errorf("warning %q does not name the bucket and %q", c.Warnings[i], f)
			}
		}
	}
	// A new moto bucket has neither default encryption nor a block.
	check("has no default encryption", "has no public access block")

	if _, err := e.client.PutBucketEncryption(e.ctx, &s3.PutBucketEncryptionInput{
		Bucket: aws.String(testBucket),
		ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{{
			ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAes256},
		}}},
	}); err != nil {
		t.Fatal(err)
	}
	block := func(acls, policy bool) {
		t.Helper()
		if _, err := e.client.PutPublicAccessBlock(e.ctx, &s3.PutPublicAccessBlockInput{
			Bucket: aws.String(testBucket),
			PublicAccessBlockConfiguration: &types.PublicAccessBlockConfiguration{
				BlockPublicAcls: aws.Bool(acls), IgnorePublicAcls: aws.Bool(acls),
				BlockPublicPolicy: aws.Bool(policy), RestrictPublicBuckets: aws.Bool(policy),
			},
		}); err != nil {
			t.Fatal(err)
		}
	}
	block(true, false)
	check("does not fully block public access (BlockPublicPolicy, RestrictPublicBuckets off)")
	block(true, true)
	check()

	// Settings the credentials may not read are warnings, not errors.
	deniedSettings, _ := e.deniedStore(func(r *http.Request) bool {
		q := r.URL.Query()
		return q.Has("encryption") || q.Has("publicAccessBlock")
	})
	c, err := deniedSettings.Check(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 2 || !strings.Contains(c.Warnings[0], "Cannot read the default encryption") || !strings.Contains(c.Warnings[1], "Cannot read the public access block") {
		t.Fatalf("warnings %q", c.Warnings)
	}
}
