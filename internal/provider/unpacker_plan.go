package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/autoami/terraform-provider-autoami/internal/unpackerinstance"
)

func (r *unpackerResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var cfg unpackerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if cfg.SecurityGroupIDs.IsNull() && cfg.AllowedCIDRs.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("allowed_cidrs"), "Missing allowed_cidrs",
			"allowed_cidrs is required when security_group_ids is not set: the security group the resource makes opens "+
				"the unpacker's port only to these CIDR blocks (where the provider and publications run from).")
	}
}

// ModifyPlan fills the defaults that depend on the provider (region) or
// another argument (instance_type), checks the unpacker binary at plan
// time, and plans the in-place work the configuration alone does not show:
// an upgrade when the binary to install differs from the running one (a
// new provider version), and the new client identity of an imported
// unpacker.
func (r *unpackerResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || r.data == nil {
		return // destroy, or validation before the provider is configured
	}
	var plan, cfg unpackerModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if plan.Region.IsUnknown() && cfg.Region.IsNull() {
		plan.Region = types.StringValue(r.data.clients.HomeRegion())
	}
	if plan.InstanceType.IsUnknown() && cfg.InstanceType.IsNull() && !plan.Architecture.IsUnknown() {
		t, err := unpackerinstance.DefaultInstanceType(plan.Architecture.ValueString())
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("architecture"), "Invalid architecture", err.Error())
			return
		}
		plan.InstanceType = types.StringValue(t)
	}
	binaryKnown := !plan.UnpackerBinary.IsUnknown() && !plan.Architecture.IsUnknown()
	var binarySHA256 string
	if binaryKnown {
		bin, err := r.binary(&plan)
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("unpacker_binary"), "No unpacker binary", err.Error())
			return
		}
		binarySHA256 = bin.SHA256
	}
	if !req.State.Raw.IsNull() {
		var state unpackerModel
		resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
		priv, found, diags := readUnpackerPrivate(ctx, req.Private)
		if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
			return
		}
		_, trusted := state.target(ctx)
		imported := found && !trusted
		upgrade := found && (!binaryKnown || binarySHA256 != priv.BinarySHA256)
		typeChange := !plan.InstanceType.IsUnknown() && plan.InstanceType.ValueString() != state.InstanceType.ValueString()
		if imported || upgrade || typeChange {
			// The instance stops and starts: its state and public IP
			// are known only afterwards.
			plan.InstanceState = types.StringUnknown()
			plan.PublicIP = types.StringUnknown()
			if plan.ConnectVia.ValueString() == unpackerinstance.ConnectViaPublicIP {
				plan.Endpoint = types.StringUnknown()
				plan.Target = types.ObjectUnknown(unpackerTargetAttrTypes)
			}
		}
		if imported || upgrade {
			plan.UnpackerVersion = types.StringUnknown()
		}
		if imported {
			plan.Target = types.ObjectUnknown(unpackerTargetAttrTypes)
			if state.ServerCertificateFingerprint.IsNull() {
				plan.ServerCertificateFingerprint = types.StringUnknown()
			}
			resp.Diagnostics.AddWarning("Imported unpacker gets a new client identity",
				fmt.Sprintf("The client CA of %s cannot be read back, so this apply makes a new client CA and certificate and "+
					"installs the CA on the instance: stop, new user-data, start (the daemon keeps its key and fingerprint).",
					state.InstanceID.ValueString()))
		}
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}
