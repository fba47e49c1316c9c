package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/autoami/terraform-provider-autoami/internal/awsclient"
	"github.com/autoami/terraform-provider-autoami/internal/unpackerinstance"
)

// unpackerModel is autoami_unpacker's state.
type unpackerModel struct {
	Region           types.String   `tfsdk:"region"`
	RoleARN          types.String   `tfsdk:"role_arn"`
	Architecture     types.String   `tfsdk:"architecture"`
	ImageID          types.String   `tfsdk:"image_id"`
	KMSKeyID         types.String   `tfsdk:"kms_key_id"`
	InstanceType     types.String   `tfsdk:"instance_type"`
	SubnetID         types.String   `tfsdk:"subnet_id"`
	SecurityGroupIDs types.Set      `tfsdk:"security_group_ids"`
	AllowedCIDRs     types.Set      `tfsdk:"allowed_cidrs"`
	ConnectVia       types.String   `tfsdk:"connect_via"`
	Port             types.Int64    `tfsdk:"port"`
	IdlePoweroff     types.String   `tfsdk:"idle_poweroff"`
	Tags             types.Map      `tfsdk:"tags"`
	UnpackerBinary   types.String   `tfsdk:"unpacker_binary"`
	Timeouts         timeouts.Value `tfsdk:"timeouts"`

	ID                           types.String `tfsdk:"id"`
	InstanceID                   types.String `tfsdk:"instance_id"`
	AccountID                    types.String `tfsdk:"account_id"`
	AvailabilityZone             types.String `tfsdk:"availability_zone"`
	PrivateIP                    types.String `tfsdk:"private_ip"`
	PublicIP                     types.String `tfsdk:"public_ip"`
	Endpoint                     types.String `tfsdk:"endpoint"`
	ServerCertificateFingerprint types.String `tfsdk:"server_certificate_fingerprint"`
	InstanceState                types.String `tfsdk:"instance_state"`
	UnpackerVersion              types.String `tfsdk:"unpacker_version"`
	Target                       types.Object `tfsdk:"target"`
}

// unpackerTargetModel is `target`.
type unpackerTargetModel struct {
	Region                       types.String `tfsdk:"region"`
	AccountID                    types.String `tfsdk:"account_id"`
	RoleARN                      types.String `tfsdk:"role_arn"`
	InstanceID                   types.String `tfsdk:"instance_id"`
	Endpoint                     types.String `tfsdk:"endpoint"`
	ServerCertificateFingerprint types.String `tfsdk:"server_certificate_fingerprint"`
	ClientCertificatePEM         types.String `tfsdk:"client_certificate_pem"`
	ClientPrivateKeyPEM          types.String `tfsdk:"client_private_key_pem"`
}

// unpackerPrivateKey is the private-state key of unpackerPrivate.
const unpackerPrivateKey = "unpacker"

// unpackerPrivate is what the resource keeps out of plans: the public half
// of the trust (the client CA its user-data installs) and bookkeeping.
type unpackerPrivate struct {
	ClientCACertificatePEM string `json:"client_ca_certificate_pem"`
	BinarySHA256           string `json:"binary_sha256"`
	CreatedSecurityGroupID string `json:"created_security_group_id,omitempty"`
}

// privateGetter is req.Private of every request kind.
type privateGetter interface {
	GetKey(ctx context.Context, key string) ([]byte, diag.Diagnostics)
}

// readUnpackerPrivate reads the private state; found is false when there is
// none (an import not read yet).
func readUnpackerPrivate(ctx context.Context, p privateGetter) (unpackerPrivate, bool, diag.Diagnostics) {
	var out unpackerPrivate
	raw, diags := p.GetKey(ctx, unpackerPrivateKey)
	if diags.HasError() || len(raw) == 0 {
		return out, false, diags
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		diags.AddError("Unreadable private state", fmt.Sprintf("autoami_unpacker's private state: %v; this is a bug in the provider", err))
	}
	return out, true, diags
}

func (p unpackerPrivate) bytes() []byte {
	b, _ := json.Marshal(p)
	return b
}

func privateOf(u *unpackerinstance.Unpacker) unpackerPrivate {
	return unpackerPrivate{ClientCACertificatePEM: u.ClientCACertificatePEM, BinarySHA256: u.BinarySHA256,
		CreatedSecurityGroupID: u.CreatedSecurityGroupID}
}

func (m *unpackerModel) awsTarget() awsclient.Target {
	return awsclient.Target{RoleARN: m.RoleARN.ValueString(), Region: m.Region.ValueString()}
}

// target reads `target`; ok is false when it is null or unknown (after an
// import, before the identity is made).
func (m *unpackerModel) target(ctx context.Context) (unpackerTargetModel, bool) {
	var t unpackerTargetModel
	if m.Target.IsNull() || m.Target.IsUnknown() {
		return t, false
	}
	if diags := m.Target.As(ctx, &t, objectAsOptions); diags.HasError() {
		return t, false
	}
	return t, t.ClientCertificatePEM.ValueString() != ""
}

// identity is the client identity in state (empty after an import).
func (m *unpackerModel) identity(ctx context.Context, priv unpackerPrivate) unpackerinstance.Identity {
	t, _ := m.target(ctx)
	return unpackerinstance.Identity{ClientCACertificatePEM: priv.ClientCACertificatePEM,
		ClientCertificatePEM: t.ClientCertificatePEM.ValueString(), ClientPrivateKeyPEM: t.ClientPrivateKeyPEM.ValueString()}
}

