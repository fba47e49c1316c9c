package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/autoami/terraform-provider-autoami/internal/policy"
)

func TestReadRebuildDecision(t *testing.T) {
	for _, tc := range []struct {
		raw, want, err string
	}{
		{raw: "", want: ""},
		{raw: `{"action":"nothing to do","headline":"","reason":"","new_name":""}`, want: "nothing to do"},
		{raw: `{"action":"rebuild now","headline":"h","reason":"r","new_name":"vendor-2"}`, want: "rebuild now"},
		{raw: `{"action":"deferred","headline":"h","reason":"r","new_name":"vendor-2"}`, want: "deferred"},
		{raw: `{"action":"awaiting approval","headline":"h","reason":"r","new_name":"vendor-2"}`, want: "awaiting approval"},
		{raw: `{"action": 3}`, err: "not a rebuild decision"},
		{raw: `{"action":"rebuild now","new_name":"x","level":"high"}`, err: `unknown field "level"`},
		{raw: `"rebuild now"`, err: "not a rebuild decision"},
		{raw: `{"action":"explode"}`, err: `unknown action "explode"`},
		{raw: `{"action":"rebuild now"}`, err: "a rebuild without the base image to rebuild on"},
	} {
		d, err := readRebuildDecision([]byte(tc.raw))
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want %q", tc.raw, err, tc.err)
		case tc.err == "" && (err != nil || d.Action != tc.want):
			t.Errorf("%s: got %+v, %v; want action %q", tc.raw, d, err, tc.want)
		}
	}
}

// TestPlanBaseImageRefusesAnUnreadableDecision: a stored decision that cannot
// be read fails the plan with a way out, instead of being dropped (which
// could skip a due security rebuild).
func TestPlanBaseImageRefusesAnUnreadableDecision(t *testing.T) {
	selector := func() *baseImageSelectorModel {
		return &baseImageSelectorModel{
			baseImageLookupModel: baseImageLookupModel{
				SSMParameter: types.StringValue("/vendor/base"), Owners: types.ListNull(types.StringType),
				Name: types.StringNull(), Architecture: types.StringNull(), IncludeDeprecated: types.BoolNull(),
			},
			Regions: types.ListNull(types.StringType),
		}
	}
	state := &imageStreamModel{
		Name: types.StringValue("app/vendor"), BaseImage: selector(), RebuildTrigger: types.StringNull(),
		BaseImageName: types.StringValue("vendor-1"), LatestBaseImage: types.ObjectNull(latestBaseImageAttrTypes),
	}
	plan := *state
	plan.BaseImage = selector()
	r := &imageStreamResource{} // this path calls no AWS

	var diags diag.Diagnostics
	got := r.planBaseImage(context.Background(), &plan, state, []byte(`{"action":"rebuild now"}`), &diags)
	if !diags.HasError() || got.name != "" {
		t.Fatalf("planned %+v with diagnostics %v; want an error", got, diags)
	}
	if detail := diags.Errors()[0].Detail(); !strings.Contains(detail, `stream "app/vendor" cannot be read: a rebuild without the base image`) ||
		!strings.Contains(detail, "Plan again with refresh") {
		t.Fatalf("detail %q", detail)
	}

	// The same stream with a readable decision plans it.
	diags = nil
	got = r.planBaseImage(context.Background(), &plan, state,
		[]byte(`{"action":"`+policy.RebuildNow.String()+`","headline":"Rebuild due now","reason":"r","new_name":"vendor-2"}`), &diags)
	if diags.HasError() || got.name != "vendor-2" {
		t.Fatalf("planned %+v with diagnostics %v; want vendor-2", got, diags)
	}
}
