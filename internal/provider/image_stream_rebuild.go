package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/autoami/terraform-provider-autoami/internal/awsclient"
	"github.com/autoami/terraform-provider-autoami/internal/baseimage"
	"github.com/autoami/terraform-provider-autoami/internal/policy"
)

// rebuildDecisionKey is the private-state key holding the policy decision
// the last refresh made, so that the plan can act on it and explain it.
const rebuildDecisionKey = "rebuild_decision"

// rebuildDecision is what refresh leaves for plan.
type rebuildDecision struct {
	Action   string `json:"action"` // policy.Action.String()
	Headline string `json:"headline"`
	Reason   string `json:"reason"`
	NewName  string `json:"new_name"`
}

// readRebuildDecision reads what refreshBaseImage stored. Nothing stored (a
// new, updated or imported stream) is the zero decision, which plans
// nothing; anything else must be a decision this provider writes.
func readRebuildDecision(raw []byte) (rebuildDecision, error) {
	var d rebuildDecision
	if len(raw) == 0 {
		return d, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return rebuildDecision{}, fmt.Errorf("not a rebuild decision: %w", err)
	}
	switch d.Action {
	case policy.NothingToDo.String(), policy.AwaitingApproval.String(), policy.Deferred.String():
	case policy.RebuildNow.String():
		if d.NewName == "" {
			return rebuildDecision{}, errors.New("a rebuild without the base image to rebuild on")
		}
	default:
		return rebuildDecision{}, fmt.Errorf("unknown action %q", d.Action)
	}
	return d, nil
}

// diagsError renders diagnostics as an error for callers that report
// errors, not diagnostics.
func diagsError(what string, diags diag.Diagnostics) error {
	var parts []string
	for _, d := range diags.Errors() {
		parts = append(parts, strings.TrimSuffix(d.Summary()+": "+d.Detail(), ": "))
	}
	return fmt.Errorf("%s: %s", what, strings.Join(parts, "; "))
}

// findLatestBaseImage resolves the selector in the home region.
func (r *imageStreamResource) findLatestBaseImage(ctx context.Context, m *baseImageSelectorModel) (*baseimage.Result, *awsclient.Clients, error) {
	sel, diags := m.selector(ctx)
	if diags.HasError() {
		return nil, nil, diagsError("base_image", diags)
	}
	clients, err := r.data.clients.For(ctx, awsclient.Target{RoleARN: m.RoleARN.ValueString()})
	if err != nil {
		return nil, nil, err
	}
	res, err := baseimage.Find(ctx, clients.EC2, clients.SSM, sel)
	if err != nil {
		return nil, nil, fmt.Errorf("in region %s of account %s: %w", clients.Target.Region, clients.AccountID, err)
	}
	return res, clients, nil
}

// baseImageIDs finds the image called name in each of the selector's
// regions (default: the home region), from the selector's owners or its SSM
// parameter read in that region; see baseimage.FindNamed.
func (r *imageStreamResource) baseImageIDs(ctx context.Context, m *baseImageSelectorModel, name string) (types.Map, error) {
	sel, diags := m.selector(ctx)
	if diags.HasError() {
		return types.MapNull(types.StringType), diagsError("base_image", diags)
	}
	regions := []string{r.data.clients.HomeRegion()}
	if !m.Regions.IsNull() && !m.Regions.IsUnknown() {
		regions = nil
		if diags := m.Regions.ElementsAs(ctx, &regions, false); diags.HasError() {
			return types.MapNull(types.StringType), diagsError("base_image.regions", diags)
		}
	}
	var clients []baseimage.RegionClients
	for _, region := range regions {
		c, err := r.data.clients.For(ctx, awsclient.Target{RoleARN: m.RoleARN.ValueString(), Region: region})
		if err != nil {
			return types.MapNull(types.StringType), err
		}
		clients = append(clients, baseimage.RegionClients{Region: region, EC2: c.EC2, SSM: c.SSM})
	}
	images, err := baseimage.FindNamed(ctx, sel, name, clients)
	var missing *baseimage.MissingError
	if errors.As(err, &missing) {
		return types.MapNull(types.StringType), fmt.Errorf("%w (AMIs are regional: copy the image there, or remove %s from base_image.regions)", err, missing.Region)
	}
	if err != nil {
		return types.MapNull(types.StringType), err
	}
	ids := map[string]attr.Value{}
	for region, img := range images {
		ids[region] = types.StringValue(img.ID)
	}
	v, diags := types.MapValue(types.StringType, ids)
	if diags.HasError() {
		return types.MapNull(types.StringType), diagsError("base_image_ids", diags)
	}
	return v, nil
}