// unpacker is the state as the unpackerinstance package sees it.
func (m *unpackerModel) unpacker(ctx context.Context, priv unpackerPrivate) (*unpackerinstance.Unpacker, diag.Diagnostics) {
	var diags diag.Diagnostics
	idle, err := parseIdle(m.IdlePoweroff.ValueString())
	if err != nil && !m.IdlePoweroff.IsNull() {
		diags.AddError("Invalid idle_poweroff in state", err.Error())
	}
	connect := m.ConnectVia.ValueString()
	if connect == "" {
		connect = unpackerinstance.ConnectViaPrivateIP
	}
	u := &unpackerinstance.Unpacker{
		Region: m.Region.ValueString(), AccountID: m.AccountID.ValueString(), RoleARN: m.RoleARN.ValueString(),
		InstanceID: m.InstanceID.ValueString(), State: m.InstanceState.ValueString(), ImageID: m.ImageID.ValueString(),
		Architecture: m.Architecture.ValueString(), InstanceType: m.InstanceType.ValueString(),
		AvailabilityZone: m.AvailabilityZone.ValueString(), SubnetID: m.SubnetID.ValueString(),
		CreatedSecurityGroupID: priv.CreatedSecurityGroupID, PrivateIP: m.PrivateIP.ValueString(), PublicIP: m.PublicIP.ValueString(),
		ConnectVia: connect, Port: int(m.Port.ValueInt64()), IdlePoweroff: idle, Endpoint: m.Endpoint.ValueString(),
		ServerCertificateFingerprint: m.ServerCertificateFingerprint.ValueString(), UnpackerVersion: m.UnpackerVersion.ValueString(),
		BinarySHA256: priv.BinarySHA256, ClientCACertificatePEM: priv.ClientCACertificatePEM,
	}
	diags.Append(setStrings(ctx, m.SecurityGroupIDs, &u.SecurityGroupIDs)...)
	diags.Append(setStrings(ctx, m.AllowedCIDRs, &u.AllowedCIDRs)...)
	return u, diags
}

func setStrings(ctx context.Context, s types.Set, out *[]string) diag.Diagnostics {
	if s.IsNull() || s.IsUnknown() {
		return nil
	}
	return s.ElementsAs(ctx, out, false)
}

func stringSet(values []string) types.Set {
	sorted := append([]string(nil), values...)
	sort.Strings(sorted)
	elems := make([]attr.Value, 0, len(sorted))
	for _, v := range sorted {
		elems = append(elems, types.StringValue(v))
	}
	return types.SetValueMust(types.StringType, elems)
}

// setFrom writes what u is into the model's computed attributes (and the
// optional ones the instance decides). id without a client certificate (an
// import) leaves `target` null.
func (m *unpackerModel) setFrom(u *unpackerinstance.Unpacker, id unpackerinstance.Identity) diag.Diagnostics {
	m.ID = types.StringValue(u.Region + "/" + u.InstanceID)
	m.Region = types.StringValue(u.Region)
	m.InstanceID = types.StringValue(u.InstanceID)
	m.AccountID = types.StringValue(u.AccountID)
	m.AvailabilityZone = types.StringValue(u.AvailabilityZone)
	m.PrivateIP = types.StringValue(u.PrivateIP)
	m.PublicIP = types.StringValue(u.PublicIP)
	m.Endpoint = types.StringValue(u.Endpoint)
	m.InstanceState = types.StringValue(u.State)
	m.ImageID = types.StringValue(u.ImageID)
	m.InstanceType = types.StringValue(u.InstanceType)
	m.SubnetID = types.StringValue(u.SubnetID)
	if u.Architecture != "" {
		m.Architecture = types.StringValue(u.Architecture)
	}
	if len(u.SecurityGroupIDs) > 0 {
		m.SecurityGroupIDs = stringSet(u.SecurityGroupIDs)
	}
	m.ServerCertificateFingerprint = nullIfEmpty(u.ServerCertificateFingerprint)
	m.UnpackerVersion = nullIfEmpty(u.UnpackerVersion)
	if id.ClientCertificatePEM == "" {
		m.Target = types.ObjectNull(unpackerTargetAttrTypes)
		return nil
	}
	t := u.Target(id)
	obj, diags := types.ObjectValue(unpackerTargetAttrTypes, map[string]attr.Value{
		"region":                         types.StringValue(t.Region),
		"account_id":                     types.StringValue(t.AccountID),
		"role_arn":                       types.StringValue(t.RoleARN),
		"instance_id":                    types.StringValue(t.InstanceID),
		"endpoint":                       types.StringValue(t.Endpoint),
		"server_certificate_fingerprint": types.StringValue(t.ServerCertificateFingerprint),
		"client_certificate_pem":         types.StringValue(t.ClientCertificatePEM),
		"client_private_key_pem":         types.StringValue(t.ClientPrivateKeyPEM),
	})
	m.Target = obj
	return diags
}

func nullIfEmpty(s string) types.String {
	if s == "" {
		return types.StringNull()
	}
	return types.StringValue(s)
}

// ownTags are an instance's tags less the provider's default tags, except
// the keys the configuration sets itself (as autoami_policy reads them).
func ownTags(ctx context.Context, actual map[string]string, configured types.Map, defaults map[string]string) (types.Map, diag.Diagnostics) {
	conf := map[string]string{}
	var diags diag.Diagnostics
	if !configured.IsNull() && !configured.IsUnknown() {
		diags = configured.ElementsAs(ctx, &conf, false)
	}
	own := map[string]string{}
	for k, v := range actual {
		_, mine := conf[k]
		if dv, isDefault := defaults[k]; mine || !isDefault || dv != v {
			own[k] = v
		}
	}
	if len(own) == 0 && configured.IsNull() {
		return types.MapNull(types.StringType), diags
	}
	out := map[string]attr.Value{}
	for k, v := range own {
		out[k] = types.StringValue(v)
	}
	m, d := types.MapValue(types.StringType, out)
	diags.Append(d...)
	return m, diags
}
