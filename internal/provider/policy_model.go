package provider

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"

	"github.com/autoami/terraform-provider-autoami/internal/policy"
)

// defaultParameterPrefix is where policies are stored unless
// parameter_prefix says otherwise.
const defaultParameterPrefix = "/autoami/policies/"

// defaultDeleteSnapshots: deregistered revisions leave nothing behind unless
// the configuration says otherwise.
const defaultDeleteSnapshots = true

// policyResourceModel is the state and plan of autoami_policy.
type policyResourceModel struct {
	ID              types.String `tfsdk:"id"`
	Name            types.String `tfsdk:"name"`
	ParameterPrefix types.String `tfsdk:"parameter_prefix"`
	ParameterName   types.String `tfsdk:"parameter_name"`
	ARN             types.String `tfsdk:"arn"`
	RebuildDelays   types.Object `tfsdk:"rebuild_delays"`
	MaxAge          types.String `tfsdk:"max_age"`
	BuildWindow     types.Object `tfsdk:"build_window"`
	Retention       types.Object `tfsdk:"retention"`
	Budget          types.Object `tfsdk:"budget"`
	Prices          types.Map    `tfsdk:"prices"`
	Tags            types.Map    `tfsdk:"tags"`
	TagsAll         types.Map    `tfsdk:"tags_all"`
	Summary         types.String `tfsdk:"summary"`
	Document        types.String `tfsdk:"document"`
}

type rebuildDelaysModel struct {
	Critical types.String `tfsdk:"critical"`
	High     types.String `tfsdk:"high"`
	Medium   types.String `tfsdk:"medium"`
	Low      types.String `tfsdk:"low"`
	Unknown  types.String `tfsdk:"unknown"`
}

type buildWindowModel struct {
	Start    types.String `tfsdk:"start"`
	End      types.String `tfsdk:"end"`
	Timezone types.String `tfsdk:"timezone"`
}

type retentionModel struct {
	KeepRevisions   types.Int64  `tfsdk:"keep_revisions"`
	DeregisterAfter types.String `tfsdk:"deregister_after"`
	DeleteSnapshots types.Bool   `tfsdk:"delete_snapshots"`
}

type budgetModel struct {
	MonthlyUSD types.Float64 `tfsdk:"monthly_usd"`
	UrgentUSD  types.Float64 `tfsdk:"urgent_usd"`
}

type priceModel struct {
	SnapshotGiBMonthUSD types.Float64 `tfsdk:"snapshot_gib_month_usd"`
	VolumeGiBMonthUSD   types.Float64 `tfsdk:"volume_gib_month_usd"`
	UnpackerHourUSD     types.Float64 `tfsdk:"unpacker_hour_usd"`
}

var (
	rebuildDelaysAttrTypes = map[string]attr.Type{
		"critical": types.StringType, "high": types.StringType, "medium": types.StringType,
		"low": types.StringType, "unknown": types.StringType,
	}
	buildWindowAttrTypes = map[string]attr.Type{
		"start": types.StringType, "end": types.StringType, "timezone": types.StringType,
	}
	retentionAttrTypes = map[string]attr.Type{
		"keep_revisions": types.Int64Type, "deregister_after": types.StringType, "delete_snapshots": types.BoolType,
	}
	budgetAttrTypes = map[string]attr.Type{
		"monthly_usd": types.Float64Type, "urgent_usd": types.Float64Type,
	}
	priceAttrTypes = map[string]attr.Type{
		"snapshot_gib_month_usd": types.Float64Type, "volume_gib_month_usd": types.Float64Type,
		"unpacker_hour_usd": types.Float64Type,
	}
	priceObjectType = types.ObjectType{AttrTypes: priceAttrTypes}
)

// objectAsOptions: nested objects are checked for null and unknown before
// they are converted, and their fields are framework types that carry
// null and unknown themselves.
var objectAsOptions = basetypes.ObjectAsOptions{}

