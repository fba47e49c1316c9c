package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-validators/float64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/autoami/terraform-provider-autoami/internal/policy"
	"github.com/autoami/terraform-provider-autoami/internal/policystore"
)

var (
	_ resource.ResourceWithConfigure   = (*policyResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*policyResource)(nil)
	_ resource.ResourceWithImportState = (*policyResource)(nil)
)

// NewPolicyResource is the constructor of autoami_policy.
func NewPolicyResource() resource.Resource { return &policyResource{} }

// policyResource manages a rebuild policy stored as a JSON SSM parameter in
// the home region. The rules themselves live in internal/policy; this file
// only maps them to a schema and to the parameter.
type policyResource struct {
	data *providerData
}

func (r *policyResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_policy"
}

// Descriptions shared by the schema and the docs.
const (
	delayForms    = "`immediate`, `manual`, or a duration: a whole number of minutes, hours, days or weeks (`30m`, `4h`, `7d`, `2w`, or combined largest first, `1d12h`)"
	durationForms = "a duration: a whole number of minutes, hours, days or weeks (`30m`, `4h`, `7d`, `2w`, or combined largest first, `1d12h`)"
)

func rebuildDelayAttribute(level, def string) schema.StringAttribute {
	return schema.StringAttribute{
		Optional: true,
		Computed: true,
		MarkdownDescription: fmt.Sprintf("Rebuild delay of a %s update: how long after the new base image's creation date "+
			"the stream may wait before it is rebuilt: %s. Default `%s`.", level, delayForms, def),
		Validators: []validator.String{policyStringValidator{kind: kindDelay}},
	}
}

