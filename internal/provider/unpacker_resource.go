package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/autoami/terraform-provider-autoami/internal/awsclient"
	"github.com/autoami/terraform-provider-autoami/internal/contentstore"
	"github.com/autoami/terraform-provider-autoami/internal/unpackerbinary"
	"github.com/autoami/terraform-provider-autoami/internal/unpackerinstance"
)

var (
	_ resource.ResourceWithConfigure      = (*unpackerResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*unpackerResource)(nil)
	_ resource.ResourceWithImportState    = (*unpackerResource)(nil)
	_ resource.ResourceWithValidateConfig = (*unpackerResource)(nil)
)

// unpackerPolling tunes the waits of unpacker instances; tests make it fast.
var unpackerPolling unpackerinstance.Polling

// goneCleanupTimeout bounds how long a refresh that finds the instance gone
// tries to delete the security group made for it (EC2 refuses while the
// terminated instance's network interface is being released).
const goneCleanupTimeout = 2 * time.Minute

// NewUnpackerResource is the constructor of autoami_unpacker.
func NewUnpackerResource() resource.Resource { return &unpackerResource{} }

// unpackerResource maps autoami_unpacker to internal/unpackerinstance, which
// does the work.
type unpackerResource struct {
	data *providerData
}

func (r *unpackerResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_unpacker"
}

func (r *unpackerResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	data, diags := providerDataFrom(req.ProviderData)
	resp.Diagnostics.Append(diags...)
	r.data = data
}

// manager returns the unpacker instances' manager; withStore adds the
// provider's content store, which launches and upgrades upload the binary to.
func (r *unpackerResource) manager(ctx context.Context, withStore bool) (*unpackerinstance.Manager, error) {
	if r.data == nil {
		return nil, errors.New("the provider is not configured")
	}
	cfg := unpackerinstance.Config{Clients: r.data.clients, Logger: newTflogLogger(), Polling: unpackerPolling}
	if withStore {
		if r.data.contentStore == nil {
			return nil, errors.New("autoami_unpacker needs the provider's content_store: the unpacker binary is " +
				"uploaded there once, and instances download it through a presigned URL")
		}
		home, err := r.data.clients.Home(ctx)
		if err != nil {
			return nil, fmt.Errorf("AWS clients of the home region (content store): %w", err)
		}
		cfg.Store = contentstore.New(home.S3, contentstore.Location{Bucket: r.data.contentStore.Bucket, Prefix: r.data.contentStore.Prefix}, contentstore.Options{})
		cfg.Presigner = s3.NewPresignClient(home.S3)
	}
	return unpackerinstance.New(cfg)
}

// binary is the unpacker to install: unpacker_binary, else the one the
// provider carries for the architecture.
func (r *unpackerResource) binary(m *unpackerModel) (unpackerbinary.Binary, error) {
	arch := m.Architecture.ValueString()
	if p := m.UnpackerBinary.ValueString(); p != "" {
		return unpackerbinary.FromFile(p, arch)
	}
	return unpackerbinary.Embedded(arch, r.data.version)
}

func (r *unpackerResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan unpackerModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, defaultUnpackerCreateTimeout)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	mgr, err := r.manager(ctx, true)
	if err != nil {
		resp.Diagnostics.AddError("Cannot create unpacker", err.Error())
		return
	}
	spec, diags := r.spec(ctx, &plan)
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	id, err := unpackerinstance.NewIdentity("autoami provider, unpacker in " + spec.Target.Region)
	if err != nil {
		resp.Diagnostics.AddError("Cannot create unpacker", err.Error())
		return
	}
	u, err := mgr.Create(ctx, spec, id)
	if u != nil {
		// Also after a failure: the instance exists, and a tainted
		// resource is replaced (and so deleted) by the next apply.
		resp.Diagnostics.Append(plan.setFrom(u, id)...)
		resp.Diagnostics.Append(resp.Private.SetKey(ctx, unpackerPrivateKey, privateOf(u).bytes())...)
		resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot create unpacker", err.Error())
		return
	}
	tflog.Info(ctx, "created unpacker", map[string]any{"instance": u.InstanceID, "target": u.AccountID + "/" + u.Region,
		"fingerprint": u.ServerCertificateFingerprint, "version": u.UnpackerVersion})
}

