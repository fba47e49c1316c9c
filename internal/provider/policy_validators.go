package provider

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/autoami/terraform-provider-autoami/internal/policy"
)

// policyStringKind says which policy notation a string attribute takes.
type policyStringKind int

const (
	// kindDelay: `immediate`, `manual` or a duration.
	kindDelay policyStringKind = iota
	// kindDuration: a duration only.
	kindDuration
	// kindClock: a time of day, HH:MM.
	kindClock
	// kindZone: an IANA time zone name.
	kindZone
)

// policyStringValidator checks a policy string at plan time with the same
// parser the engine uses, so the error names the attribute and lists exactly
// the forms the engine accepts.
type policyStringValidator struct {
	kind policyStringKind
}

func (v policyStringValidator) Description(context.Context) string {
	switch v.kind {
	case kindDelay:
		return "must be `immediate`, `manual`, or a duration such as 30m, 4h, 7d or 2w"
	case kindDuration:
		return "must be a duration such as 30m, 4h, 7d or 2w"
	case kindClock:
		return "must be a time of day HH:MM between 00:00 and 23:59"
	}
	return "must be an IANA time zone name such as UTC or Europe/Berlin"
}

func (v policyStringValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (v policyStringValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := v.check(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid "+attributeName(req.Path),
			fmt.Sprintf("%s: %s", attributeName(req.Path), err))
	}
}

func (v policyStringValidator) check(s string) error {
	switch v.kind {
	case kindDelay:
		_, err := policy.ParseDelay(s)
		return err
	case kindDuration:
		_, err := policy.ParseDuration(s)
		return err
	case kindClock:
		return policy.CheckTimeOfDay(s)
	}
	return policy.CheckTimeZone(s)
}

// attributeName renders a path the way users write it in HCL:
// rebuild_delays.high, prices["us-east-1"].unpacker_hour_usd.
func attributeName(p path.Path) string { return p.String() }

// buildWindowValidator checks the build window as a whole: start ≠ end (the
// per-attribute validators have checked each part).
type buildWindowValidator struct{}

func (buildWindowValidator) Description(context.Context) string {
	return "start and end must differ; an end before the start crosses midnight"
}

func (v buildWindowValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (buildWindowValidator) ValidateObject(ctx context.Context, req validator.ObjectRequest, resp *validator.ObjectResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	var bw buildWindowModel
	resp.Diagnostics.Append(req.ConfigValue.As(ctx, &bw, objectAsOptions)...)
	if resp.Diagnostics.HasError() || !known(bw.Start) || !known(bw.End) {
		return
	}
	start, end := bw.Start.ValueString(), bw.End.ValueString()
	if policy.CheckTimeOfDay(start) != nil || policy.CheckTimeOfDay(end) != nil {
		return // the attribute validators report bad times
	}
	// The zone is the timezone attribute's business; any valid one will do
	// to check start against end.
	if _, err := policy.ParseBuildWindow(start, end, "UTC"); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid build_window", "build_window: "+err.Error())
	}
}

// known reports whether a value is neither null nor unknown.
func known(v interface {
	IsNull() bool
	IsUnknown() bool
}) bool {
	return !v.IsNull() && !v.IsUnknown()
}

var (
	policyNamePattern   = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)
	policyPrefixPattern = regexp.MustCompile(`^/([A-Za-z0-9_.-]+/)*$`)
)

// policyNameValidator checks a policy name: it becomes the last segment of
// an SSM parameter name, so no slashes.
type policyNameValidator struct{}

func (policyNameValidator) Description(context.Context) string {
	return "must be 1 to 128 letters, digits, `_`, `.` or `-`"
}

func (v policyNameValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (v policyNameValidator) ValidateString(ctx context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if !known(req.ConfigValue) {
		return
	}
	if err := checkPolicyName(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid name", err.Error())
	}
}

func checkPolicyName(name string) error {
	if !policyNamePattern.MatchString(name) {
		return fmt.Errorf("name %q: must be 1 to 128 letters, digits, `_`, `.` or `-` (it is the last part of the SSM parameter name)", name)
	}
	return nil
}

// parameterPrefixValidator checks the SSM parameter prefix.
type parameterPrefixValidator struct{}

func (parameterPrefixValidator) Description(context.Context) string {
	return "must start and end with `/`, e.g. `/autoami/policies/`"
}

func (v parameterPrefixValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (v parameterPrefixValidator) ValidateString(ctx context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if !known(req.ConfigValue) {
		return
	}
	if err := checkParameterPrefix(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid parameter_prefix", err.Error())
	}
}

func checkParameterPrefix(prefix string) error {
	if !policyPrefixPattern.MatchString(prefix) {
		return fmt.Errorf("parameter_prefix %q: must start and end with `/` and hold path segments of letters, digits, `_`, `.` or `-`, e.g. %q",
			prefix, defaultParameterPrefix)
	}
	first := strings.ToLower(strings.SplitN(strings.TrimPrefix(prefix, "/"), "/", 2)[0])
	if strings.HasPrefix(first, "aws") || strings.HasPrefix(first, "ssm") {
		return fmt.Errorf("parameter_prefix %q: SSM reserves parameter names beginning with aws or ssm", prefix)
	}
	if len(prefix)+128 > 1011 {
		return fmt.Errorf("parameter_prefix %q: too long (SSM parameter names are at most 1011 characters)", prefix)
	}
	return nil
}
