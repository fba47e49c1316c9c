package faultproxy

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

func signed(method, target, service string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/"+service+"/aws4_request, SignedHeaders=host, Signature=x")
	return r
}

func TestActionNames(t *testing.T) {
	cases := []struct {
		r    *http.Request
		form url.Values
		want string
	}{
		{signed("POST", "/", "ec2"), url.Values{"Action": {"RegisterImage"}}, "ec2:RegisterImage"},
		{signed("POST", "/", "sts"), url.Values{"Action": {"AssumeRole"}}, "sts:AssumeRole"},
		{func() *http.Request {
			r := signed("POST", "/", "ssm")
			r.Header.Set("X-Amz-Target", "AmazonSSM.PutParameter")
			return r
		}(), nil, "ssm:PutParameter"},
		{func() *http.Request {
			r := signed("POST", "/", "kms")
			r.Header.Set("X-Amz-Target", "TrentService.CreateKey")
			return r
		}(), nil, "kms:CreateKey"},
		{signed("POST", "/snapshots", "ebs"), nil, "ebs:StartSnapshot"},
		{signed("PUT", "/snapshots/snap-1/blocks/7", "ebs"), nil, "ebs:PutSnapshotBlock"},
		{signed("GET", "/snapshots/snap-1/blocks/7?blockToken=t", "ebs"), nil, "ebs:GetSnapshotBlock"},
		{signed("GET", "/snapshots/snap-1/blocks?maxResults=100", "ebs"), nil, "ebs:ListSnapshotBlocks"},
		{signed("GET", "/snapshots/snap-2/changedblocks?firstSnapshotId=snap-1", "ebs"), nil, "ebs:ListChangedBlocks"},
		{signed("POST", "/snapshots/completion/snap-1", "ebs"), nil, "ebs:CompleteSnapshot"},
		{signed("GET", "/", "s3"), nil, "s3:ListBuckets"},
		{signed("PUT", "/bucket", "s3"), nil, "s3:CreateBucket"},
		{signed("HEAD", "/bucket", "s3"), nil, "s3:HeadBucket"},
		{signed("GET", "/bucket?list-type=2&prefix=a", "s3"), nil, "s3:ListObjectsV2"},
		{signed("PUT", "/bucket?versioning", "s3"), nil, "s3:PutBucketVersioning"},
		{signed("POST", "/bucket?delete", "s3"), nil, "s3:DeleteObjects"},
		{signed("PUT", "/bucket/objects/ab/cd", "s3"), nil, "s3:PutObject"},
		{signed("GET", "/bucket/objects/ab/cd", "s3"), nil, "s3:GetObject"},
		{signed("HEAD", "/bucket/k", "s3"), nil, "s3:HeadObject"},
		{signed("POST", "/bucket/k?uploads", "s3"), nil, "s3:CreateMultipartUpload"},
		{signed("PUT", "/bucket/k?partNumber=2&uploadId=u", "s3"), nil, "s3:UploadPart"},
		{signed("POST", "/bucket/k?uploadId=u", "s3"), nil, "s3:CompleteMultipartUpload"},
		{signed("DELETE", "/bucket/k?uploadId=u", "s3"), nil, "s3:AbortMultipartUpload"},
		{httptest.NewRequest("GET", "/bucket/k?X-Amz-Credential=AKID%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=x", nil), nil, "s3:GetObject"},
		{httptest.NewRequest("POST", "/moto-api/reset", nil), nil, "unsigned:POST /moto-api/reset"},
	}
	for _, tc := range cases {
		if got := actionOf(tc.r, tc.form); got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.r.Method, tc.r.URL, got, tc.want)
		}
	}
}

func TestShareHits(t *testing.T) {
	cases := []struct {
		share Share
		want  string
	}{
		{Share{First: 2}, "11000000"},
		{Share{Fraction: 0.5}, "01010101"},
		{Share{First: 1, Fraction: 1.0 / 3}, "10010010"},
		{Share{Fraction: 1}, "11111111"},
		{Share{}, "00000000"},
		{Share{Nth: 3}, "00100000"},
		{Share{First: 1, Nth: 4}, "10010000"},
		// Nth does not shift the fraction's pattern.
		{Share{Fraction: 0.5, Nth: 3}, "01110101"},
		{Share{First: 2, Nth: 2}, "11000000"},
	}
	for _, tc := range cases {
		var acc float64
		got := ""
		for n := 0; n < 8; n++ {
			if hit(tc.share, n, &acc) {
				got += "1"
			} else {
				got += "0"
			}
		}
		if got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.share, got, tc.want)
		}
	}
}

func TestRegionAndAccessKeyOfARequest(t *testing.T) {
	cases := []struct {
		r                    *http.Request
		region, key, service string
	}{
		{signed("POST", "/", "ec2"), "us-east-1", "AKID", "ec2"},
		{func() *http.Request {
			r := httptest.NewRequest("POST", "/", nil)
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLEKEY000001/20260101/eu-west-1/sts/aws4_request, SignedHeaders=host, Signature=x")
			return r
		}(), "eu-west-1", "ASIAEXAMPLEKEY000001", "sts"},
		{httptest.NewRequest("GET", "/b/k?X-Amz-Credential=ASIAPRESIGNED0000001%2F20260101%2Fap-south-1%2Fs3%2Faws4_request&X-Amz-Signature=x", nil), "ap-south-1", "ASIAPRESIGNED0000001", "s3"},
		{httptest.NewRequest("GET", "/b/k?AWSAccessKeyId=AKIASIGV2&Signature=x", nil), "", "AKIASIGV2", ""},
		{httptest.NewRequest("POST", "/moto-api/reset", nil), "", "", ""},
	}
	for _, tc := range cases {
		if got := regionOf(tc.r); got != tc.region {
			t.Errorf("%s: region %q, want %q", tc.r.URL, got, tc.region)
		}
		if got := accessKeyOf(tc.r); got != tc.key {
			t.Errorf("%s: access key %q, want %q", tc.r.URL, got, tc.key)
		}
		if got := serviceOf(tc.r); got != tc.service {
			t.Errorf("%s: service %q, want %q", tc.r.URL, got, tc.service)
		}
	}
}

func TestKeyInAnswer(t *testing.T) {
	assumeRole := `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>
<Credentials><AccessKeyId>ASIAQWERTYUIOPASDFGH</AccessKeyId><SecretAccessKey>s</SecretAccessKey></Credentials>
<AssumedRoleUser><AssumedRoleId>AROA:x</AssumedRoleId><Arn>arn:aws:sts::222222222222:assumed-role/autoami-test/x</Arn></AssumedRoleUser>
</AssumeRoleResult></AssumeRoleResponse>`
	if key, arn := keyInAnswer([]byte(assumeRole)); key != "ASIAQWERTYUIOPASDFGH" || arn != "arn:aws:sts::222222222222:assumed-role/autoami-test/x" {
		t.Fatalf("AssumeRole answer: key %q, arn %q", key, arn)
	}
	createKey := `<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey><UserName>u</UserName><AccessKeyId>AKIAUSERKEY000000001</AccessKeyId></AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>`
	if key, arn := keyInAnswer([]byte(createKey)); key != "AKIAUSERKEY000000001" || arn != "" {
		t.Fatalf("CreateAccessKey answer: key %q, arn %q", key, arn)
	}
	if key, arn := keyInAnswer([]byte("not xml")); key != "" || arn != "" {
		t.Fatalf("garbage: key %q, arn %q", key, arn)
	}
}
