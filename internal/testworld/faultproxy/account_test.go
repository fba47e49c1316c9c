package faultproxy

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
)

func answer(status int, body string) *http.Response {
	return &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body))}
}

// learnKey remembers keys from successful assume-role answers only, and the
// client still reads every byte of the answer.
func TestLearnKeyLeavesTheAnswerWhole(t *testing.T) {
	p := &Proxy{stats: map[string]*Stat{}, accounts: map[string]string{}}
	ok := `<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIAKEYOFACCOUNT0004</AccessKeyId></Credentials>` +
		`<AssumedRoleUser><Arn>arn:aws:sts::444444444444:assumed-role/r/s</Arn></AssumedRoleUser></AssumeRoleResult></AssumeRoleResponse>`
	cases := []struct {
		name, action string
		resp         *http.Response
		key, account string
	}{
		{"assume role", "sts:AssumeRole", answer(200, ok), "ASIAKEYOFACCOUNT0004", "444444444444"},
		{"refused", "sts:AssumeRole", answer(403, strings.Replace(ok, "0004", "0005", 1)), "ASIAKEYOFACCOUNT0005", moto.DefaultAccountID},
		{"other action", "sts:GetCallerIdentity", answer(200, strings.Replace(ok, "0004", "0006", 1)), "ASIAKEYOFACCOUNT0006", moto.DefaultAccountID},
		{"user key", "iam:CreateAccessKey", answer(200, `<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey><AccessKeyId>AKIAUSERKEY000000007</AccessKeyId></AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>`), "AKIAUSERKEY000000007", "555555555555"},
		{"huge", "sts:AssumeRole", answer(200, ok+strings.Repeat(" ", maxLearnBody)), "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := io.ReadAll(tc.resp.Body)
			tc.resp.Body = io.NopCloser(bytes.NewReader(before))
			d := &decision{call: call{action: tc.action, account: "555555555555"}}
			if err := p.learnKey(tc.resp, d); err != nil {
				t.Fatal(err)
			}
			after, _ := io.ReadAll(tc.resp.Body)
			if !bytes.Equal(after, before) {
				t.Fatalf("the client reads %d bytes, the server sent %d", len(after), len(before))
			}
			if tc.key == "" {
				return
			}
			r, _ := http.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+tc.key+"/20260101/us-east-1/ec2/aws4_request")
			if got := p.accountOf(r); got != tc.account {
				t.Fatalf("key %s acts as %s, want %s", tc.key, got, tc.account)
			}
		})
	}
	r, _ := http.NewRequest("GET", "/", nil)
	r.Header.Set("X-Moto-Account-Id", "666666666666")
	if got := p.accountOf(r); got != "666666666666" {
		t.Fatalf("X-Moto-Account-Id: acts as %s", got)
	}
}