// spec turns the plan into what to launch.
func (r *unpackerResource) spec(ctx context.Context, plan *unpackerModel) (unpackerinstance.Spec, diag.Diagnostics) {
	var diags diag.Diagnostics
	bin, err := r.binary(plan)
	if err != nil {
		diags.AddAttributeError(path.Root("unpacker_binary"), "No unpacker binary", err.Error())
		return unpackerinstance.Spec{}, diags
	}
	idle, err := parseIdle(plan.IdlePoweroff.ValueString())
	if err != nil {
		diags.AddAttributeError(path.Root("idle_poweroff"), "Invalid idle_poweroff", err.Error())
	}
	own := map[string]string{}
	if !plan.Tags.IsNull() {
		diags.Append(plan.Tags.ElementsAs(ctx, &own, false)...)
	}
	spec := unpackerinstance.Spec{
		Target: plan.awsTarget(), Architecture: plan.Architecture.ValueString(), ImageID: plan.ImageID.ValueString(),
		KMSKeyID: plan.KMSKeyID.ValueString(), InstanceType: plan.InstanceType.ValueString(), SubnetID: plan.SubnetID.ValueString(),
		ConnectVia: plan.ConnectVia.ValueString(), Port: int(plan.Port.ValueInt64()), IdlePoweroff: idle,
		Tags: r.data.mergeTags(own), Binary: bin,
	}
	diags.Append(setStrings(ctx, plan.SecurityGroupIDs, &spec.SecurityGroupIDs)...)
	diags.Append(setStrings(ctx, plan.AllowedCIDRs, &spec.AllowedCIDRs)...)
	return spec, diags
}

func (r *unpackerResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state unpackerModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	priv, found, diags := readUnpackerPrivate(ctx, req.Private)
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	mgr, err := r.manager(ctx, false)
	if err != nil {
		resp.Diagnostics.AddError("Cannot read unpacker", err.Error())
		return
	}
	var u *unpackerinstance.Unpacker
	if !found {
		// Just imported: everything but the instance's ID is read from the
		// instance and its user-data.
		u, err = mgr.Adopt(ctx, state.awsTarget(), state.InstanceID.ValueString())
		if err != nil {
			resp.Diagnostics.AddError("Cannot import unpacker", err.Error())
			return
		}
		state.Port = types.Int64Value(int64(u.Port))
		state.IdlePoweroff = types.StringValue(unpackerinstance.FormatDuration(u.IdlePoweroff))
		if u.CreatedSecurityGroupID != "" && len(u.AllowedCIDRs) > 0 {
			state.AllowedCIDRs = stringSet(u.AllowedCIDRs)
		}
		resp.Diagnostics.Append(resp.Private.SetKey(ctx, unpackerPrivateKey, privateOf(u).bytes())...)
	} else {
		u, diags = state.unpacker(ctx, priv)
		if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
			return
		}
		if err := mgr.Refresh(ctx, u); errors.Is(err, unpackerinstance.ErrGone) {
			// Once out of the state, nothing would delete the security group
			// made for the instance: it goes now (Delete of a gone instance
			// deletes only that), within a bounded time.
			cleanup := ""
			if u.CreatedSecurityGroupID != "" {
				cctx, cancel := context.WithTimeout(ctx, goneCleanupTimeout)
				derr := mgr.Delete(cctx, u)
				cancel()
				cleanup = fmt.Sprintf(" Its security group %s was deleted.", u.CreatedSecurityGroupID)
				if derr != nil {
					cleanup = fmt.Sprintf(" Its security group %s could not be deleted (%v); delete it by hand.", u.CreatedSecurityGroupID, derr)
				}
			}
			resp.Diagnostics.AddWarning("Unpacker gone",
				fmt.Sprintf("%s.%s The next apply launches a new unpacker (with a new identity and fingerprint).", err, cleanup))
			resp.State.RemoveResource(ctx)
			return
		} else if err != nil {
			resp.Diagnostics.AddError("Cannot read unpacker", err.Error())
			return
		}
	}
	resp.Diagnostics.Append(state.setFrom(u, state.identity(ctx, privateOf(u)))...)
	tags, diags := ownTags(ctx, u.Tags, state.Tags, r.data.defaultTags)
	resp.Diagnostics.Append(diags...)
	state.Tags = tags
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *unpackerResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state unpackerModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	priv, _, diags := readUnpackerPrivate(ctx, req.Private)
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Update(ctx, defaultUnpackerUpdateTimeout)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	mgr, err := r.manager(ctx, true)
	if err != nil {
		resp.Diagnostics.AddError("Cannot update unpacker", err.Error())
		return
	}
	u, diags := state.unpacker(ctx, priv)
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	// What the plan settles without a launch: connect_via after an import.
	u.ConnectVia = plan.ConnectVia.ValueString()
	id := state.identity(ctx, priv)
	bin, err := r.binary(&plan)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("unpacker_binary"), "No unpacker binary", err.Error())
		return
	}
	// save records what was done so far, also when a later step fails.
	save := func() {
		resp.Diagnostics.Append(plan.setFrom(u, id)...)
		resp.Diagnostics.Append(resp.Private.SetKey(ctx, unpackerPrivateKey, privateOf(u).bytes())...)
		resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
	}
	fail := func(err error) {
		resp.Diagnostics.AddError("Cannot update unpacker", err.Error())
		save()
	}
	pinned := u.ServerCertificateFingerprint
	switch {
	case id.ClientCertificatePEM == "":
		// Imported: the client CA cannot be read back, so trust is
		// re-established with a new identity through stop, user-data, start.
		fresh, err := unpackerinstance.NewIdentity("autoami provider, unpacker in " + u.Region)
		if err != nil {
			fail(err)
			return
		}
		if err := mgr.Rebootstrap(ctx, u, bin, fresh); err != nil {
			fail(err)
			return
		}
		id = fresh
		tflog.Info(ctx, "re-established trust in an imported unpacker", map[string]any{"instance": u.InstanceID,
			"fingerprint": u.ServerCertificateFingerprint})
	case bin.SHA256 != u.BinarySHA256:
		if err := mgr.Rebootstrap(ctx, u, bin, id); err != nil {
			fail(err)
			return
		}
		if pinned != "" && u.ServerCertificateFingerprint != pinned {
			fail(fmt.Errorf("the server certificate of unpacker %s changed during the upgrade (from %s to %s, as its console "+
				"printed): its state directory did not survive. Publications pinned to the old fingerprint refuse it; "+
				"replace the unpacker (terraform apply -replace)", u.InstanceID, pinned, u.ServerCertificateFingerprint))
			return
		}
		tflog.Info(ctx, "upgraded unpacker", map[string]any{"instance": u.InstanceID, "version": u.UnpackerVersion})
	}
	if t := plan.InstanceType.ValueString(); t != "" && t != u.InstanceType {
		if err := mgr.ChangeInstanceType(ctx, u, id, t); err != nil {
			fail(err)
			return
		}
	}
	if !plan.Tags.Equal(state.Tags) {
		own := map[string]string{}
		if !plan.Tags.IsNull() {
			resp.Diagnostics.Append(plan.Tags.ElementsAs(ctx, &own, false)...)
		}
		if err := mgr.SetTags(ctx, u, r.data.mergeTags(own)); err != nil {
			fail(err)
			return
		}
	}
	if err := mgr.Refresh(ctx, u); err != nil {
		fail(err)
		return
	}
	save()
}