func (r *policyResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	d := policy.Default()
	resp.Schema = schema.Schema{
		MarkdownDescription: "The rules for security rebuilds: the rebuild delay of each security level (how soon an " +
			"update must be built: `immediate`, a duration, or `manual`), the best-before age of published AMIs, the daily " +
			"off-peak build window, retention of old revisions and a cost budget.\n\n" +
			"The deadline of an update is the new base image's creation date plus its level's rebuild delay. Inside the " +
			"build window (or without one) a due rebuild is planned at once; outside it the rebuild is deferred to the " +
			"next build window, with a plan warning, unless that build window opens at or after the deadline, in which " +
			"case it is planned at once. A level whose rebuild delay is `manual` is never rebuilt without approval. An AMI is rebuilt in the last build window before it reaches `max_age`, or " +
			"at once when it is older.\n\n" +
			"The policy is stored as a JSON document in an SSM parameter of the provider's home region " +
			"(`" + defaultParameterPrefix + "<name>` by default), so it can be read and audited outside Terraform. " +
			"A change made to the parameter outside Terraform shows as drift in the next plan and is undone by apply; " +
			"a deleted parameter is recreated.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed: true,
				MarkdownDescription: "The full SSM parameter name, e.g. `" + defaultParameterPrefix + "prod`. " +
					"Give it to `policy_id` of image streams and published AMIs.",
			},
			"name": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "Name of the policy, e.g. `prod`: 1 to 128 letters, digits, `_`, `.` or `-`. Changing it replaces the policy.",
				Validators:          []validator.String{policyNameValidator{}},
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"parameter_prefix": schema.StringAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "Prefix of the SSM parameter holding the policy; it must start and end with `/`. " +
					"Default `" + defaultParameterPrefix + "`. Changing it moves (replaces) the policy.",
				Validators:    []validator.String{parameterPrefixValidator{}},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"parameter_name": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "Full name of the SSM parameter: `parameter_prefix` followed by `name`.",
			},
			"arn": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "ARN of the SSM parameter.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"rebuild_delays": schema.SingleNestedAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "The rebuild delay of each security level: how long after the new base image's creation " +
					"date an update of that level may wait before the stream is rebuilt. " +
					"An update's level comes from the base image's tags or an advisory feed; `unknown` is for updates neither labels.",
				Attributes: map[string]schema.Attribute{
					"critical": rebuildDelayAttribute("critical", d.RebuildDelays.Critical.String()),
					"high":     rebuildDelayAttribute("high", d.RebuildDelays.High.String()),
					"medium":   rebuildDelayAttribute("medium", d.RebuildDelays.Medium.String()),
					"low":      rebuildDelayAttribute("low", d.RebuildDelays.Low.String()),
					"unknown": schema.StringAttribute{
						Optional: true,
						Computed: true,
						MarkdownDescription: "Rebuild delay of an update of unknown level: " + delayForms +
							". Default: the same as `high`.",
						Validators: []validator.String{policyStringValidator{kind: kindDelay}},
					},
				},
			},
			"max_age": schema.StringAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "Best-before age of a published AMI, as " + durationForms + ". An AMI is rebuilt " +
					"before it gets older, and this is also its EC2 deprecation time. Default `" + policy.FormatDuration(d.MaxAge) + "`.",
				Validators: []validator.String{policyStringValidator{kind: kindDuration}},
			},
			"build_window": schema.SingleNestedAttribute{
				Optional: true,
				MarkdownDescription: "Daily off-peak window in which deferred rebuilds run. An `end` earlier than `start` " +
					"crosses midnight. On days when the clocks change, a time the clocks skip counts from the moment they " +
					"jump, and a time they pass twice is taken at its first reading for `start` and its second for `end`. " +
					"Without a build window, rebuilds run as soon as they are due.",
				Validators: []validator.Object{buildWindowValidator{}},
				Attributes: map[string]schema.Attribute{
					"start": schema.StringAttribute{
						Required:            true,
						MarkdownDescription: "Opening time, `HH:MM` (00:00 to 23:59), e.g. `02:00`.",
						Validators:          []validator.String{policyStringValidator{kind: kindClock}},
					},
					"end": schema.StringAttribute{
						Required:            true,
						MarkdownDescription: "Closing time, `HH:MM`; must differ from `start`.",
						Validators:          []validator.String{policyStringValidator{kind: kindClock}},
					},
					"timezone": schema.StringAttribute{
						Optional:            true,
						Computed:            true,
						MarkdownDescription: "IANA time zone of `start` and `end`, e.g. `Europe/Berlin`. Default `UTC`.",
						Validators:          []validator.String{policyStringValidator{kind: kindZone}},
					},
				},
			},
			"retention": schema.SingleNestedAttribute{
				Optional:            true,
				Computed:            true,
				MarkdownDescription: "Which superseded revisions stay published.",
				Attributes: map[string]schema.Attribute{
					"keep_revisions": schema.Int64Attribute{
						Optional: true,
						Computed: true,
						MarkdownDescription: fmt.Sprintf("Revisions kept registered, the current one included; older ones "+
							"are deprecated at once. At least 1. Default `%d`.", d.Retention.KeepRevisions),
						Validators: []validator.Int64{int64validator.Between(1, 1000)},
					},
					"deregister_after": schema.StringAttribute{
						Optional: true,
						Computed: true,
						MarkdownDescription: "How long a revision that fell out of the kept set stays registered (deprecated) " +
							"before it is deregistered: " + delayForms + "; `manual` means never automatically. Default `" +
							d.Retention.DeregisterAfter.String() + "`.",
						Validators: []validator.String{policyStringValidator{kind: kindDelay}},
					},
					"delete_snapshots": schema.BoolAttribute{
						Optional:            true,
						Computed:            true,
						MarkdownDescription: "Delete the snapshots of a deregistered revision too. Default `true`.",
					},
				},
			},
			"budget": schema.SingleNestedAttribute{
				Optional: true,
				MarkdownDescription: "Cap on the estimated monthly cost of a stream's publications (snapshot storage, the " +
					"unpackers' volumes and instance hours, from `prices`). A rebuild whose estimate exceeds it is reported " +
					"as over budget.",
				Attributes: map[string]schema.Attribute{
					"monthly_usd": schema.Float64Attribute{
						Required:            true,
						MarkdownDescription: "Monthly limit in US dollars.",
						Validators:          []validator.Float64{float64validator.AtLeast(0)},
					},
					"urgent_usd": schema.Float64Attribute{
						Optional:            true,
						Computed:            true,
						MarkdownDescription: "Extra room for critical security rebuilds only: their limit is `monthly_usd + urgent_usd`. Default `0`.",
						Validators:          []validator.Float64{float64validator.AtLeast(0)},
					},
				},
			},
			"prices": schema.MapNestedAttribute{
				Optional: true,
				MarkdownDescription: "Unit prices for the cost estimate, by region name, overriding the built-in table " +
					"(approximate 2025 on-demand list prices of EBS snapshot storage, gp3 storage and a t3.small unpacker). " +
					"The key `default` prices regions the table does not know.",
				Validators: []validator.Map{mapvalidator.KeysAre(stringvalidator.Any(
					stringvalidator.OneOf(policy.DefaultPricesKey), regionValidator()))},
				NestedObject: schema.NestedAttributeObject{
					Attributes: map[string]schema.Attribute{
						"snapshot_gib_month_usd": priceAttribute("EBS snapshot storage per GiB-month"),
						"volume_gib_month_usd":   priceAttribute("gp3 volume storage per GiB-month (the unpacker's persistent volume)"),
						"unpacker_hour_usd":      priceAttribute("one hour of the unpacker instance"),
					},
				},
			},
			"tags": schema.MapAttribute{
				ElementType:         types.StringType,
				Optional:            true,
				MarkdownDescription: "Tags of the SSM parameter. They override the provider's `default_tags`.",
			},
			"tags_all": schema.MapAttribute{
				ElementType:         types.StringType,
				Computed:            true,
				MarkdownDescription: "Tags of the SSM parameter, the provider's `default_tags` included.",
			},
			"summary": schema.StringAttribute{
				Computed: true,
				MarkdownDescription: "The rules in one line, e.g. `critical within 4h, high within 24h, medium within 7d, " +
					"low only after manual approval, unknown within 24h; best before 30d; builds 02:00-06:00 UTC; keeps 3 " +
					"revisions, deregisters older ones after 30d and deletes their snapshots; no budget`.",
			},
			"document": schema.StringAttribute{
				Computed: true,
				MarkdownDescription: "The JSON document stored in the parameter: every rule with defaults filled in. " +
					"Other autoami resources read policies in this form.",
			},
		},
	}
}

