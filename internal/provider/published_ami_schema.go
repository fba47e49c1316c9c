package provider

import (
	"context"
	"regexp"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/boolplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/objectplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/autoami/terraform-provider-autoami/internal/publisher"
)

// Default timeouts of autoami_published_ami: a first publication unpacks a
// whole tree and waits for snapshots, which take minutes per GiB in AWS.
const (
	defaultPublishedAMICreateTimeout = 90 * time.Minute
	defaultPublishedAMIUpdateTimeout = 90 * time.Minute
	defaultPublishedAMIDeleteTimeout = 30 * time.Minute
	defaultPublishedAMIReadTimeout   = 5 * time.Minute
)

// revisionRE is the shape of a stream revision.
var revisionRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// publishedAMIAttrTypes are the fields of an `amis` element.
var publishedAMIAttrTypes = map[string]attr.Type{
	"image_id":    types.StringType,
	"snapshot_id": types.StringType,
	"name":        types.StringType,
	"created_at":  types.StringType,
}

// publishedAMITargetAttrTypes are the fields of a `targets` element: an
// autoami_unpacker's `target`.
var publishedAMITargetAttrTypes = unpackerTargetAttrTypes

func (r *publishedAMIResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	replace := []planmodifier.String{stringplanmodifier.RequiresReplaceIf(replaceStringUnlessImported, replaceDescription, replaceDescription)}
	resp.Schema = schema.Schema{
		MarkdownDescription: "One revision of an image stream, published as an encrypted AMI in every target (account, " +
			"region) at once. Each target's unpacker patches the stream's persistent volume in that target to the " +
			"revision (only what changed is fetched and written), the volume is snapshotted and registered, and the AMI " +
			"is tagged, shared, deprecated and written to an SSM parameter as asked. Raw-image streams are written " +
			"straight into snapshots with the EBS direct API (only differing blocks).\n\n" +
			"A new `revision` publishes new AMIs in place (the previous ones stay registered, deprecated at their " +
			"time). A target that fails names itself and the step and does not undo the others; the next apply " +
			"finishes only what is missing, also after an interrupted apply. An AMI deregistered out of band is " +
			"republished in its target only; launch permissions, the SSM parameter, deprecation and protection " +
			"changed out of band are restored. Destroy deregisters the AMIs (all revisions), deletes their " +
			"snapshots, the SSM parameters it wrote and the stream volumes.\n\n" +
			"Import: `terraform import autoami_published_ami.NAME STREAM_NAME` (the ID is the stream's name). The " +
			"next plan finds the revision's AMIs in the configured targets by their tags and the apply adopts them " +
			"without making new ones.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed: true,
				MarkdownDescription: "The stream's name: what every volume, snapshot, AMI and parameter of this publication " +
					"is tagged with (`autoami:publication`). One publication per stream and target.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"image_stream": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "`id` of the `autoami_image_stream` (its name). Changing it replaces the resource.",
				Validators:          []validator.String{streamNameValidator()},
				PlanModifiers:       replace,
			},
			"revision": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "`revision` of the stream to publish. A new revision publishes new AMIs in every " +
					"target (in place); the plan shows it changing.",
				Validators: []validator.String{stringvalidator.RegexMatches(revisionRE, "must be a stream revision (64 lower-case hex digits)")},
			},
			"content_store": schema.SingleNestedAttribute{
				Optional: true,
				MarkdownDescription: "Content store holding the stream, when it is not the provider's `content_store` " +
					"(the same as the stream's own `content_store`).",
				Attributes: map[string]schema.Attribute{
					"bucket": schema.StringAttribute{Required: true, MarkdownDescription: "S3 bucket."},
					"prefix": schema.StringAttribute{Optional: true, MarkdownDescription: "Key prefix."},
				},
				PlanModifiers: []planmodifier.Object{objectplanmodifier.RequiresReplaceIf(replaceObjectUnlessImported, replaceDescription, replaceDescription)},
			},
			"targets": schema.ListNestedAttribute{
				Required: true,
				MarkdownDescription: "Where to publish: the `target` of one `autoami_unpacker` per account and region, " +
					"`[autoami_unpacker.a.target, autoami_unpacker.b.target]`. One AMI per target. A target removed from " +
					"the list has its AMIs and stream volume deleted.",
				Validators: []validator.List{listvalidator.SizeAtLeast(1)},
				// Optional, not Required: a target of an unpacker made in the same
				// apply is an unknown object at plan, whose attributes the
				// framework reads as null (terraform-plugin-framework#186) and
				// would refuse as missing. The plan checks them once known
				// (publisher.ValidateTargets names each one).
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"region":                         schema.StringAttribute{Optional: true, MarkdownDescription: "Region."},
					"account_id":                     schema.StringAttribute{Optional: true, MarkdownDescription: "Account ID."},
					"role_arn":                       schema.StringAttribute{Optional: true, MarkdownDescription: "Role reaching the account (`\"\"`: the provider's own)."},
					"instance_id":                    schema.StringAttribute{Optional: true, MarkdownDescription: "Unpacker instance."},
					"endpoint":                       schema.StringAttribute{Optional: true, MarkdownDescription: "`host:port` of the unpacker's daemon."},
					"server_certificate_fingerprint": schema.StringAttribute{Optional: true, MarkdownDescription: "Pinned fingerprint of the daemon's certificate."},
					"client_certificate_pem":         schema.StringAttribute{Optional: true, MarkdownDescription: "Client certificate (PEM)."},
					"client_private_key_pem":         schema.StringAttribute{Optional: true, Sensitive: true, MarkdownDescription: "Private key of the client certificate."},
				}},
			},
			"name": schema.StringAttribute{
				Optional: true, Computed: true,
				Default: stringdefault.StaticString(publisher.DefaultNameTemplate),
				MarkdownDescription: "AMI name template: `{stream}` (the stream's name), `{revision}` (its first 12 hex " +
					"digits) and `{date}` (the revision's creation time, UTC, `20060102-1504`). A name already taken in a " +
					"target is an error naming it. Changing it replaces the resource.",
				PlanModifiers: replace,
			},
			"description": schema.StringAttribute{
				Optional: true, MarkdownDescription: "AMI description (up to 255 characters). Changing it replaces the resource.",
				Validators: []validator.String{stringvalidator.LengthAtMost(255)}, PlanModifiers: replace,
			},
			"architecture": schema.StringAttribute{
				Optional: true, Computed: true, Default: stringdefault.StaticString(publisher.DefaultArchitecture),
				MarkdownDescription: "`x86_64` (default) or `arm64`. Changing it replaces the resource.",
				Validators:          []validator.String{stringvalidator.OneOf("x86_64", "arm64")}, PlanModifiers: replace,
			},
			"boot_mode": schema.StringAttribute{
				Optional: true, Computed: true, Default: stringdefault.StaticString(publisher.DefaultBootMode),
				MarkdownDescription: "`legacy-bios`, `uefi` or `uefi-preferred` (default: from-scratch volumes boot both " +
					"ways). Changing it replaces the resource.",
				Validators: []validator.String{stringvalidator.OneOf("legacy-bios", "uefi", "uefi-preferred")}, PlanModifiers: replace,
			},
			"ena_support": schema.BoolAttribute{
				Optional: true, Computed: true, Default: booldefault.StaticBool(true),
				MarkdownDescription: "Whether the AMI supports ENA (default true). Changing it replaces the resource.",
				PlanModifiers:       []planmodifier.Bool{boolplanmodifier.RequiresReplaceIf(replaceBoolUnlessImported, replaceDescription, replaceDescription)},
			},
			"imds_support": schema.StringAttribute{
				Optional: true, Computed: true, Default: stringdefault.StaticString(publisher.DefaultIMDSSupport),
				MarkdownDescription: "`v2.0` (default: instances require IMDSv2) or `\"\"` (IMDSv1 allowed). Changing it " +
					"replaces the resource.",
				Validators: []validator.String{stringvalidator.OneOf("v2.0", "")}, PlanModifiers: replace,
			},
			"tpm_support": schema.StringAttribute{
				Optional: true, MarkdownDescription: "`v2.0` for NitroTPM (needs `uefi`). Changing it replaces the resource.",
				Validators: []validator.String{stringvalidator.OneOf("v2.0")}, PlanModifiers: replace,
			},
			"volume_type": schema.StringAttribute{
				Optional: true, Computed: true, Default: stringdefault.StaticString(publisher.DefaultVolumeType),
				MarkdownDescription: "Root volume type of instances (`gp3` default, `gp2`, `io1`, `io2`, `st1`, `sc1`, " +
					"`standard`). Changing it replaces the resource.",
				Validators: []validator.String{stringvalidator.OneOf("gp3", "gp2", "io1", "io2", "st1", "sc1", "standard")}, PlanModifiers: replace,
			},
			"volume_size": schema.Int64Attribute{
				Optional: true,
				MarkdownDescription: "Root volume size of instances, GiB. Default: the snapshot's size (the content × 1.25 " +
					"plus room for the boot partitions, rounded up to GiB). Changing it replaces the resource.",
				Validators:    []validator.Int64{int64validator.Between(1, 65536)},
				PlanModifiers: []planmodifier.Int64{int64planmodifier.RequiresReplaceIf(replaceInt64UnlessImported, replaceDescription, replaceDescription)},
			},
			"kms_key_id": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "KMS key (ID, `alias/NAME` or ARN) every target resolves in its own account and region. " +
					"Default: each target's default EBS key. No key is ever shared across accounts; sharing AMIs needs " +
					"customer managed keys. Changing it replaces the resource.",
				PlanModifiers: replace,
			},
			"launch_permission": schema.SingleNestedAttribute{
				Optional: true,
				MarkdownDescription: "Who may launch the AMIs besides their owner. Accounts also get `createVolumePermission` " +
					"on the snapshots. Nothing is ever public; grants made out of band are removed.",
				Attributes: map[string]schema.Attribute{
					"account_ids":              schema.SetAttribute{ElementType: types.StringType, Optional: true, MarkdownDescription: "Account IDs."},
					"organization_arns":        schema.SetAttribute{ElementType: types.StringType, Optional: true, MarkdownDescription: "Organization ARNs."},
					"organizational_unit_arns": schema.SetAttribute{ElementType: types.StringType, Optional: true, MarkdownDescription: "Organizational unit ARNs."},
				},
			},
			"ssm_parameter": schema.SingleNestedAttribute{
				Optional: true,
				MarkdownDescription: "An SSM parameter written in every target with the AMI's ID (data type " +
					"`aws:ec2:image`), then read back until it holds it (AWS validates such values asynchronously).",
				Attributes: map[string]schema.Attribute{
					"name": schema.StringAttribute{Required: true, MarkdownDescription: "Parameter name, e.g. `/images/web/latest`.",
						Validators: []validator.String{stringCheck{"Invalid SSM parameter name", "an SSM parameter name", publisher.ValidateSSMParameterName}}},
					"overwrite": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(false),
						MarkdownDescription: "Allow replacing a parameter this publication did not write (default false)."},
				},
			},
			"policy_id": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "`id` of an `autoami_policy`: the AMIs are deprecated at their publication time plus " +
					"its `max_age`. Without it the AMIs are not deprecated.",
			},
			"concurrency": schema.Int64Attribute{
				Optional: true, Computed: true, Default: int64default.StaticInt64(publisher.DefaultConcurrency),
				MarkdownDescription: "How many targets are worked on at once (default 8).",
				Validators:          []validator.Int64{int64validator.Between(1, 64)},
			},
			"deregistration_protection": schema.BoolAttribute{
				Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				MarkdownDescription: "Protect the AMIs from deregistration (without cooldown; destroy lifts it).",
			},
			"tags": schema.MapAttribute{
				ElementType: types.StringType, Optional: true,
				MarkdownDescription: "Tags of the AMIs, their snapshots and the stream volumes, over the provider's " +
					"`default_tags`. Keys starting with `autoami:` are reserved.",
			},
			"tags_all": schema.MapAttribute{
				ElementType: types.StringType, Computed: true,
				MarkdownDescription: "Tags with the provider's `default_tags` included.",
			},
			"timeouts": timeouts.Attributes(ctx, timeouts.Opts{Create: true, Update: true, Delete: true, Read: true}),

			"amis": schema.MapNestedAttribute{
				Computed: true,
				MarkdownDescription: "The published AMIs, keyed `ACCOUNT_ID/REGION`. A target being (re)published is " +
					"`(known after apply)` in the plan; the others stay known.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"image_id":    schema.StringAttribute{Computed: true, MarkdownDescription: "AMI ID."},
					"snapshot_id": schema.StringAttribute{Computed: true, MarkdownDescription: "Root snapshot ID."},
					"name":        schema.StringAttribute{Computed: true, MarkdownDescription: "AMI name."},
					"created_at":  schema.StringAttribute{Computed: true, MarkdownDescription: "Creation time (RFC 3339)."},
				}},
			},
			"deprecation_time": schema.StringAttribute{
				Computed: true,
				MarkdownDescription: "When the AMIs are deprecated (RFC 3339): the time this revision was first published " +
					"plus the policy's `max_age`, rounded up to the minute; null without `policy_id`.",
			},
		},
	}
}

