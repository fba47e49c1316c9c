package provider

import (
	"context"
	"fmt"
	"reflect"
	"slices"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/autoami/terraform-provider-autoami/internal/imagestream"
	"github.com/autoami/terraform-provider-autoami/internal/policy"
)

// contentArguments are the arguments that decide a stream's revision; when
// any is unknown at plan time, so is the revision.
var contentArguments = []string{"name", "root_filesystem", "overlay", "raw_image", "base_image", "content_store", "rebuild_trigger"}

// ModifyPlan is where a stream's content and base image updates become plan
// changes. It hashes the source (fast on an unchanged source: stat cache and
// cached manifests) so that the plan shows the revision apply will upload,
// and turns the policy decision the last refresh made into a new revision
// ("rebuild now") or into a warning ("deferred", "awaiting approval").
//
// Terraform plans again at apply and requires the same known values, so
// everything known here must be reproducible then: the newest base image is
// only planned as a known value when it comes from the refreshed state.
func (r *imageStreamResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || r.data == nil {
		return // destroy, or validation before the provider is configured
	}
	var plan imageStreamModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var state *imageStreamModel
	if !req.State.Raw.IsNull() {
		state = &imageStreamModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, state)...)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	if contentUnknown(req) {
		planRevisionUnknown(&plan)
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	}
	base := baseImagePlan{}
	if plan.BaseImage != nil {
		rawDecision, diags := req.Private.GetKey(ctx, rebuildDecisionKey)
		resp.Diagnostics.Append(diags...)
		if resp.Diagnostics.HasError() {
			return
		}
		base = r.planBaseImage(ctx, &plan, state, rawDecision, &resp.Diagnostics)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	src, srcPath := sourceOf(&plan, base.name)
	if base.unknown {
		src.BaseImageName = "(not yet known)" // the overlay is still read and checked
	}
	content, err := imagestream.Load(ctx, src, imagestream.LoadOptions{CacheDir: cacheDir()})
	if err != nil {
		resp.Diagnostics.AddAttributeError(srcPath, "Cannot read the stream's source", err.Error())
		return
	}
	defer content.Close()

	storeChanged := state != nil && !reflect.DeepEqual(plan.ContentStore, state.ContentStore)
	needsUpload := state == nil || base.unknown || state.Revision.ValueString() != content.Revision || storeChanged
	if needsUpload {
		r.checkStore(ctx, &plan, resp)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	if state != nil && !needsUpload {
		// Same revision: computed values stay, except what the last apply
		// uploaded when something else (tags, policy) is updated.
		keepComputed(&plan, state)
		if !reflect.DeepEqual(arguments(&plan), arguments(state)) {
			// An update without a new revision rewrites the record; it
			// uploads nothing new, but say so only after it ran.
			plan.BytesUploaded, plan.ObjectsUploaded = types.Int64Unknown(), types.Int64Unknown()
		}
		if plan.BaseImage != nil && !reflect.DeepEqual(plan.BaseImage, state.BaseImage) {
			plan.BaseImageIDs = types.MapUnknown(types.StringType) // regions may differ
		}
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	}
	store, err := r.streamStore(ctx, &plan)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("content_store"), "Content store unavailable", err.Error())
		return
	}
	plan.ID = types.StringValue(plan.Name.ValueString())
	plan.RevisionCreatedAt = types.StringUnknown()
	plan.SizeBytes = types.Int64Value(content.Summary.Bytes)
	plan.FileCount = types.Int64Value(int64(content.Summary.Regular))
	if src.Kind == imagestream.KindRawImage {
		plan.FileCount = types.Int64Value(0)
	}
	plan.BytesUploaded, plan.ObjectsUploaded = types.Int64Unknown(), types.Int64Unknown()
	plan.RebuildRequired = types.BoolValue(false)
	plan.RebuildReason = types.StringNull()
	if base.unknown {
		plan.Revision, plan.ManifestURI = types.StringUnknown(), types.StringUnknown()
	} else {
		plan.Revision = types.StringValue(content.Revision)
		plan.ManifestURI = types.StringValue(store.ManifestURI(plan.Name.ValueString(), content.Revision))
	}
	tflog.Info(ctx, "stream revision changes", map[string]any{"stream": plan.Name.ValueString(), "revision": plan.Revision.String(),
		"objects": content.Summary.Objects, "bytes": content.Summary.ObjectBytes})
	switch {
	case plan.BaseImage == nil:
		plan.BaseImageName = types.StringNull()
		plan.BaseImageIDs = types.MapNull(types.StringType)
		plan.LatestBaseImage = types.ObjectNull(latestBaseImageAttrTypes)
	case base.unknown:
		plan.BaseImageName = types.StringUnknown()
		plan.BaseImageIDs = types.MapUnknown(types.StringType)
		plan.LatestBaseImage = types.ObjectUnknown(latestBaseImageAttrTypes)
	default:
		plan.BaseImageName = types.StringValue(base.name)
		plan.BaseImageIDs = types.MapUnknown(types.StringType)
		plan.LatestBaseImage = types.ObjectUnknown(latestBaseImageAttrTypes)
		if state != nil && !state.LatestBaseImage.IsNull() {
			plan.LatestBaseImage = state.LatestBaseImage
		}
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// baseImagePlan is the base image a planned revision is layered on.
type baseImagePlan struct {
	name string
	// unknown: the newest image is adopted at apply (create, or a changed
	// selector), so the name and the revision are not known at plan.
	unknown bool
}

// planBaseImage decides which base image the planned revision is layered
// on: on create or a changed selector, the newest one at apply; on update,
// the current one unless the refresh decided to rebuild now or the rebuild
// trigger changed (an approval), both of which name the newest image the
// refresh saw. It warns about deferred and waiting updates. rawDecision is
// what the last refresh stored under rebuildDecisionKey.
func (r *imageStreamResource) planBaseImage(ctx context.Context, plan, state *imageStreamModel,
	rawDecision []byte, diags *diag.Diagnostics) baseImagePlan {
	selectorChanged := state != nil && state.BaseImage != nil && !sameLookup(plan.BaseImage, state.BaseImage)
	if state == nil || state.BaseImageName.ValueString() == "" || selectorChanged {
		// Resolve now to fail the plan on a selector that finds nothing.
		latest, _, err := r.findLatestBaseImage(ctx, plan.BaseImage)
		if err != nil {
			diags.AddAttributeError(path.Root("base_image"), "Base image lookup failed", err.Error())
			return baseImagePlan{}
		}
		tflog.Info(ctx, "base image as of plan", map[string]any{"stream": plan.Name.ValueString(), "name": latest.Image.Name})
		return baseImagePlan{unknown: true}
	}
	current := state.BaseImageName.ValueString()
	decision, err := readRebuildDecision(rawDecision)
	if err != nil {
		// Acting on a guess could skip a due security rebuild or adopt an
		// update nobody approved; a refresh decides again.
		diags.AddAttributeError(path.Root("base_image"), "Unreadable rebuild decision",
			fmt.Sprintf("The rebuild decision the last refresh stored for stream %q cannot be read: %s. "+
				"Plan again with refresh (the default; not -refresh=false) so that the policy decides again.", plan.Name.ValueString(), err))
		return baseImagePlan{}
	}
	latestName := ""
	if !state.LatestBaseImage.IsNull() && !state.LatestBaseImage.IsUnknown() {
		if v, ok := state.LatestBaseImage.Attributes()["name"].(types.String); ok {
			latestName = v.ValueString()
		}
	}
	approved := plan.RebuildTrigger.ValueString() != state.RebuildTrigger.ValueString()
	switch {
	case approved && latestName == "": // imported: the refresh had no selector
		return baseImagePlan{unknown: true}
	case approved:
		if latestName != current {
			diags.AddAttributeWarning(path.Root("rebuild_trigger"), "Rebuild approved",
				fmt.Sprintf("rebuild_trigger changed: stream %q moves from base image %s to %s. %s",
					plan.Name.ValueString(), current, latestName, decision.Reason))
		}
		return baseImagePlan{name: latestName}
	case decision.Action == policy.RebuildNow.String() && decision.NewName != "":
		diags.AddAttributeWarning(path.Root("revision"), decision.Headline, decision.Reason)
		return baseImagePlan{name: decision.NewName}
	case decision.Action == policy.Deferred.String() || decision.Action == policy.AwaitingApproval.String():
		diags.AddAttributeWarning(path.Root("base_image"), decision.Headline, decision.Reason)
	}
	return baseImagePlan{name: current}
}

// sameLookup reports whether two selectors find the same images. Regions,
// advisories, the level tag and the role only change what is reported, not
// which image is newest, so changing them adopts nothing.
func sameLookup(a, b *baseImageSelectorModel) bool {
	return a.SSMParameter.Equal(b.SSMParameter) && a.Owners.Equal(b.Owners) && a.Name.Equal(b.Name) &&
		reflect.DeepEqual(a.Filters, b.Filters) && a.Architecture.Equal(b.Architecture) &&
		a.IncludeDeprecated.Equal(b.IncludeDeprecated)
}

// checkStore verifies the content store at plan time: the bucket must exist
// and be reachable; weak settings are warnings.
func (r *imageStreamResource) checkStore(ctx context.Context, plan *imageStreamModel, resp *resource.ModifyPlanResponse) {
	store, err := r.streamStore(ctx, plan)
	attr := path.Root("content_store")
	if err != nil {
		resp.Diagnostics.AddAttributeError(attr, "Content store unavailable", err.Error())
		return
	}
	check, err := store.Check(ctx)
	if err != nil {
		resp.Diagnostics.AddAttributeError(attr, "Content store unavailable", err.Error())
		return
	}
	for _, w := range check.Warnings {
		resp.Diagnostics.AddAttributeWarning(attr, "Content store settings", w)
	}
}

// contentUnknown reports whether an argument that decides the revision is
// not known yet (e.g. a path or bucket made by another resource).
func contentUnknown(req resource.ModifyPlanRequest) bool {
	for _, p := range unknownPaths(req.Config.Raw) {
		if steps := p.Steps(); len(steps) > 0 && slices.Contains(contentArguments, steps[0].String()) {
			return true
		}
	}
	return false
}

// planRevisionUnknown plans every value that follows from the content as
// unknown.
func planRevisionUnknown(plan *imageStreamModel) {
	plan.ID = types.StringValue(plan.Name.ValueString())
	if plan.Name.IsUnknown() {
		plan.ID = types.StringUnknown()
	}
	plan.Revision, plan.RevisionCreatedAt, plan.ManifestURI = types.StringUnknown(), types.StringUnknown(), types.StringUnknown()
	plan.SizeBytes, plan.FileCount = types.Int64Unknown(), types.Int64Unknown()
	plan.BytesUploaded, plan.ObjectsUploaded = types.Int64Unknown(), types.Int64Unknown()
	plan.BaseImageName, plan.BaseImageIDs = types.StringUnknown(), types.MapUnknown(types.StringType)
	plan.LatestBaseImage = types.ObjectUnknown(latestBaseImageAttrTypes)
	plan.RebuildRequired, plan.RebuildReason = types.BoolValue(false), types.StringNull()
}

// keepComputed copies the computed attributes of state into plan.
func keepComputed(plan, state *imageStreamModel) {
	plan.ID, plan.Revision, plan.RevisionCreatedAt = state.ID, state.Revision, state.RevisionCreatedAt
	plan.ManifestURI, plan.SizeBytes, plan.FileCount = state.ManifestURI, state.SizeBytes, state.FileCount
	plan.BytesUploaded, plan.ObjectsUploaded = state.BytesUploaded, state.ObjectsUploaded
	plan.BaseImageName, plan.BaseImageIDs, plan.LatestBaseImage = state.BaseImageName, state.BaseImageIDs, state.LatestBaseImage
	plan.RebuildRequired, plan.RebuildReason = state.RebuildRequired, state.RebuildReason
}

// arguments are the configured values of a stream; when they differ from
// the state's, Terraform plans an update.
func arguments(m *imageStreamModel) []any {
	return []any{m.Name, m.RootFilesystem, m.BaseImage, m.Overlay, m.RawImage, m.ContentStore,
		m.PolicyID, m.RebuildTrigger, m.Tags, m.Timeouts}
}