func priceAttribute(what string) schema.Float64Attribute {
	return schema.Float64Attribute{
		Required:            true,
		MarkdownDescription: "US dollars for " + what + ".",
		Validators:          []validator.Float64{float64validator.AtLeast(0)},
	}
}

func (r *policyResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	data, diags := providerDataFrom(req.ProviderData)
	resp.Diagnostics.Append(diags...)
	r.data = data
}

// ModifyPlan fills defaults from the engine and computes the derived
// attributes, so the plan shows every rule and the summary before apply.
func (r *policyResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || r.data == nil {
		return // destroy, or validation before the provider is configured
	}
	var cfg policyResourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	planned, diags := resolvePolicyPlan(ctx, cfg, r.data)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	var plan policyResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	planned.ARN = plan.ARN // UseStateForUnknown, or unknown on create/replace
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &planned)...)
}

func (r *policyResource) store(ctx context.Context) (*policystore.Store, error) {
	return policyStoreOf(ctx, r.data)
}

// policyStoreOf opens the policy store of the provider's home region.
func policyStoreOf(ctx context.Context, data *providerData) (*policystore.Store, error) {
	if data == nil {
		return nil, errors.New("the provider is not configured")
	}
	c, err := data.clients.Home(ctx)
	if err != nil {
		return nil, fmt.Errorf("AWS clients for the home region: %w", err)
	}
	return policystore.New(c.SSM, c.Target.Region), nil
}

// applied returns the plan as it will be stored: the policy and the tags; it
// sets the plan's summary and document.
func (r *policyResource) applied(ctx context.Context, plan *policyResourceModel) (policy.Policy, map[string]string, bool) {
	p, ok, diags := policyFromModel(ctx, *plan)
	if diags.HasError() || !ok {
		return policy.Policy{}, nil, false
	}
	doc, err := p.Document()
	if err != nil {
		return policy.Policy{}, nil, false
	}
	tags := map[string]string{}
	if diags := plan.TagsAll.ElementsAs(ctx, &tags, false); diags.HasError() {
		return policy.Policy{}, nil, false
	}
	plan.Summary, plan.Document = types.StringValue(p.Summary()), types.StringValue(string(doc))
	return p, tags, true
}

