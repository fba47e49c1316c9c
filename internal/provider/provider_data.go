package provider

import (
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/diag"
)

// providerDataFrom type-asserts what Configure handed a resource or data
// source. It returns nil without error before the provider is configured
// (Terraform validates schemas before configuring providers).
func providerDataFrom(raw any) (*providerData, diag.Diagnostics) {
	var diags diag.Diagnostics
	if raw == nil {
		return nil, diags
	}
	data, ok := raw.(*providerData)
	if !ok {
		diags.AddError("Unexpected provider data", fmt.Sprintf("expected *providerData, got %T; this is a bug in the provider", raw))
	}
	return data, diags
}

// mergeTags returns the provider's default tags overlaid with own tags.
func (d *providerData) mergeTags(own map[string]string) map[string]string {
	out := make(map[string]string, len(d.defaultTags)+len(own))
	for k, v := range d.defaultTags {
		out[k] = v
	}
	for k, v := range own {
		out[k] = v
	}
	return out
}
