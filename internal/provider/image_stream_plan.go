package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/autoami/terraform-provider-autoami/internal/imagestream"
	"github.com/autoami/terraform-provider-autoami/internal/policy"
)

// ModifyPlan is where a stream's content and base image updates become plan
// changes. It hashes the source (fast on an unchanged source: stat cache and
// cached manifests) so that the plan shows the revision apply will publish,
// and turns the policy decision the last refresh made into a new revision
// ("rebuild now") or into a warning ("deferred", "awaiting approval").
func (r *imageStreamResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || r.data == nil {
		return // destroy, or validation before the provider is configured
	}
	var plan imageStreamModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || sourceUnknown(&plan) {
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

	baseName := ""
	if plan.BaseImage != nil {
		var ok bool
		if baseName, ok = r.planBaseImage(ctx, &plan, state, req, resp); !ok {
			return
		}
	}
	src, srcPath := sourceOf(&plan, baseName)
	content, err := imagestream.Load(ctx, src, imagestream.LoadOptions{CacheDir: cacheDir()})
	if err != nil {
		resp.Diagnostics.AddAttributeError(srcPath, "Cannot read the stream's source", err.Error())
		return
	}

	storeChanged := state != nil && !reflect.DeepEqual(plan.ContentStore, state.ContentStore)
	republish := state == nil || state.Revision.ValueString() != content.Revision || storeChanged
	if republish {
		r.checkStore(ctx, &plan, resp)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	store, err := r.streamStore(ctx, &plan)
	if err != nil {
		resp.Diagnostics.AddError("Content store unavailable", err.Error())
		return
	}

	if state != nil && !republish {
		// Same revision: computed values stay, except what the last apply
		// uploaded when something else (tags, policy) is updated.
		keepComputed(&plan, state)
		if !reflect.DeepEqual(comparableConfig(&plan), comparableConfig(state)) {
			plan.BytesUploaded, plan.ObjectsUploaded = types.Int64Unknown(), types.Int64Unknown()
		}
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	}
	tflog.Info(ctx, "stream revision changes", map[string]any{"stream": plan.Name.ValueString(), "revision": content.Revision,
		"objects": content.Summary.Objects, "bytes": content.Summary.ObjectBytes})
	plan.ID = types.StringValue(plan.Name.ValueString())
	plan.Revision = types.StringValue(content.Revision)
	plan.RevisionCreatedAt = types.StringUnknown()
	plan.ManifestURI = types.StringValue(store.ManifestURI(plan.Name.ValueString(), content.Revision))
	plan.SizeBytes = types.Int64Value(content.Summary.Bytes)
	plan.FileCount = types.Int64Value(int64(content.Summary.Regular))
	if src.Kind == imagestream.KindRawImage {
		plan.FileCount = types.Int64Value(0)
	}
	plan.BytesUploaded, plan.ObjectsUploaded = types.Int64Unknown(), types.Int64Unknown()
	plan.RebuildRequired = types.BoolValue(false)
	plan.RebuildReason = types.StringNull()
	if plan.BaseImage != nil {
		plan.BaseImageName = types.StringValue(baseName)
		plan.BaseImageIDs = types.MapUnknown(types.StringType)
		if state != nil && !state.LatestBaseImage.IsNull() {
			plan.LatestBaseImage = state.LatestBaseImage
		} else {
			plan.LatestBaseImage = types.ObjectUnknown(latestBaseImageAttrTypes)
		}
	} else {
		plan.BaseImageName = types.StringNull()
		plan.BaseImageIDs = types.MapNull(types.StringType)
		plan.LatestBaseImage = types.ObjectNull(latestBaseImageAttrTypes)
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// planBaseImage decides which base image the planned revision is layered
// on: on create, the newest; on update, the current one unless the refresh
// decided to rebuild now, the rebuild trigger changed (an approval) or the
// selector itself changed. It warns about deferred and waiting updates.
func (r *imageStreamResource) planBaseImage(ctx context.Context, plan, state *imageStreamModel,
	req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) (string, bool) {
	if state == nil || state.BaseImage == nil || state.BaseImageName.ValueString() == "" {
		latest, _, err := r.findLatestBaseImage(ctx, plan.BaseImage)
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("base_image"), "Base image lookup failed", err.Error())
			return "", false
		}
		return latest.Image.Name, true
	}
	var decision rebuildDecision
	if raw, diags := req.Private.GetKey(ctx, rebuildDecisionKey); !diags.HasError() && len(raw) > 0 {
		_ = json.Unmarshal(raw, &decision)
	}
	latestName := ""
	if !state.LatestBaseImage.IsNull() && !state.LatestBaseImage.IsUnknown() {
		if v, ok := state.LatestBaseImage.Attributes()["name"].(types.String); ok {
			latestName = v.ValueString()
		}
	}
	approved := plan.RebuildTrigger.ValueString() != state.RebuildTrigger.ValueString()
	selectorChanged := !reflect.DeepEqual(plan.BaseImage, state.BaseImage)
	switch {
	case selectorChanged || (approved && latestName == ""):
		latest, _, err := r.findLatestBaseImage(ctx, plan.BaseImage)
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("base_image"), "Base image lookup failed", err.Error())
			return "", false
		}
		return latest.Image.Name, true
	case approved:
		if latestName != state.BaseImageName.ValueString() {
			resp.Diagnostics.AddAttributeWarning(path.Root("rebuild_trigger"), "Rebuild approved",
				fmt.Sprintf("rebuild_trigger changed: stream %q moves from base image %s to %s. %s",
					plan.Name.ValueString(), state.BaseImageName.ValueString(), latestName, decision.Reason))
		}
		return latestName, true
	case decision.Action == policy.RebuildNow.String() && decision.NewName != "":
		resp.Diagnostics.AddAttributeWarning(path.Root("revision"), decision.Headline, decision.Reason)
		return decision.NewName, true
	case decision.Action == policy.Deferred.String() || decision.Action == policy.AwaitingApproval.String():
		resp.Diagnostics.AddAttributeWarning(path.Root("base_image"), decision.Headline, decision.Reason)
	}
	return state.BaseImageName.ValueString(), true
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

func sourceUnknown(m *imageStreamModel) bool {
	for _, s := range []*fileTreeSourceModel{m.RootFilesystem, m.Overlay} {
		if s != nil && (s.Directory.IsUnknown() || s.Tarball.IsUnknown()) {
			return true
		}
	}
	return m.RawImage != nil && m.RawImage.Path.IsUnknown()
}

// keepComputed copies the computed attributes of state into plan.
func keepComputed(plan, state *imageStreamModel) {
	plan.ID, plan.Revision, plan.RevisionCreatedAt = state.ID, state.Revision, state.RevisionCreatedAt
	plan.ManifestURI, plan.SizeBytes, plan.FileCount = state.ManifestURI, state.SizeBytes, state.FileCount
	plan.BytesUploaded, plan.ObjectsUploaded = state.BytesUploaded, state.ObjectsUploaded
	plan.BaseImageName, plan.BaseImageIDs, plan.LatestBaseImage = state.BaseImageName, state.BaseImageIDs, state.LatestBaseImage
	plan.RebuildRequired, plan.RebuildReason = state.RebuildRequired, state.RebuildReason
}

// comparableConfig is the part of the model that an update rewrites in the
// stream record without a new revision.
func comparableConfig(m *imageStreamModel) []any {
	return []any{m.Tags, m.PolicyID, m.RebuildTrigger}
}
