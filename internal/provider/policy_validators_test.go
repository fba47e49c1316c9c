package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

func TestPolicyStringValidator(t *testing.T) {
	tests := []struct {
		kind    policyStringKind
		value   types.String
		wantErr string // "" = valid
	}{
		{kindDelay, types.StringValue("immediate"), ""},
		{kindDelay, types.StringValue("manual"), ""},
		{kindDelay, types.StringValue("1d12h"), ""},
		{kindDelay, types.StringValue("soon"), "rebuild_delays.high: invalid delay \"soon\": want `immediate`, `manual`, or"},
		{kindDelay, types.StringNull(), ""},
		{kindDelay, types.StringUnknown(), ""},
		{kindDuration, types.StringValue("2w"), ""},
		{kindDuration, types.StringValue("immediate"), "invalid duration \"immediate\""},
		{kindClock, types.StringValue("02:00"), ""},
		{kindClock, types.StringValue("2am"), "invalid time of day \"2am\""},
		{kindZone, types.StringValue("America/New_York"), ""},
		{kindZone, types.StringValue("EST5EDT8"), "unknown time zone"},
	}
	at := path.Root("rebuild_delays").AtName("high")
	for _, tc := range tests {
		resp := &validator.StringResponse{}
		policyStringValidator{kind: tc.kind}.ValidateString(context.Background(),
			validator.StringRequest{Path: at, ConfigValue: tc.value}, resp)
		switch {
		case tc.wantErr == "" && resp.Diagnostics.HasError():
			t.Errorf("kind %d, %v: unexpected error %v", tc.kind, tc.value, resp.Diagnostics)
		case tc.wantErr != "" && !resp.Diagnostics.HasError():
			t.Errorf("kind %d, %v: no error, want %q", tc.kind, tc.value, tc.wantErr)
		case tc.wantErr != "":
			d := resp.Diagnostics.Errors()[0]
			if !strings.Contains(d.Detail(), tc.wantErr) || !strings.Contains(d.Summary(), "rebuild_delays.high") {
				t.Errorf("kind %d, %v: error %q / %q, want detail containing %q", tc.kind, tc.value, d.Summary(), d.Detail(), tc.wantErr)
			}
		}
	}
}

func TestBuildWindowValidator(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		start, end string
		wantErr    bool
	}{
		{"02:00", "06:00", false},
		{"22:00", "02:00", false},
		{"02:00", "02:00", true},
		{"2:00", "02:00", true},
		{"25:00", "02:00", false}, // the start attribute's own validator reports it
	} {
		resp := &validator.ObjectResponse{}
		obj := objectFrom(ctx, buildWindowAttrTypes, buildWindowModel{
			Start: types.StringValue(tc.start), End: types.StringValue(tc.end), Timezone: types.StringNull(),
		}, &resp.Diagnostics)
		buildWindowValidator{}.ValidateObject(ctx, validator.ObjectRequest{Path: path.Root("build_window"), ConfigValue: obj}, resp)
		if resp.Diagnostics.HasError() != tc.wantErr {
			t.Errorf("%s-%s: errors %v, want error %v", tc.start, tc.end, resp.Diagnostics, tc.wantErr)
		}
	}
}

func TestPolicyNameAndPrefix(t *testing.T) {
	for _, ok := range []string{"prod", "web.v2", "a_b-c", strings.Repeat("x", 128)} {
		if err := checkPolicyName(ok); err != nil {
			t.Errorf("checkPolicyName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a/b", "has space", strings.Repeat("x", 129), "ünï"} {
		if err := checkPolicyName(bad); err == nil {
			t.Errorf("checkPolicyName(%q) accepted", bad)
		}
	}
	for _, ok := range []string{"/", "/autoami/policies/", "/team-a/rules/"} {
		if err := checkParameterPrefix(ok); err != nil {
			t.Errorf("checkParameterPrefix(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "autoami/", "/autoami", "/a//b/", "/aws/x/", "/SSM/x/", "/" + strings.Repeat("x/", 500)} {
		if err := checkParameterPrefix(bad); err == nil {
			t.Errorf("checkParameterPrefix(%q) accepted", bad)
		}
	}
}
