package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/autoami/terraform-provider-autoami/internal/publisher"
)

// publishedAMIModel is autoami_published_ami's state.
type publishedAMIModel struct {
	ID                       types.String           `tfsdk:"id"`
	ImageStream              types.String           `tfsdk:"image_stream"`
	Revision                 types.String           `tfsdk:"revision"`
	ContentStore             *contentStoreModel     `tfsdk:"content_store"`
	Targets                  types.List             `tfsdk:"targets"`
	Name                     types.String           `tfsdk:"name"`
	Description              types.String           `tfsdk:"description"`
	Architecture             types.String           `tfsdk:"architecture"`
	BootMode                 types.String           `tfsdk:"boot_mode"`
	ENASupport               types.Bool             `tfsdk:"ena_support"`
	IMDSSupport              types.String           `tfsdk:"imds_support"`
	TPMSupport               types.String           `tfsdk:"tpm_support"`
	VolumeType               types.String           `tfsdk:"volume_type"`
	VolumeSize               types.Int64            `tfsdk:"volume_size"`
	KMSKeyID                 types.String           `tfsdk:"kms_key_id"`
	LaunchPermission         *launchPermissionModel `tfsdk:"launch_permission"`
	SSMParameter             *ssmParameterModel     `tfsdk:"ssm_parameter"`
	PolicyID                 types.String           `tfsdk:"policy_id"`
	Concurrency              types.Int64            `tfsdk:"concurrency"`
	DeregistrationProtection types.Bool             `tfsdk:"deregistration_protection"`
	Tags                     types.Map              `tfsdk:"tags"`
	TagsAll                  types.Map              `tfsdk:"tags_all"`
	Timeouts                 timeouts.Value         `tfsdk:"timeouts"`
	AMIs                     types.Map              `tfsdk:"amis"`
	DeprecationTime          types.String           `tfsdk:"deprecation_time"`
}

type launchPermissionModel struct {
	AccountIDs             types.Set `tfsdk:"account_ids"`
	OrganizationARNs       types.Set `tfsdk:"organization_arns"`
	OrganizationalUnitARNs types.Set `tfsdk:"organizational_unit_arns"`
}

type ssmParameterModel struct {
	Name      types.String `tfsdk:"name"`
	Overwrite types.Bool   `tfsdk:"overwrite"`
}

// publishedAMIPrivateKey is the private-state key of publishedAMIPrivate.
const publishedAMIPrivateKey = "publication"

// publishedAMIPrivate is what the resource keeps out of plans: each
// target's record (its progress and what it holds), and the deprecation
// time the publication is meant to have (state shows drift, this the aim).
type publishedAMIPrivate struct {
	Records     map[string]publisher.Record `json:"records"`
	DeprecateAt time.Time                   `json:"deprecate_at,omitzero"`
}

func readPublishedAMIPrivate(ctx context.Context, p privateGetter) (publishedAMIPrivate, diag.Diagnostics) {
	out := publishedAMIPrivate{Records: map[string]publisher.Record{}}
	raw, diags := p.GetKey(ctx, publishedAMIPrivateKey)
	if diags.HasError() || len(raw) == 0 {
		return out, diags
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		diags.AddError("Unreadable private state", fmt.Sprintf("autoami_published_ami's private state: %v; this is a bug in the provider", err))
	}
	if out.Records == nil {
		out.Records = map[string]publisher.Record{}
	}
	return out, diags
}

func (p publishedAMIPrivate) bytes() []byte {
	b, _ := json.Marshal(p)
	return b
}

// targetsOf reads `targets`; known is false while any of it is unknown.
func targetsOf(ctx context.Context, l types.List) (targets []publisher.Target, known bool, diags diag.Diagnostics) {
	if l.IsNull() || l.IsUnknown() {
		return nil, false, nil
	}
	// A target of an unpacker still to be made is an unknown object, which
	// ElementsAs cannot convert into a model.
	for _, e := range l.Elements() {
		if e.IsUnknown() {
			return nil, false, nil
		}
	}
	var models []unpackerTargetModel
	if diags = l.ElementsAs(ctx, &models, false); diags.HasError() {
		return nil, false, diags
	}
	known = true
	for _, m := range models {
		for _, v := range []types.String{m.Region, m.AccountID, m.RoleARN, m.InstanceID, m.Endpoint,
			m.ServerCertificateFingerprint, m.ClientCertificatePEM, m.ClientPrivateKeyPEM} {
			if v.IsUnknown() {
				known = false
			}
		}
		targets = append(targets, publisher.Target{
			AccountID: m.AccountID.ValueString(), Region: m.Region.ValueString(), RoleARN: m.RoleARN.ValueString(),
			InstanceID: m.InstanceID.ValueString(), Endpoint: m.Endpoint.ValueString(),
			ServerCertificateFingerprint: m.ServerCertificateFingerprint.ValueString(),
			ClientCertificatePEM:         m.ClientCertificatePEM.ValueString(), ClientKeyPEM: m.ClientPrivateKeyPEM.ValueString(),
		})
	}
	return targets, known, nil
}