// replaceDescription says what the attributes replaced unless imported do.
const replaceDescription = "Changing it replaces the resource (every AMI: their attributes are immutable). After an " +
	"import the configuration's value is taken as it is."

// imported reports whether a prior state is an imported publication not yet
// applied: its state holds only its ID and stream, not its targets. Its
// first plan takes the configuration's values instead of replacing the
// resource (which would delete the AMIs the import adopts).
func imported(ctx context.Context, state tfsdk.State) bool {
	var targets types.List
	if state.Raw.IsNull() || state.GetAttribute(ctx, path.Root("targets"), &targets).HasError() {
		return false
	}
	return targets.IsNull()
}

func replaceStringUnlessImported(ctx context.Context, req planmodifier.StringRequest, resp *stringplanmodifier.RequiresReplaceIfFuncResponse) {
	resp.RequiresReplace = !imported(ctx, req.State)
}

func replaceBoolUnlessImported(ctx context.Context, req planmodifier.BoolRequest, resp *boolplanmodifier.RequiresReplaceIfFuncResponse) {
	resp.RequiresReplace = !imported(ctx, req.State)
}

func replaceInt64UnlessImported(ctx context.Context, req planmodifier.Int64Request, resp *int64planmodifier.RequiresReplaceIfFuncResponse) {
	resp.RequiresReplace = !imported(ctx, req.State)
}

func replaceObjectUnlessImported(ctx context.Context, req planmodifier.ObjectRequest, resp *objectplanmodifier.RequiresReplaceIfFuncResponse) {
	resp.RequiresReplace = !imported(ctx, req.State)
}