// resolvePolicyPlan fills every default of an autoami_policy configuration
// into the plan, from the engine's defaults, and computes parameter_name,
// tags_all, summary and document when the configuration is known. The same
// configuration always gives the same plan, so plans are stable.
func resolvePolicyPlan(ctx context.Context, cfg policyResourceModel, data *providerData) (policyResourceModel, diag.Diagnostics) {
	var diags diag.Diagnostics
	m := cfg
	defaults := policy.Default()

	if m.ParameterPrefix.IsNull() {
		m.ParameterPrefix = types.StringValue(defaultParameterPrefix)
	}
	if known(m.ParameterPrefix) && known(m.Name) {
		m.ParameterName = types.StringValue(m.ParameterPrefix.ValueString() + m.Name.ValueString())
	} else {
		m.ParameterName = types.StringUnknown()
	}
	m.ID = m.ParameterName // what image streams and published AMIs take as policy_id

	if !cfg.RebuildDelays.IsUnknown() {
		var delays rebuildDelaysModel
		if !cfg.RebuildDelays.IsNull() {
			diags.Append(cfg.RebuildDelays.As(ctx, &delays, objectAsOptions)...)
		}
		d := defaults.RebuildDelays
		delays.Critical = stringOr(delays.Critical, d.Critical.String())
		delays.High = stringOr(delays.High, d.High.String())
		delays.Medium = stringOr(delays.Medium, d.Medium.String())
		delays.Low = stringOr(delays.Low, d.Low.String())
		if delays.Unknown.IsNull() {
			delays.Unknown = delays.High // unknown follows high unless set
		}
		m.RebuildDelays = objectFrom(ctx, rebuildDelaysAttrTypes, delays, &diags)
	}
	m.MaxAge = stringOr(cfg.MaxAge, policy.FormatDuration(defaults.MaxAge))

	if known(cfg.BuildWindow) {
		var bw buildWindowModel
		diags.Append(cfg.BuildWindow.As(ctx, &bw, objectAsOptions)...)
		bw.Timezone = stringOr(bw.Timezone, "UTC")
		m.BuildWindow = objectFrom(ctx, buildWindowAttrTypes, bw, &diags)
	}

	if !cfg.Retention.IsUnknown() {
		var r retentionModel
		if !cfg.Retention.IsNull() {
			diags.Append(cfg.Retention.As(ctx, &r, objectAsOptions)...)
		}
		if r.KeepRevisions.IsNull() {
			r.KeepRevisions = types.Int64Value(int64(defaults.Retention.KeepRevisions))
		}
		r.DeregisterAfter = stringOr(r.DeregisterAfter, defaults.Retention.DeregisterAfter.String())
		if r.DeleteSnapshots.IsNull() {
			r.DeleteSnapshots = types.BoolValue(defaultDeleteSnapshots)
		}
		m.Retention = objectFrom(ctx, retentionAttrTypes, r, &diags)
	}

	if known(cfg.Budget) {
		var b budgetModel
		diags.Append(cfg.Budget.As(ctx, &b, objectAsOptions)...)
		if b.UrgentUSD.IsNull() {
			b.UrgentUSD = types.Float64Value(0)
		}
		m.Budget = objectFrom(ctx, budgetAttrTypes, b, &diags)
	}

	m.TagsAll = types.MapUnknown(types.StringType)
	if !cfg.Tags.IsUnknown() {
		own := map[string]string{}
		if !cfg.Tags.IsNull() {
			diags.Append(cfg.Tags.ElementsAs(ctx, &own, false)...)
		}
		m.TagsAll = stringMap(data.mergeTags(own), &diags)
	}

	m.Summary, m.Document = types.StringUnknown(), types.StringUnknown()
	if diags.HasError() {
		return m, diags
	}
	p, ok, pdiags := policyFromModel(ctx, m)
	diags.Append(pdiags...)
	if ok && !diags.HasError() {
		doc, err := p.Document()
		if err != nil {
			diags.AddError("Invalid policy", err.Error())
			return m, diags
		}
		m.Summary, m.Document = types.StringValue(p.Summary()), types.StringValue(string(doc))
	}
	return m, diags
}

