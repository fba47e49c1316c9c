package provider

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/autoami/terraform-provider-autoami/internal/contentstore"
	"github.com/autoami/terraform-provider-autoami/internal/publisher"
)

// ModifyPlan checks what can be checked before anything is made (the
// publisher's validation, the stream's kind) and plans the computed
// attributes: the `amis` of targets that keep their AMI stay known, the
// targets (re)published are unknown; deprecation_time stays while the
// revision and policy do.
func (r *publishedAMIResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var plan publishedAMIModel
	if resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...); resp.Diagnostics.HasError() {
		return
	}
	var state *publishedAMIModel
	if !req.State.Raw.IsNull() {
		state = &publishedAMIModel{}
		if resp.Diagnostics.Append(req.State.Get(ctx, state)...); resp.Diagnostics.HasError() {
			return
		}
	}
	r.validatePlan(ctx, &plan, resp)
	if resp.Diagnostics.HasError() {
		return
	}
	priv, d := readPublishedAMIPrivate(ctx, req.Private)
	resp.Diagnostics.Append(d...)

	if !plan.ImageStream.IsUnknown() {
		plan.ID = plan.ImageStream
	}
	if tags := plan.Tags; tags.IsUnknown() || r.data == nil {
		plan.TagsAll = types.MapUnknown(types.StringType)
	} else {
		plan.TagsAll = stringMap(r.data.mergeTags(mapOf(ctx, tags, &resp.Diagnostics)), &resp.Diagnostics)
	}
	sameRevision := state != nil && !plan.Revision.IsUnknown() && plan.Revision.Equal(state.Revision) && !state.Targets.IsNull()
	plan.AMIs = r.plannedAMIs(ctx, &plan, state, sameRevision, resp)
	plan.DeprecationTime = plannedDeprecation(&plan, state, sameRevision, priv)
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// plannedAMIs keeps the state's element of every target whose AMI of the
// revision stands, and plans the others as unknown. After an import the
// configured targets' AMIs are looked up by their tags.
func (r *publishedAMIResource) plannedAMIs(ctx context.Context, plan, state *publishedAMIModel, sameRevision bool, resp *resource.ModifyPlanResponse) types.Map {
	objType := types.ObjectType{AttrTypes: publishedAMIAttrTypes}
	keys, known := targetKeys(ctx, plan.Targets)
	if !known {
		return types.MapUnknown(objType)
	}
	kept := map[string]attr.Value{}
	switch {
	case sameRevision && !state.AMIs.IsNull() && !state.AMIs.IsUnknown():
		kept = state.AMIs.Elements()
	case state != nil && state.Targets.IsNull() && !plan.Revision.IsUnknown():
		kept = r.lookupImported(ctx, plan, resp)
	}
	elems := map[string]attr.Value{}
	for _, k := range keys {
		if v, ok := kept[k]; ok {
			elems[k] = v
		} else {
			elems[k] = types.ObjectUnknown(publishedAMIAttrTypes)
		}
	}
	return types.MapValueMust(objType, elems)
}

// lookupImported finds an imported publication's AMIs of the planned
// revision in the configured targets, by their tags.
func (r *publishedAMIResource) lookupImported(ctx context.Context, plan *publishedAMIModel, resp *resource.ModifyPlanResponse) map[string]attr.Value {
	out := map[string]attr.Value{}
	targets, known, d := targetsOf(ctx, plan.Targets)
	if resp.Diagnostics.Append(d...); !known || r.data == nil {
		return out
	}
	p, _, err := r.publisher(ctx, plan)
	if err != nil {
		resp.Diagnostics.AddError("Cannot look up the imported publication", err.Error())
		return out
	}
	pub, d := plan.publication(ctx, time.Time{}, time.Time{}, nil, nil)
	resp.Diagnostics.Append(d...)
	records, err := p.Lookup(ctx, pub, targets)
	if err != nil {
		resp.Diagnostics.AddError("Cannot look up the imported publication", err.Error())
		return out
	}
	for k, rec := range records {
		if rec.Published() {
			out[k] = amiValue(rec)
		}
	}
	return out
}

