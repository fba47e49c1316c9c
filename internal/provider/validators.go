package provider

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/autoami/terraform-provider-autoami/internal/awsclient"
	"github.com/autoami/terraform-provider-autoami/internal/contentstore"
)

// regionValidator checks the shape of an AWS region name at plan time.
type regionValidator struct{}

func (regionValidator) Description(context.Context) string { return "must be an AWS region name" }
func (v regionValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}
func (regionValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := awsclient.ValidateRegion(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid region", err.Error())
	}
}

// urlValidator checks that an endpoint is an http(s) URL.
type urlValidator struct{}

func (urlValidator) Description(context.Context) string { return "must be an http:// or https:// URL" }
func (v urlValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}
func (urlValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	s := req.ConfigValue.ValueString()
	if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") || len(s) <= len("https://") {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid endpoint URL",
			fmt.Sprintf("%q must be an http:// or https:// URL with a host", s))
	}
}

var roleARNPattern = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$`)

// roleARNValidator checks the shape of an IAM role ARN at plan time.
type roleARNValidator struct{}

func (roleARNValidator) Description(context.Context) string {
	return "must be an IAM role ARN (arn:aws:iam::123456789012:role/name)"
}
func (v roleARNValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}
func (v roleARNValidator) ValidateString(ctx context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if !roleARNPattern.MatchString(req.ConfigValue.ValueString()) {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid role ARN",
			fmt.Sprintf("%q %s", req.ConfigValue.ValueString(), v.Description(ctx)))
	}
}

func upper(s string) string { return strings.ToUpper(s) }

// streamNameValidator checks image stream names at plan time.
type streamNameValidator struct{}

func (streamNameValidator) Description(context.Context) string {
	return "slash-separated segments of a-z, 0-9, '.', '_' and '-'"
}
func (v streamNameValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}
func (streamNameValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := contentstore.ValidateStreamName(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid stream name", err.Error())
	}
}