// policyFromModel builds the engine's policy from a resolved model. ok is
// false when a value is still unknown (or, in a freshly imported state,
// null), so there is no complete policy yet.
func policyFromModel(ctx context.Context, m policyResourceModel) (policy.Policy, bool, diag.Diagnostics) {
	var diags diag.Diagnostics
	for _, v := range []interface {
		IsNull() bool
		IsUnknown() bool
	}{m.Name, m.RebuildDelays, m.MaxAge, m.Retention} {
		if !known(v) {
			return policy.Policy{}, false, diags
		}
	}
	for _, v := range []interface{ IsUnknown() bool }{m.BuildWindow, m.Budget, m.Prices} {
		if v.IsUnknown() {
			return policy.Policy{}, false, diags
		}
	}
	p := policy.Policy{Name: m.Name.ValueString()}
	allKnown := true
	parseDelay := func(at path.Path, v types.String, into *policy.Delay) {
		if !known(v) {
			allKnown = false
			return
		}
		w, err := policy.ParseDelay(v.ValueString())
		if err != nil {
			diags.AddAttributeError(at, "Invalid "+attributeName(at), attributeName(at)+": "+err.Error())
			return
		}
		*into = w
	}

	var delays rebuildDelaysModel
	diags.Append(m.RebuildDelays.As(ctx, &delays, objectAsOptions)...)
	delaysPath := path.Root("rebuild_delays")
	parseDelay(delaysPath.AtName("critical"), delays.Critical, &p.RebuildDelays.Critical)
	parseDelay(delaysPath.AtName("high"), delays.High, &p.RebuildDelays.High)
	parseDelay(delaysPath.AtName("medium"), delays.Medium, &p.RebuildDelays.Medium)
	parseDelay(delaysPath.AtName("low"), delays.Low, &p.RebuildDelays.Low)
	parseDelay(delaysPath.AtName("unknown"), delays.Unknown, &p.RebuildDelays.Unknown)

	maxAge, err := policy.ParseDuration(m.MaxAge.ValueString())
	if err != nil {
		diags.AddAttributeError(path.Root("max_age"), "Invalid max_age", "max_age: "+err.Error())
	}
	p.MaxAge = maxAge

	if !m.BuildWindow.IsNull() {
		var bw buildWindowModel
		diags.Append(m.BuildWindow.As(ctx, &bw, objectAsOptions)...)
		if !known(bw.Start) || !known(bw.End) || !known(bw.Timezone) {
			allKnown = false
		} else if w, err := policy.ParseBuildWindow(bw.Start.ValueString(), bw.End.ValueString(), bw.Timezone.ValueString()); err != nil {
			diags.AddAttributeError(path.Root("build_window"), "Invalid build_window", "build_window: "+err.Error())
		} else {
			p.BuildWindow = &w
		}
	}

	var r retentionModel
	diags.Append(m.Retention.As(ctx, &r, objectAsOptions)...)
	if !known(r.KeepRevisions) || !known(r.DeleteSnapshots) {
		allKnown = false
	} else {
		p.Retention.KeepRevisions = int(r.KeepRevisions.ValueInt64())
		p.Retention.DeleteSnapshots = r.DeleteSnapshots.ValueBool()
	}
	parseDelay(path.Root("retention").AtName("deregister_after"), r.DeregisterAfter, &p.Retention.DeregisterAfter)

	if !m.Budget.IsNull() {
		var b budgetModel
		diags.Append(m.Budget.As(ctx, &b, objectAsOptions)...)
		if !known(b.MonthlyUSD) || !known(b.UrgentUSD) {
			allKnown = false
		} else {
			p.Budget = &policy.Budget{MonthlyUSD: b.MonthlyUSD.ValueFloat64(), UrgentUSD: b.UrgentUSD.ValueFloat64()}
		}
	}

	if !m.Prices.IsNull() {
		prices := map[string]priceModel{}
		diags.Append(m.Prices.ElementsAs(ctx, &prices, false)...)
		p.Prices = map[string]policy.RegionPrices{}
		for region, pm := range prices {
			if !known(pm.SnapshotGiBMonthUSD) || !known(pm.VolumeGiBMonthUSD) || !known(pm.UnpackerHourUSD) {
				allKnown = false
				continue
			}
			p.Prices[region] = policy.RegionPrices{
				SnapshotGiBMonthUSD: pm.SnapshotGiBMonthUSD.ValueFloat64(),
				VolumeGiBMonthUSD:   pm.VolumeGiBMonthUSD.ValueFloat64(),
				UnpackerHourUSD:     pm.UnpackerHourUSD.ValueFloat64(),
			}
		}
	}
	if diags.HasError() || !allKnown {
		return policy.Policy{}, false, diags
	}
	if err := p.Validate(); err != nil {
		diags.AddError("Invalid policy", err.Error())
		return policy.Policy{}, false, diags
	}
	return p, true, diags
}

