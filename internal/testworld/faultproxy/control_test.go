package faultproxy

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// control sends one request to the proxy's control endpoint and returns the
// status and body.
func control(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, proxy.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(out)
}

// Rules set through the control endpoint are the ones GET returns and the
// ones calls meet; stats count them; bad documents are refused naming the
// field and change nothing.
func TestControlEndpointRoundTrip(t *testing.T) {
	ctx, cfg := fresh(t, 1)
	doc := `{"rules": [
	  {"actions": ["ec2:DescribeRegions"], "regions": ["` + region + `"], "error": {"code": "UnauthorizedOperation", "nth": 2}},
	  {"actions": ["s3:*"], "latency": "1ms", "throttle": {"first": 1}}
	]}`
	status, body := control(t, http.MethodPut, "/autoami-faults/rules", doc)
	if status != http.StatusOK {
		t.Fatalf("PUT rules: %d %s", status, body)
	}
	want := []Rule{
		{Actions: []string{"ec2:DescribeRegions"}, Regions: []string{region}, Error: ErrorReply{Code: "UnauthorizedOperation", Share: Share{Nth: 2}}},
		{Actions: []string{"s3:*"}, Latency: time.Millisecond, Throttle: Share{First: 1}},
	}
	if got := proxy.Rules(); !reflect.DeepEqual(got, want) {
		t.Fatalf("rules in force %+v, want %+v", got, want)
	}
	status, got := control(t, http.MethodGet, "/autoami-faults/rules", "")
	if status != http.StatusOK {
		t.Fatalf("GET rules: %d %s", status, got)
	}
	if parsed, err := ParseRules([]byte(got)); err != nil || !reflect.DeepEqual(parsed, want) {
		t.Fatalf("GET rules answered %s (%v), want the rules PUT", got, err)
	}
	if got != body {
		t.Fatalf("PUT answered %s, GET %s", body, got)
	}

	c := ec2.NewFromConfig(cfg)
	for i, wantCode := range []string{"", "UnauthorizedOperation", ""} {
		_, err := c.DescribeRegions(ctx, &ec2.DescribeRegionsInput{})
		if apiCode(err) != wantCode || (wantCode == "" && err != nil) {
			t.Fatalf("call %d: %v, want %q", i+1, err, wantCode)
		}
	}
	status, body = control(t, http.MethodGet, "/autoami-faults/stats", "")
	var stats struct {
		Actions map[string]Stat `json:"actions"`
	}
	if err := json.Unmarshal([]byte(body), &stats); status != http.StatusOK || err != nil {
		t.Fatalf("GET stats: %d %s (%v)", status, body, err)
	}
	if st := stats.Actions["ec2:DescribeRegions"]; st.Calls != 3 || st.Errors != 1 || st.ResponseBytes == 0 {
		t.Fatalf("stats of ec2:DescribeRegions %+v, want 3 calls, 1 error; all: %s", st, body)
	}

	// A bad document: 400 naming the field, rules unchanged.
	status, body = control(t, http.MethodPut, "/autoami-faults/rules", `{"rules": [{"actions": ["ec2:*"], "throttle": {"first": 1, "every": 2}}]}`)
	if status != http.StatusBadRequest || !strings.Contains(body, `rules[0].throttle.every: unknown field \"every\"`) {
		t.Fatalf("PUT bad rules: %d %s, want 400 naming rules[0].throttle.every", status, body)
	}
	if got := proxy.Rules(); !reflect.DeepEqual(got, want) {
		t.Fatalf("a refused document changed the rules: %+v", got)
	}

	if status, body := control(t, http.MethodDelete, "/autoami-faults/stats", ""); status != http.StatusNoContent {
		t.Fatalf("DELETE stats: %d %s", status, body)
	}
	if len(proxy.Stats()) != 0 {
		t.Fatalf("stats after DELETE: %v", proxy.Stats())
	}
	if status, body := control(t, http.MethodDelete, "/autoami-faults/rules", ""); status != http.StatusNoContent {
		t.Fatalf("DELETE rules: %d %s", status, body)
	}
	if status, body := control(t, http.MethodGet, "/autoami-faults/rules", ""); status != http.StatusOK || strings.Join(strings.Fields(body), "") != `{"rules":[]}` {
		t.Fatalf("GET rules after DELETE: %d %s", status, body)
	}
	if status, body := control(t, http.MethodPost, "/autoami-faults/rules", "{}"); status != http.StatusMethodNotAllowed || !strings.Contains(body, "GET, PUT, DELETE") {
		t.Fatalf("POST rules: %d %s", status, body)
	}
	if status, body := control(t, http.MethodGet, "/autoami-faults/rule", ""); status != http.StatusNotFound || !strings.Contains(body, "/autoami-faults/rules") {
		t.Fatalf("GET an unknown control path: %d %s", status, body)
	}
	// Control calls are not AWS calls: nothing counted.
	if len(proxy.Stats()) != 0 {
		t.Fatalf("control calls counted: %v", proxy.Stats())
	}
}

// Signed calls under the control path are AWS calls: an S3 bucket named
// autoami-faults works through the proxy.
func TestControlPathLeavesSignedCallsAlone(t *testing.T) {
	ctx, cfg := fresh(t, 1)
	c := s3Client(cfg)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("autoami-faults")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("autoami-faults"), Key: aws.String("rules"), Body: strings.NewReader("{}")}); err != nil {
		t.Fatal(err)
	}
	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("autoami-faults")})
	if err != nil || len(out.Contents) != 1 {
		t.Fatalf("list the bucket autoami-faults: %v", err)
	}
	if st := proxy.Stat("s3:PutObject"); st.Calls != 1 {
		t.Fatalf("PutObject into autoami-faults counted %+v", st)
	}
}
