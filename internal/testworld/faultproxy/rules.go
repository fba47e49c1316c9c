package faultproxy

import (
	"errors"
	"fmt"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strings"
)

// clone is r with its own pattern lists, so callers cannot change rules in
// force by changing their slices.
func (r Rule) clone() Rule {
	r.Actions = slices.Clone(r.Actions)
	r.Regions = slices.Clone(r.Regions)
	r.Accounts = slices.Clone(r.Accounts)
	return r
}

var (
	accountID = regexp.MustCompile(`^[0-9]{12}$`)
	// errorCode is what the SDKs parse as a code: no spaces or markup.
	errorCode = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._-]*$`)
)

// validateRules checks every rule; errors are named like the JSON document's
// fields ("rules[1].error.code"), so they read the same from Go and files.
func validateRules(rules []Rule) error {
	var errs []error
	for i, r := range rules {
		errs = append(errs, validateRule(fmt.Sprintf("rules[%d]", i), r)...)
	}
	return errors.Join(errs...)
}

func validateRule(at string, r Rule) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", at, field, fmt.Sprintf(format, args...)))
	}
	for i, pat := range r.Actions {
		switch {
		case !validPattern(pat):
			bad(fmt.Sprintf("actions[%d]", i), "%q is not a valid pattern", pat)
		case !strings.Contains(pat, ":"):
			bad(fmt.Sprintf("actions[%d]", i), "%q is not service:Operation (e.g. \"ec2:RunInstances\", \"ec2:*\")", pat)
		}
	}
	for i, pat := range r.Regions {
		if pat == "" || !validPattern(pat) {
			bad(fmt.Sprintf("regions[%d]", i), "%q is not a valid region pattern (e.g. \"eu-west-1\", \"eu-*\")", pat)
		}
	}
	for i, pat := range r.Accounts {
		switch {
		case !validPattern(pat):
			bad(fmt.Sprintf("accounts[%d]", i), "%q is not a valid pattern", pat)
		case !strings.ContainsAny(pat, `*?[\`) && !accountID.MatchString(pat):
			bad(fmt.Sprintf("accounts[%d]", i), "%q is not a 12-digit account ID", pat)
		}
	}
	if r.Latency < 0 {
		bad("latency", "%s is negative", r.Latency)
	}
	for _, s := range []struct {
		field string
		share Share
	}{{"throttle", r.Throttle}, {"error", r.Error.Share}, {"drop_request", r.DropRequest}, {"drop_response", r.DropResponse}} {
		for _, err := range validateShare(s.share) {
			bad(s.field+"."+err.field, "%s", err.problem)
		}
	}
	e := r.Error
	switch {
	case e.Share == (Share{}) && (e.Code != "" || e.Status != 0 || e.Message != ""):
		bad("error", "no call selected: give first, fraction or nth, or the error never happens")
	case e.Share != (Share{}) && e.Code == "":
		bad("error.code", "required: the AWS error code to answer with, e.g. \"InsufficientInstanceCapacity\"")
	case e.Code != "" && !errorCode.MatchString(e.Code):
		bad("error.code", "%q is not an AWS error code (letters, digits, '.', '_', '-')", e.Code)
	}
	if e.Status != 0 && (e.Status < 400 || e.Status > 599 || http.StatusText(e.Status) == "") {
		bad("error.status", "%d is not an HTTP error status (400-599)", e.Status)
	}
	return errs
}

type shareProblem struct{ field, problem string }

func validateShare(s Share) []shareProblem {
	var out []shareProblem
	if s.First < 0 {
		out = append(out, shareProblem{"first", fmt.Sprintf("%d is negative", s.First)})
	}
	if s.Nth < 0 {
		out = append(out, shareProblem{"nth", fmt.Sprintf("%d is negative (calls count from 1)", s.Nth)})
	}
	if s.Fraction < 0 || s.Fraction > 1 || s.Fraction != s.Fraction {
		out = append(out, shareProblem{"fraction", fmt.Sprintf("%v is not between 0 and 1", s.Fraction)})
	}
	return out
}

// validPattern reports whether pat is a well-formed path.Match pattern.
func validPattern(pat string) bool {
	_, err := path.Match(pat, "")
	return err == nil
}