func (r *unpackerResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state unpackerModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	priv, _, diags := readUnpackerPrivate(ctx, req.Private)
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := state.Timeouts.Delete(ctx, defaultUnpackerDeleteTimeout)
	resp.Diagnostics.Append(diags...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	mgr, err := r.manager(ctx, false)
	if err != nil {
		resp.Diagnostics.AddError("Cannot delete unpacker", err.Error())
		return
	}
	u, diags := state.unpacker(ctx, priv)
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	if err := mgr.Delete(ctx, u); err != nil {
		resp.Diagnostics.AddError("Cannot delete unpacker", err.Error())
	}
}

// ImportState takes `[ROLE_ARN/]REGION/INSTANCE_ID`: the role of the
// target's account when it is not the provider's own (it must equal the
// configuration's role_arn).
func (r *unpackerResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	role, region, instance, err := splitUnpackerImportID(req.ID)
	if err != nil {
		resp.Diagnostics.AddError("Invalid import ID", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), region+"/"+instance)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("region"), region)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("instance_id"), instance)...)
	if role != "" {
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("role_arn"), role)...)
	}
}

func splitUnpackerImportID(id string) (role, region, instance string, err error) {
	parts := strings.Split(id, "/")
	if len(parts) < 2 {
		return "", "", "", fmt.Errorf("%q: want REGION/INSTANCE_ID, or ROLE_ARN/REGION/INSTANCE_ID for an instance in another "+
			"account (e.g. eu-west-1/i-0123456789abcdef0)", id)
	}
	instance, region = parts[len(parts)-1], parts[len(parts)-2]
	role = strings.Join(parts[:len(parts)-2], "/")
	if !instanceIDPattern.MatchString(instance) {
		return "", "", "", fmt.Errorf("%q: %q is not an instance ID (i-...)", id, instance)
	}
	if err := awsclient.ValidateRegion(region); err != nil {
		return "", "", "", fmt.Errorf("%q: %w", id, err)
	}
	if role != "" && !roleARNPattern.MatchString(role) {
		return "", "", "", fmt.Errorf("%q: %q is not an IAM role ARN", id, role)
	}
	return role, region, instance, nil
}