func (r *policyResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan policyResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	p, tags, ok := r.applied(ctx, &plan)
	if !ok {
		resp.Diagnostics.AddError("Incomplete policy", "the policy still has unknown or invalid values at apply; this is a bug in the provider")
		return
	}
	store, err := r.store(ctx)
	if err != nil {
		resp.Diagnostics.AddError("Cannot create policy", err.Error())
		return
	}
	name := plan.ParameterName.ValueString()
	err = store.Create(ctx, name, p, tags)
	if errors.Is(err, policystore.ErrExists) {
		resp.Diagnostics.AddError("Cannot create policy", fmt.Sprintf(
			"policy parameter %s already exists in %s: import it (terraform import <address> %s) or choose another name or parameter_prefix",
			name, store.Region(), name))
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot create policy", err.Error())
		return
	}
	stored, err := store.Get(ctx, name)
	if err != nil {
		resp.Diagnostics.AddError("Cannot read the created policy", fmt.Sprintf("policy parameter %s: %v", name, err))
		return
	}
	plan.ARN = types.StringValue(stored.ARN)
	tflog.Info(ctx, "created policy", map[string]any{"parameter": name, "summary": p.Summary()})
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *policyResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state policyResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	store, err := r.store(ctx)
	if err != nil {
		resp.Diagnostics.AddError("Cannot read policy", err.Error())
		return
	}
	name := state.ParameterPrefix.ValueString() + state.Name.ValueString()
	stored, err := store.Get(ctx, name)
	if errors.Is(err, policystore.ErrNotFound) {
		if !state.Document.IsNull() { // an import of a missing policy is an error, below
			resp.Diagnostics.AddWarning("Policy deleted outside Terraform",
				fmt.Sprintf("The SSM parameter %s of policy %q is gone; the next apply recreates it.", name, state.Name.ValueString()))
			resp.State.RemoveResource(ctx)
			return
		}
		resp.Diagnostics.AddError("Policy not found", fmt.Sprintf("There is no SSM parameter %s in %s.", name, store.Region()))
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot read policy", err.Error())
		return
	}
	imported := state.Document.IsNull()
	state.ID = types.StringValue(name)
	state.ParameterName = types.StringValue(name)
	state.ARN = types.StringValue(stored.ARN)
	state.Document = types.StringValue(stored.Document)

	remote, perr := policy.ParseDocument([]byte(stored.Document))
	switch {
	case perr != nil && imported:
		resp.Diagnostics.AddError("Cannot import policy", fmt.Sprintf("SSM parameter %s: %v", name, perr))
		return
	case perr != nil:
		// Keep the rules Terraform knows; the document differs from the
		// planned one, so apply rewrites it.
		resp.Diagnostics.AddWarning("Policy changed outside Terraform",
			fmt.Sprintf("The SSM parameter %s no longer holds a valid policy (%v); the next apply restores it.", name, perr))
	default:
		current, ok, _ := policyFromModel(ctx, state)
		if !ok || !remote.Equal(current) {
			if ok {
				resp.Diagnostics.AddWarning("Policy changed outside Terraform",
					fmt.Sprintf("The SSM parameter %s now says: %s. The next apply restores the configured rules.", name, remote.Summary()))
			}
			resp.Diagnostics.Append(setModelFromPolicy(ctx, remote, &state)...)
		}
		state.Summary = types.StringValue(remote.Summary())
	}

	// Tags: tags_all is what the parameter has; tags is that less the
	// provider's default tags, except keys the configuration sets itself.
	state.TagsAll = stringMap(stored.Tags, &resp.Diagnostics)
	configured := map[string]string{}
	if !state.Tags.IsNull() && !state.Tags.IsUnknown() {
		resp.Diagnostics.Append(state.Tags.ElementsAs(ctx, &configured, false)...)
	}
	own := map[string]string{}
	for k, v := range stored.Tags {
		_, mine := configured[k]
		if dv, isDefault := r.data.defaultTags[k]; mine || !isDefault || dv != v {
			own[k] = v
		}
	}
	if len(own) == 0 && state.Tags.IsNull() {
		state.Tags = types.MapNull(types.StringType)
	} else {
		state.Tags = stringMap(own, &resp.Diagnostics)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *policyResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state policyResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	p, tags, ok := r.applied(ctx, &plan)
	if !ok {
		resp.Diagnostics.AddError("Incomplete policy", "the policy still has unknown or invalid values at apply; this is a bug in the provider")
		return
	}
	oldTags := map[string]string{}
	resp.Diagnostics.Append(state.TagsAll.ElementsAs(ctx, &oldTags, false)...)
	store, err := r.store(ctx)
	if err != nil {
		resp.Diagnostics.AddError("Cannot update policy", err.Error())
		return
	}
	name := plan.ParameterName.ValueString()
	if err := store.Update(ctx, name, p, oldTags, tags); err != nil {
		resp.Diagnostics.AddError("Cannot update policy", err.Error())
		return
	}
	stored, err := store.Get(ctx, name)
	if err != nil {
		resp.Diagnostics.AddError("Cannot read the updated policy", fmt.Sprintf("policy parameter %s: %v", name, err))
		return
	}
	plan.ARN = types.StringValue(stored.ARN)
	tflog.Info(ctx, "updated policy", map[string]any{"parameter": name, "summary": p.Summary()})
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *policyResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state policyResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	store, err := r.store(ctx)
	if err != nil {
		resp.Diagnostics.AddError("Cannot delete policy", err.Error())
		return
	}
	if err := store.Delete(ctx, state.ParameterName.ValueString()); err != nil {
		resp.Diagnostics.AddError("Cannot delete policy", err.Error())
	}
}

// ImportState takes a policy name (under the default prefix) or the full
// parameter name, e.g. /team/policies/prod.
func (r *policyResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	prefix, name, err := splitPolicyImportID(req.ID)
	if err != nil {
		resp.Diagnostics.AddError("Invalid import ID", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), prefix+name)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), name)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("parameter_prefix"), prefix)...)
}