// refreshBaseImage resolves the selector, records the newest base image, and
// asks the policy whether the stream should adopt it.
func (r *imageStreamResource) refreshBaseImage(ctx context.Context, state *imageStreamModel, resp *resource.ReadResponse) {
	latest, _, err := r.findLatestBaseImage(ctx, state.BaseImage)
	if err != nil {
		// A passing outage of the lookup (or the feed) must not fail every
		// scheduled plan: keep what the last refresh knew, and say so.
		resp.Diagnostics.AddAttributeWarning(path.Root("base_image"), "Base image lookup failed; keeping the last known state", err.Error())
		return
	}
	var diags diag.Diagnostics
	state.LatestBaseImage, diags = latestBaseImageValue(latest)
	resp.Diagnostics.Append(diags...)
	if ids, err := r.baseImageIDs(ctx, state.BaseImage, state.BaseImageName.ValueString()); err == nil {
		state.BaseImageIDs = ids
	} else {
		resp.Diagnostics.AddAttributeWarning(path.Root("base_image_ids"), "Base image IDs unavailable", err.Error())
		state.BaseImageIDs = types.MapNull(types.StringType)
	}
	decision := rebuildDecision{Action: policy.NothingToDo.String()}
	state.RebuildRequired, state.RebuildReason = types.BoolValue(false), types.StringNull()
	current := state.BaseImageName.ValueString()
	if latest.Image.Name != current && current != "" {
		pol, err := r.loadPolicy(ctx, state.PolicyID.ValueString())
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("policy_id"), "Cannot read the stream's policy", err.Error())
			return
		}
		oldID := ""
		if !state.BaseImageIDs.IsNull() {
			if v, ok := state.BaseImageIDs.Elements()[r.data.clients.HomeRegion()]; ok {
				oldID = v.(types.String).ValueString()
			}
		}
		d, err := policy.Decide(policy.Change{Update: &policy.BaseImageUpdate{
			OldImageID: oldID, OldImageName: current,
			NewImageID: latest.Image.ID, NewImageName: latest.Image.Name,
			NewImageCreationDate: latest.Image.CreationDate, Level: latest.SecurityLevel, UpdateType: latest.UpdateType,
			ApprovalHint: fmt.Sprintf("change rebuild_trigger of stream %q, or run terraform apply -replace on it", state.Name.ValueString()),
		}}, pol, now())
		if err != nil {
			resp.Diagnostics.AddError("Rebuild decision failed", err.Error())
			return
		}
		decision = rebuildDecision{Action: d.Action.String(), Headline: d.Headline(), Reason: d.Reason, NewName: latest.Image.Name}
		state.RebuildRequired = types.BoolValue(d.Action == policy.RebuildNow)
		state.RebuildReason = types.StringValue(d.Reason)
		tflog.Info(ctx, "base image update", map[string]any{"stream": state.Name.ValueString(), "from": current,
			"to": latest.Image.Name, "level": latest.SecurityLevel, "decision": d.Action.String(), "reason": d.Reason})
	}
	b, err := json.Marshal(decision)
	if err != nil {
		resp.Diagnostics.AddError("Cannot store the rebuild decision", fmt.Sprintf("stream %q: %s", state.Name.ValueString(), err))
		return
	}
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, rebuildDecisionKey, b)...)
}

// latestBaseImageValue is the latest_base_image attribute of res.
func latestBaseImageValue(res *baseimage.Result) (types.Object, diag.Diagnostics) {
	return types.ObjectValue(latestBaseImageAttrTypes, map[string]attr.Value{
		"id":             types.StringValue(res.Image.ID),
		"name":           types.StringValue(res.Image.Name),
		"creation_date":  timeString(res.Image.CreationDate),
		"security_level": types.StringValue(res.SecurityLevel.String()),
		"update_type":    types.StringValue(res.UpdateType),
	})
}