// targetKeys are the `amis` keys of the targets, or known=false when an
// account or region is not known yet.
func targetKeys(ctx context.Context, l types.List) (keys []string, known bool) {
	if l.IsNull() || l.IsUnknown() {
		return nil, false
	}
	var models []unpackerTargetModel
	if diags := l.ElementsAs(ctx, &models, false); diags.HasError() {
		return nil, false
	}
	for _, m := range models {
		if m.AccountID.IsUnknown() || m.Region.IsUnknown() {
			return nil, false
		}
		keys = append(keys, publisher.Target{AccountID: m.AccountID.ValueString(), Region: m.Region.ValueString()}.Key())
	}
	return keys, true
}

// publication is what the model asks for. date is the revision's creation
// time ({date}), deprecateAt the deprecation time (zero: none), tags the
// AMIs' tags (tags_all) and removed the tag keys dropped since the state.
func (m *publishedAMIModel) publication(ctx context.Context, date, deprecateAt time.Time, tags map[string]string, removed []string) (publisher.Publication, diag.Diagnostics) {
	var diags diag.Diagnostics
	pub := publisher.Publication{
		ID: m.ImageStream.ValueString(), Stream: m.ImageStream.ValueString(), Revision: m.Revision.ValueString(),
		NameTemplate: m.Name.ValueString(), Date: date, Description: m.Description.ValueString(),
		Architecture: m.Architecture.ValueString(), BootMode: m.BootMode.ValueString(),
		ENASupport: m.ENASupport.ValueBool(), IMDSSupport: m.IMDSSupport.ValueString(), TPMSupport: m.TPMSupport.ValueString(),
		VolumeType: m.VolumeType.ValueString(), VolumeSizeGiB: int32(m.VolumeSize.ValueInt64()),
		KMSKeyID:                 m.KMSKeyID.ValueString(),
		DeprecateAt:              deprecateAt,
		DeregistrationProtection: m.DeregistrationProtection.ValueBool(),
		Tags:                     tags,
		RemovedTags:              removed,
	}
	if lp := m.LaunchPermission; lp != nil {
		diags.Append(setStrings(ctx, lp.AccountIDs, &pub.LaunchPermission.AccountIDs)...)
		diags.Append(setStrings(ctx, lp.OrganizationARNs, &pub.LaunchPermission.OrganizationARNs)...)
		diags.Append(setStrings(ctx, lp.OrganizationalUnitARNs, &pub.LaunchPermission.OrganizationalUnitARNs)...)
	}
	if p := m.SSMParameter; p != nil {
		pub.SSMParameter = &publisher.SSMParameter{Name: p.Name.ValueString(), Overwrite: p.Overwrite.ValueBool()}
	}
	return pub.WithDefaults(), diags
}

// amiValue is one `amis` element.
func amiValue(r publisher.Record) attr.Value {
	created := types.StringNull()
	if !r.CreatedAt.IsZero() {
		created = types.StringValue(r.CreatedAt.UTC().Format(time.RFC3339))
	}
	return types.ObjectValueMust(publishedAMIAttrTypes, map[string]attr.Value{
		"image_id": types.StringValue(r.ImageID), "snapshot_id": types.StringValue(r.SnapshotID),
		"name": types.StringValue(r.Name), "created_at": created,
	})
}

// amisValue is `amis` of the published records.
func amisValue(records map[string]publisher.Record) types.Map {
	elems := map[string]attr.Value{}
	for k, r := range records {
		if r.Published() {
			elems[k] = amiValue(r)
		}
	}
	return types.MapValueMust(types.ObjectType{AttrTypes: publishedAMIAttrTypes}, elems)
}

// recordsFromAMIs rebuilds published records from `amis` (a state written
// without private state, e.g. by an older provider).
func recordsFromAMIs(ctx context.Context, amis types.Map, revision string) map[string]publisher.Record {
	out := map[string]publisher.Record{}
	if amis.IsNull() || amis.IsUnknown() {
		return out
	}
	var elems map[string]struct {
		ImageID    types.String `tfsdk:"image_id"`
		SnapshotID types.String `tfsdk:"snapshot_id"`
		Name       types.String `tfsdk:"name"`
		CreatedAt  types.String `tfsdk:"created_at"`
	}
	if diags := amis.ElementsAs(ctx, &elems, false); diags.HasError() {
		return out
	}
	for k, e := range elems {
		created, _ := time.Parse(time.RFC3339, e.CreatedAt.ValueString())
		out[k] = publisher.Record{Target: k, Revision: revision, Step: publisher.StepDone, ImageID: e.ImageID.ValueString(),
			SnapshotID: e.SnapshotID.ValueString(), Name: e.Name.ValueString(), CreatedAt: created}
	}
	return out
}

// mapOf reads a known string map (nil when null or unknown).
func mapOf(ctx context.Context, m types.Map, diags *diag.Diagnostics) map[string]string {
	if m.IsNull() || m.IsUnknown() {
		return nil
	}
	out := map[string]string{}
	diags.Append(m.ElementsAs(ctx, &out, false)...)
	return out
}

// removedKeys are the keys of before that after lacks, sorted.
func removedKeys(before, after map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(before)) {
		if _, ok := after[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}

// deprecationValue is deprecation_time of t (null when zero).
func deprecationValue(t time.Time) types.String {
	if t.IsZero() {
		return types.StringNull()
	}
	return types.StringValue(t.UTC().Format(time.RFC3339))
}
