package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/resource"
)

func TestUnpackerSchemaIsValid(t *testing.T) {
	ctx := context.Background()
	var resp resource.SchemaResponse
	(&unpackerResource{}).Schema(ctx, resource.SchemaRequest{}, &resp)
	if resp.Diagnostics.HasError() {
		t.Fatal(resp.Diagnostics)
	}
	if diags := resp.Schema.ValidateImplementation(ctx); diags.HasError() {
		t.Fatal(diags)
	}
	target := resp.Schema.Attributes["target"]
	if target == nil {
		t.Fatal("no target attribute")
	}
	for name, a := range resp.Schema.Attributes {
		if a.GetMarkdownDescription() == "" && name != "timeouts" {
			t.Errorf("%s has no description", name)
		}
	}
}

func TestSplitUnpackerImportID(t *testing.T) {
	for id, want := range map[string][3]string{
		"eu-west-1/i-0123456789abcdef0":                                        {"", "eu-west-1", "i-0123456789abcdef0"},
		"arn:aws:iam::222222222222:role/autoami/unpacker/us-east-2/i-01234567": {"arn:aws:iam::222222222222:role/autoami/unpacker", "us-east-2", "i-01234567"},
	} {
		role, region, inst, err := splitUnpackerImportID(id)
		if err != nil || [3]string{role, region, inst} != want {
			t.Errorf("%s: %q %q %q %v; want %q", id, role, region, inst, err, want)
		}
	}
	for id, want := range map[string]string{
		"i-0123456789abcdef0":                    "REGION/INSTANCE_ID",
		"eu-west-1/vol-0123456789abcdef0":        "not an instance ID",
		"Europe/i-0123456789abcdef0":             "Europe",
		"notarole/eu-west-1/i-0123456789abcdef0": "not an IAM role ARN",
	} {
		if _, _, _, err := splitUnpackerImportID(id); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want an error containing %q", id, err, want)
		}
	}
}