// plannedDeprecation is deprecation_time: null without a policy; what the
// publication aims at while revision and policy stay; else known after
// apply (the publication time + max_age).
func plannedDeprecation(plan, state *publishedAMIModel, sameRevision bool, priv publishedAMIPrivate) types.String {
	if plan.PolicyID.IsNull() {
		return types.StringNull()
	}
	if sameRevision && plan.PolicyID.Equal(state.PolicyID) {
		if !priv.DeprecateAt.IsZero() {
			return deprecationValue(priv.DeprecateAt)
		}
		if !state.DeprecationTime.IsNull() && !state.DeprecationTime.IsUnknown() {
			return state.DeprecationTime
		}
	}
	return types.StringUnknown()
}

// validatePlan runs the publisher's checks on what is known, and refuses a
// layered stream (this version cannot publish one).
func (r *publishedAMIResource) validatePlan(ctx context.Context, plan *publishedAMIModel, resp *resource.ModifyPlanResponse) {
	targets, known, d := targetsOf(ctx, plan.Targets)
	resp.Diagnostics.Append(d...)
	if known {
		if err := publisher.ValidateTargets(targets); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("targets"), "Invalid targets", err.Error())
		}
		if k := plan.KMSKeyID; !k.IsNull() && !k.IsUnknown() {
			if err := publisher.ValidateKMSKeyID(k.ValueString(), targets); err != nil {
				resp.Diagnostics.AddAttributeError(path.Root("kms_key_id"), "Invalid kms_key_id", err.Error())
			}
		}
	}
	// The publisher's own checks, on what is known (placeholders for the
	// rest); each error names its attribute first ("name: ...").
	stream := plan.ImageStream
	probe, d := plan.publication(ctx, time.Unix(0, 0), time.Time{}, mapOf(ctx, plan.Tags, &resp.Diagnostics), nil)
	resp.Diagnostics.Append(d...)
	if stream.IsUnknown() {
		probe.ID, probe.Stream = "probe", "probe"
	}
	if plan.Revision.IsUnknown() {
		probe.Revision = zeroRevision
	}
	if plan.Name.IsUnknown() {
		probe.NameTemplate = publisher.DefaultNameTemplate
	}
	if err := probe.Validate(); err != nil {
		for _, e := range joinedErrors(err) {
			attrName, _, _ := strings.Cut(e.Error(), ":")
			attrName, _, _ = strings.Cut(attrName, ".")
			if attrName == "id" {
				continue // the ID is the stream's name, checked as image_stream
			}
			if _, ok := publishedAMIArguments[attrName]; ok {
				resp.Diagnostics.AddAttributeError(path.Root(attrName), "Invalid "+attrName, e.Error())
			} else {
				resp.Diagnostics.AddError("Invalid publication", e.Error())
			}
		}
	}
	if stream.IsUnknown() || r.data == nil || resp.Diagnostics.HasError() {
		return
	}
	// The stream's kind, when the store already has it (a stream made in
	// the same apply is checked at apply).
	store, _, err := r.store(ctx, plan)
	if err != nil {
		return
	}
	if rec, found, err := store.GetStream(ctx, stream.ValueString()); err == nil && found && rec.Kind == contentstore.StreamKindLayered {
		resp.Diagnostics.AddAttributeError(path.Root("image_stream"), "Layered streams cannot be published yet",
			"Stream \""+stream.ValueString()+"\" is a layered stream (a base image and an overlay); this version "+
				"publishes tree and raw-image streams. A later version will publish layered streams.")
	}
}

// publishedAMIArguments are the attributes the publisher's errors can name.
var publishedAMIArguments = map[string]bool{"image_stream": true, "revision": true, "name": true, "description": true,
	"architecture": true, "boot_mode": true, "imds_support": true, "tpm_support": true, "volume_type": true,
	"volume_size": true, "launch_permission": true, "ssm_parameter": true, "tags": true}

// joinedErrors are the errors err joins (err itself when it joins none).
func joinedErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// zeroRevision is a well-formed revision for validating parts of a plan.
const zeroRevision = "0000000000000000000000000000000000000000000000000000000000000000"

// sortedKeys are m's keys in order.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
