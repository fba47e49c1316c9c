package faultproxy

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const exampleRules = `{
  "rules": [
    {
      "actions": ["ec2:RunInstances"],
      "regions": ["eu-west-1"],
      "accounts": ["222222222222"],
      "latency": "200ms",
      "error": {"code": "InsufficientInstanceCapacity", "message": "no capacity", "nth": 2}
    },
    {"actions": ["ec2:CreateSnapshot"], "error": {"code": "SnapshotCreationPerVolumeRateExceeded", "first": 1, "status": 400}},
    {"actions": ["s3:*"], "throttle": {"fraction": 0.25}, "drop_request": {"first": 1}, "drop_response": {"nth": 3}}
  ]
}`

var exampleParsed = []Rule{
	{
		Actions: []string{"ec2:RunInstances"}, Regions: []string{"eu-west-1"}, Accounts: []string{"222222222222"},
		Latency: 200 * time.Millisecond,
		Error:   ErrorReply{Code: "InsufficientInstanceCapacity", Message: "no capacity", Share: Share{Nth: 2}},
	},
	{Actions: []string{"ec2:CreateSnapshot"}, Error: ErrorReply{Code: "SnapshotCreationPerVolumeRateExceeded", Status: 400, Share: Share{First: 1}}},
	{Actions: []string{"s3:*"}, Throttle: Share{Fraction: 0.25}, DropRequest: Share{First: 1}, DropResponse: Share{Nth: 3}},
}

func TestParseRulesAndMarshalRoundTrip(t *testing.T) {
	rules, err := ParseRules([]byte(exampleRules))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rules, exampleParsed) {
		t.Fatalf("parsed\n%+v\nwant\n%+v", rules, exampleParsed)
	}
	doc, err := MarshalRules(rules)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseRules(doc)
	if err != nil {
		t.Fatalf("parse what MarshalRules wrote: %v\n%s", err, doc)
	}
	if !reflect.DeepEqual(again, exampleParsed) {
		t.Fatalf("round trip changed the rules:\n%s", doc)
	}
	if none, err := ParseRules([]byte(`{"rules": []}`)); err != nil || len(none) != 0 {
		t.Fatalf("empty rules: %v, %v", none, err)
	}
}

// Bad documents are refused with the field and where it is.
func TestParseRulesNamesTheProblem(t *testing.T) {
	cases := []struct{ doc, want string }{
		{`{"rules": [{"action": ["ec2:*"]}]}`, `rules[0].action: unknown field "action"`},
		{`{"rules": [{}, {"throttle": {"frist": 1}}]}`, `rules[1].throttle.frist: unknown field "frist" (known: first, fraction, nth)`},
		{`{"rules": [{"error": {"code": "X", "nth": 1, "Status": 500}}]}`, `rules[0].error.Status: unknown field "Status"`},
		{`{"rules": [], "rule": []}`, `rule: unknown field "rule"`},
		{`{"rules": [{"throttle": {"first": "2"}}]}`, `rules[0].throttle.first: want a whole number, got the string "2"`},
		{`{"rules": [{"throttle": {"first": 1.5}}]}`, `rules[0].throttle.first: want a whole number, got 1.5`},
		{`{"rules": [{"actions": "ec2:*"}]}`, `rules[0].actions: want an array, got the string "ec2:*"`},
		{`{"rules": [{"latency": "soon"}]}`, `rules[0].latency: "soon" is not a duration`},
		{`{"rules": [{"error": {"code": "IncorrectState"}}]}`, `rules[0].error: no call selected`},
		{`{"rules": [{"error": {"first": 1}}]}`, `rules[0].error.code: required`},
		{`{"rules": [{"error": {"code": "Bad Code", "first": 1}}]}`, `rules[0].error.code: "Bad Code" is not an AWS error code`},
		{`{"rules": [{"error": {"code": "X", "first": 1, "status": 200}}]}`, `rules[0].error.status: 200 is not an HTTP error status`},
		{`{"rules": [{"throttle": {"fraction": 1.5}}]}`, `rules[0].throttle.fraction: 1.5 is not between 0 and 1`},
		{`{"rules": [{"drop_request": {"nth": -1}}]}`, `rules[0].drop_request.nth: -1 is negative`},
		{`{"rules": [{"actions": ["RunInstances"]}]}`, `rules[0].actions[0]: "RunInstances" is not service:Operation`},
		{`{"rules": [{"actions": ["ec2:["]}]}`, `rules[0].actions[0]: "ec2:[" is not a valid pattern`},
		{`{"rules": [{"accounts": ["2222"]}]}`, `rules[0].accounts[0]: "2222" is not a 12-digit account ID`},
		{`{"rules": [{"regions": [""]}]}`, `rules[0].regions[0]: "" is not a valid region pattern`},
		{`{}`, `"rules" is missing`},
		{`[]`, `want an object {"rules": [...]}`},
		{`{"rules": []} {}`, `more than one JSON value`},
		{`{"rules": [`, `not JSON`},
	}
	for _, tc := range cases {
		_, err := ParseRules([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.doc, err, tc.want)
		}
	}
}

// A rules file with a bad field is refused naming the file and the field.
func TestLoadRulesFileWithBadField(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	if err := os.WriteFile(good, []byte(exampleRules), 0o644); err != nil {
		t.Fatal(err)
	}
	rules, err := LoadRules(good)
	if err != nil || !reflect.DeepEqual(rules, exampleParsed) {
		t.Fatalf("LoadRules(good) = %+v, %v", rules, err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"rules": [{"actions": ["ec2:*"], "eror": {"code": "InternalError", "first": 1}}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadRules(bad)
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), `rules[0].eror: unknown field "eror"`) {
		t.Fatalf("LoadRules(bad): %v, want the file and the unknown field eror named", err)
	}
	if _, err := LoadRules(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Fatalf("LoadRules(missing): %v", err)
	}
}

// SetRules refuses rules that cannot work, naming the rule and field.
func TestSetRulesPanicsOnRulesThatCannotWork(t *testing.T) {
	p := &Proxy{stats: map[string]*Stat{}, accounts: map[string]string{}}
	defer func() {
		msg, _ := recover().(string)
		if !strings.Contains(msg, "rules[1].error.code: required") {
			t.Fatalf("panic %q, want one naming rules[1].error.code", msg)
		}
		if len(p.Rules()) != 0 {
			t.Fatalf("rules set despite the panic: %+v", p.Rules())
		}
	}()
	p.SetRules(Rule{}, Rule{Error: ErrorReply{Share: Share{First: 1}}})
}

func TestDefaultStatus(t *testing.T) {
	for code, want := range map[string]int{
		"UnauthorizedOperation":                 403,
		"AuthFailure":                           401,
		"InsufficientInstanceCapacity":          500,
		"InsufficientVolumeCapacity":            500,
		"InternalError":                         500,
		"IncorrectState":                        400,
		"SnapshotCreationPerVolumeRateExceeded": 400,
		"Unavailable":                           503,
		"SomethingNobodyKnows":                  400,
	} {
		if got := DefaultStatus(code); got != want {
			t.Errorf("DefaultStatus(%s) = %d, want %d", code, got, want)
		}
	}
}
