package provider

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/autoami/terraform-provider-autoami/internal/publisher"
)

func testRecords() map[string]publisher.Record {
	created := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	return map[string]publisher.Record{
		"222222222222/eu-west-1": {Target: "222222222222/eu-west-1", Revision: "r", Step: publisher.StepDone, ImageID: "ami-1", SnapshotID: "snap-1", Name: "web-1", CreatedAt: created},
		"222222222222/us-east-1": {Target: "222222222222/us-east-1", Revision: "r", Step: publisher.StepDone, ImageID: "ami-2", SnapshotID: "snap-2", Name: "web-1", CreatedAt: created},
		// Not published: left out of amis.
		"333333333333/us-east-1": {Target: "333333333333/us-east-1", Revision: "r", Step: publisher.StepRegister, SnapshotID: "snap-3"},
	}
}

// amis holds the published records only, and reads back as they were.
func TestAMIsRoundTrip(t *testing.T) {
	records := testRecords()
	amis := amisValue(records)
	if got := len(amis.Elements()); got != 2 {
		t.Fatalf("amis has %d elements, want the 2 published targets: %v", got, amis)
	}
	back := recordsFromAMIs(context.Background(), amis, "r")
	for k, want := range records {
		if !want.Published() {
			if _, ok := back[k]; ok {
				t.Errorf("%s: unpublished target in amis", k)
			}
			continue
		}
		if !reflect.DeepEqual(back[k], want) {
			t.Errorf("%s: read back %+v, want %+v", k, back[k], want)
		}
	}
}

// Drift shows in the state so that the plan restores it: a gone image's
// target leaves amis, permissions and the SSM parameter become unset,
// deprecation null, protection flipped; a warning names each detail.
func TestShowDrift(t *testing.T) {
	state := publishedAMIModel{
		AMIs:                     amisValue(testRecords()),
		LaunchPermission:         &launchPermissionModel{AccountIDs: stringSet([]string{"444444444444"})},
		SSMParameter:             &ssmParameterModel{Name: types.StringValue("/images/web"), Overwrite: types.BoolValue(false)},
		DeprecationTime:          types.StringValue("2026-12-30T12:00:00Z"),
		DeregistrationProtection: types.BoolValue(true),
	}
	var diags diag.Diagnostics
	showDrift(&state, map[string]publisher.Drift{
		"222222222222/eu-west-1": {ImageMissing: true, Details: []string{"image ami-1 was deregistered"}},
		"222222222222/us-east-1": {LaunchPermission: true, SSMParameter: true, Deprecation: true, Protection: true,
			Details: []string{"launch permission of 555555555555 added"}},
	}, &diags)
	if _, ok := state.AMIs.Elements()["222222222222/eu-west-1"]; ok || len(state.AMIs.Elements()) != 1 {
		t.Errorf("amis after drift: %v; want only 222222222222/us-east-1", state.AMIs)
	}
	if state.LaunchPermission != nil || state.SSMParameter != nil || !state.DeprecationTime.IsNull() || state.DeregistrationProtection.ValueBool() {
		t.Errorf("state after drift: launch_permission %v, ssm_parameter %v, deprecation %v, protection %v; want unset, unset, null, false",
			state.LaunchPermission, state.SSMParameter, state.DeprecationTime, state.DeregistrationProtection)
	}
	if diags.WarningsCount() != 1 || !strings.Contains(diags[0].Detail(), "222222222222/eu-west-1: image ami-1 was deregistered") ||
		!strings.Contains(diags[0].Detail(), "555555555555 added") {
		t.Errorf("diagnostics %v; want one warning naming both details", diags)
	}

	// Without a configured launch_permission an added grant shows as an
	// empty one in the state, so the plan still has something to restore.
	bare := publishedAMIModel{AMIs: amisValue(testRecords())}
	showDrift(&bare, map[string]publisher.Drift{"222222222222/us-east-1": {LaunchPermission: true}}, &diags)
	if bare.LaunchPermission == nil {
		t.Error("an unconfigured launch_permission that drifted stays null; the plan would not restore it")
	}

	// No drift: nothing changes, no warning.
	quiet := publishedAMIModel{AMIs: amisValue(testRecords())}
	var none diag.Diagnostics
	showDrift(&quiet, map[string]publisher.Drift{"222222222222/us-east-1": {}}, &none)
	if len(none) != 0 || len(quiet.AMIs.Elements()) != 2 {
		t.Errorf("no drift gave %v and amis %v", none, quiet.AMIs)
	}
}

func TestPlannedDeprecation(t *testing.T) {
	aim := time.Date(2026, 12, 30, 12, 1, 0, 0, time.UTC)
	policy := types.StringValue("/autoami/policies/default")
	state := &publishedAMIModel{PolicyID: policy, DeprecationTime: types.StringNull()}
	for _, tc := range []struct {
		name         string
		plan         publishedAMIModel
		sameRevision bool
		priv         publishedAMIPrivate
		want         types.String
	}{
		{"no policy", publishedAMIModel{PolicyID: types.StringNull()}, true, publishedAMIPrivate{DeprecateAt: aim}, types.StringNull()},
		{"same revision and policy: the aim, restoring drift", publishedAMIModel{PolicyID: policy}, true, publishedAMIPrivate{DeprecateAt: aim}, types.StringValue("2026-12-30T12:01:00Z")},
		{"new revision", publishedAMIModel{PolicyID: policy}, false, publishedAMIPrivate{DeprecateAt: aim}, types.StringUnknown()},
		{"other policy", publishedAMIModel{PolicyID: types.StringValue("/other")}, true, publishedAMIPrivate{DeprecateAt: aim}, types.StringUnknown()},
	} {
		if got := plannedDeprecation(&tc.plan, state, tc.sameRevision, tc.priv); !got.Equal(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRemovedKeys(t *testing.T) {
	got := removedKeys(map[string]string{"a": "1", "b": "2", "c": "3"}, map[string]string{"b": "9"})
	if !reflect.DeepEqual(got, []string{"a", "c"}) {
		t.Errorf("removedKeys = %v, want [a c]", got)
	}
}