// setModelFromPolicy writes p's rules into m in canonical notation; used on
// import and when the stored policy was changed outside Terraform.
func setModelFromPolicy(ctx context.Context, p policy.Policy, m *policyResourceModel) diag.Diagnostics {
	var diags diag.Diagnostics
	p = p.WithDefaults()
	delays := p.RebuildDelays
	m.RebuildDelays = objectFrom(ctx, rebuildDelaysAttrTypes, rebuildDelaysModel{
		Critical: types.StringValue(delays.Critical.String()),
		High:     types.StringValue(delays.High.String()),
		Medium:   types.StringValue(delays.Medium.String()),
		Low:      types.StringValue(delays.Low.String()),
		Unknown:  types.StringValue(delays.Unknown.String()),
	}, &diags)
	m.MaxAge = types.StringValue(policy.FormatDuration(p.MaxAge))
	m.BuildWindow = types.ObjectNull(buildWindowAttrTypes)
	if bw := p.BuildWindow; bw != nil {
		m.BuildWindow = objectFrom(ctx, buildWindowAttrTypes, buildWindowModel{
			Start: types.StringValue(bw.Start()), End: types.StringValue(bw.End()), Timezone: types.StringValue(bw.Zone()),
		}, &diags)
	}
	m.Retention = objectFrom(ctx, retentionAttrTypes, retentionModel{
		KeepRevisions:   types.Int64Value(int64(p.Retention.KeepRevisions)),
		DeregisterAfter: types.StringValue(p.Retention.DeregisterAfter.String()),
		DeleteSnapshots: types.BoolValue(p.Retention.DeleteSnapshots),
	}, &diags)
	m.Budget = types.ObjectNull(budgetAttrTypes)
	if b := p.Budget; b != nil {
		m.Budget = objectFrom(ctx, budgetAttrTypes, budgetModel{
			MonthlyUSD: types.Float64Value(b.MonthlyUSD), UrgentUSD: types.Float64Value(b.UrgentUSD),
		}, &diags)
	}
	m.Prices = types.MapNull(priceObjectType)
	if len(p.Prices) > 0 {
		prices := make(map[string]priceModel, len(p.Prices))
		for region, rp := range p.Prices {
			prices[region] = priceModel{
				SnapshotGiBMonthUSD: types.Float64Value(rp.SnapshotGiBMonthUSD),
				VolumeGiBMonthUSD:   types.Float64Value(rp.VolumeGiBMonthUSD),
				UnpackerHourUSD:     types.Float64Value(rp.UnpackerHourUSD),
			}
		}
		v, d := types.MapValueFrom(ctx, priceObjectType, prices)
		diags.Append(d...)
		m.Prices = v
	}
	return diags
}

// splitPolicyImportID reads an import ID: a policy name (stored under the
// default prefix) or a full parameter name such as /team/policies/prod.
func splitPolicyImportID(id string) (prefix, name string, err error) {
	id = strings.TrimSpace(id)
	if !strings.HasPrefix(id, "/") {
		if err := checkPolicyName(id); err != nil {
			return "", "", fmt.Errorf("import ID %q: %w; or give the full parameter name, e.g. %s%s", id, err, defaultParameterPrefix, "prod")
		}
		return defaultParameterPrefix, id, nil
	}
	i := strings.LastIndex(id, "/")
	prefix, name = id[:i+1], id[i+1:]
	if err := checkParameterPrefix(prefix); err != nil {
		return "", "", fmt.Errorf("import ID %q: %w", id, err)
	}
	if err := checkPolicyName(name); err != nil {
		return "", "", fmt.Errorf("import ID %q: %w", id, err)
	}
	return prefix, name, nil
}

func stringOr(v types.String, def string) types.String {
	if v.IsNull() {
		return types.StringValue(def)
	}
	return v
}

func objectFrom(ctx context.Context, attrTypes map[string]attr.Type, v any, diags *diag.Diagnostics) types.Object {
	obj, d := types.ObjectValueFrom(ctx, attrTypes, v)
	diags.Append(d...)
	return obj
}

func stringMap(m map[string]string, diags *diag.Diagnostics) types.Map {
	elems := make(map[string]attr.Value, len(m))
	for k, v := range m {
		elems[k] = types.StringValue(v)
	}
	v, d := types.MapValue(types.StringType, elems)
	diags.Append(d...)
	return v
}
