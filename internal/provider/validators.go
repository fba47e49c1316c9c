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

// stringCheck is a plan-time validator made of a check function: the error
// it returns becomes the diagnostic's detail, under summary.
type stringCheck struct {
	summary     string
	description string
	check       func(string) error
}

func (v stringCheck) Description(context.Context) string { return v.description }
func (v stringCheck) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}
func (v stringCheck) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := v.check(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, v.summary, err.Error())
	}
}

// regionValidator checks the shape of an AWS region name.
func regionValidator() validator.String {
	return stringCheck{"Invalid region", "must be an AWS region name", awsclient.ValidateRegion}
}

// urlValidator checks that an endpoint is an http(s) URL with a host.
func urlValidator() validator.String {
	return stringCheck{"Invalid endpoint URL", "must be an http:// or https:// URL", func(s string) error {
		if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") || len(s) <= len("https://") {
			return fmt.Errorf("%q must be an http:// or https:// URL with a host", s)
		}
		return nil
	}}
}

var roleARNPattern = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$`)

// roleARNValidator checks the shape of an IAM role ARN.
func roleARNValidator() validator.String {
	const desc = "must be an IAM role ARN (arn:aws:iam::123456789012:role/name)"
	return stringCheck{"Invalid role ARN", desc, func(s string) error {
		if !roleARNPattern.MatchString(s) {
			return fmt.Errorf("%q %s", s, desc)
		}
		return nil
	}}
}

// streamNameValidator checks image stream names.
func streamNameValidator() validator.String {
	return stringCheck{"Invalid stream name", "slash-separated segments of a-z, 0-9, '.', '_' and '-'", contentstore.ValidateStreamName}
}

func upper(s string) string { return strings.ToUpper(s) }
