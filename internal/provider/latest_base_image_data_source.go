package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/datasourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/autoami/terraform-provider-autoami/internal/awsclient"
	"github.com/autoami/terraform-provider-autoami/internal/baseimage"
)

var (
	_ datasource.DataSourceWithConfigure        = (*latestBaseImageDataSource)(nil)
	_ datasource.DataSourceWithConfigValidators = (*latestBaseImageDataSource)(nil)
	_ datasource.DataSourceWithValidateConfig   = (*latestBaseImageDataSource)(nil)
)

// NewLatestBaseImageDataSource is the constructor of autoami_latest_base_image.
func NewLatestBaseImageDataSource() datasource.DataSource { return &latestBaseImageDataSource{} }

type latestBaseImageDataSource struct {
	data *providerData
}

type filterModel struct {
	Name   types.String `tfsdk:"name"`
	Values types.List   `tfsdk:"values"`
}

// baseImageLookupModel holds the lookup arguments the data source and the
// image stream's base_image share.
type baseImageLookupModel struct {
	SSMParameter      types.String  `tfsdk:"ssm_parameter"`
	Owners            types.List    `tfsdk:"owners"`
	Name              types.String  `tfsdk:"name"`
	Filters           []filterModel `tfsdk:"filter"`
	Architecture      types.String  `tfsdk:"architecture"`
	IncludeDeprecated types.Bool    `tfsdk:"include_deprecated"`
	RoleARN           types.String  `tfsdk:"role_arn"`
	Advisories        types.String  `tfsdk:"advisories"`
	SecurityLevelTag  types.String  `tfsdk:"security_level_tag"`
}

// selector turns the lookup arguments into a baseimage.Selector.
func (m *baseImageLookupModel) selector(ctx context.Context) (baseimage.Selector, diag.Diagnostics) {
	var diags diag.Diagnostics
	sel := baseimage.Selector{
		SSMParameter:      m.SSMParameter.ValueString(),
		Name:              m.Name.ValueString(),
		Architecture:      m.Architecture.ValueString(),
		IncludeDeprecated: m.IncludeDeprecated.ValueBool(),
		Advisories:        m.Advisories.ValueString(),
		SecurityLevelTag:  m.SecurityLevelTag.ValueString(),
	}
	diags.Append(m.Owners.ElementsAs(ctx, &sel.Owners, false)...)
	for _, f := range m.Filters {
		var values []string
		diags.Append(f.Values.ElementsAs(ctx, &values, false)...)
		sel.Filters = append(sel.Filters, baseimage.Filter{Name: f.Name.ValueString(), Values: values})
	}
	return sel, diags
}

type latestBaseImageModel struct {
	// Arguments.
	baseImageLookupModel
	Region types.String `tfsdk:"region"`

	// Attributes.
	ID                   types.String `tfsdk:"id"`
	Description          types.String `tfsdk:"description"`
	OwnerID              types.String `tfsdk:"owner_id"`
	CreationDate         types.String `tfsdk:"creation_date"`
	BootMode             types.String `tfsdk:"boot_mode"`
	ENASupport           types.Bool   `tfsdk:"ena_support"`
	RootDeviceName       types.String `tfsdk:"root_device_name"`
	RootSnapshotID       types.String `tfsdk:"root_snapshot_id"`
	DeprecationTime      types.String `tfsdk:"deprecation_time"`
	PreviousID           types.String `tfsdk:"previous_id"`
	PreviousName         types.String `tfsdk:"previous_name"`
	PreviousCreationDate types.String `tfsdk:"previous_creation_date"`
	UpdateType           types.String `tfsdk:"update_type"`
	SecurityLevel        types.String `tfsdk:"security_level"`
	ChangelogURL         types.String `tfsdk:"changelog_url"`
	CVEs                 types.List   `tfsdk:"cves"`
}

func (d *latestBaseImageDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_latest_base_image"
}

func computedString(desc string) schema.StringAttribute {
	return schema.StringAttribute{Computed: true, MarkdownDescription: desc}
}

func (d *latestBaseImageDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Finds the newest base image (AMI) and says what changed since the one before it: " +
			"the previous image, the update type and the security level, from a tag on the image or an advisory feed.\n\n" +
			"Look up by `ssm_parameter`, or by `owners` with `name` and/or `filter`. With owners, the newest image is the one " +
			"with the latest `CreationDate`; ties are broken by name, then by image ID, both descending, so the answer is " +
			"deterministic. `previous_*` describe the next image in that order (for an SSM parameter: the newest image an " +
			"earlier version of the parameter named).",
		Attributes: map[string]schema.Attribute{
			"ssm_parameter": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "SSM parameter holding the AMI ID, e.g. " +
					"`/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64`. Conflicts with `owners`.",
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"owners": schema.ListAttribute{
				ElementType:         types.StringType,
				Optional:            true,
				MarkdownDescription: "Owners to search (account IDs, `self`, `amazon`, `aws-marketplace`). Required for `name` and `filter` lookups.",
				Validators:          []validator.List{listvalidator.SizeAtLeast(1), listvalidator.NoNullValues()},
			},
			"name": schema.StringAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "In: an image name pattern (AWS wildcards: `*` and `?`), e.g. `al2023-ami-2023.*-x86_64`. " +
					"Out: the name of the image found.",
				Validators: []validator.String{
					stringvalidator.ConflictsWith(path.MatchRoot("ssm_parameter")),
					stringvalidator.AlsoRequires(path.MatchRoot("owners")),
				},
			},
			"architecture": schema.StringAttribute{
				Optional:            true,
				Computed:            true,
				MarkdownDescription: "Image architecture. Default `x86_64`.",
				Validators:          []validator.String{stringvalidator.OneOf("x86_64", "arm64", "i386", "x86_64_mac", "arm64_mac")},
			},
			"include_deprecated": schema.BoolAttribute{
				Optional:            true,
				MarkdownDescription: "Also consider deprecated images. Default `false`.",
			},
			"region": schema.StringAttribute{
				Optional:            true,
				Computed:            true,
				MarkdownDescription: "Region to search. Default: the provider's home region.",
				Validators:          []validator.String{regionValidator()},
			},
			"role_arn": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "Role to assume to search from another account.",
				Validators:          []validator.String{roleARNValidator()},
			},
			"advisories": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Advisory feed: a path or an `http(s)://` URL of a JSON document mapping images to a " +
					"security level, update type, changelog URL and CVEs (format below). A tag on the image wins over the feed.",
			},
			"security_level_tag": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: fmt.Sprintf("Tag key on the image carrying its security level (%s). Default `%s`.", securityLevelWords, baseimage.DefaultSecurityLevelTag),
			},

			"id":                     computedString("Image ID of the newest image."),
			"description":            computedString("Image description."),
			"owner_id":               computedString("Account that owns the image."),
			"creation_date":          computedString("When the image was created (RFC 3339)."),
			"boot_mode":              computedString("Boot mode (`legacy-bios`, `uefi`, `uefi-preferred`), empty when the image does not say."),
			"ena_support":            schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether the image supports ENA."},
			"root_device_name":       computedString("Root device name, e.g. `/dev/xvda`."),
			"root_snapshot_id":       computedString("Snapshot of the root device."),
			"deprecation_time":       computedString("When the image is (or was) deprecated (RFC 3339); null when never."),
			"previous_id":            computedString("The image before this one; null when there is none."),
			"previous_name":          computedString("Name of the previous image."),
			"previous_creation_date": computedString("Creation time of the previous image (RFC 3339)."),
			"update_type":            computedString("`security`, `feature`, `maintenance` or `unknown`."),
			"security_level":         computedString(securityLevelDescription),
			"changelog_url":          computedString("Changelog link from the advisory feed; null when none."),
			"cves": schema.ListAttribute{
				ElementType: types.StringType, Computed: true,
				MarkdownDescription: "CVE IDs from the advisory feed.",
			},
		},
		Blocks: map[string]schema.Block{
			"filter": schema.ListNestedBlock{
				MarkdownDescription: "DescribeImages filter, e.g. `name = \"tag:team\"`. Requires `owners`.",
				Validators: []validator.List{
					listvalidator.ConflictsWith(path.MatchRoot("ssm_parameter")),
					listvalidator.AlsoRequires(path.MatchRoot("owners")),
				},
				NestedObject: schema.NestedBlockObject{
					Attributes: map[string]schema.Attribute{
						"name": schema.StringAttribute{Required: true, MarkdownDescription: "Filter name."},
						"values": schema.ListAttribute{
							ElementType: types.StringType, Required: true,
							MarkdownDescription: "Values; any may match.",
							Validators:          []validator.List{listvalidator.SizeAtLeast(1), listvalidator.NoNullValues()},
						},
					},
				},
			},
		},
	}
}

func (d *latestBaseImageDataSource) ConfigValidators(context.Context) []datasource.ConfigValidator {
	return []datasource.ConfigValidator{
		// Two validators rather than ExactlyOneOf, whose message does not
		// say which mistake was made.
		datasourcevalidator.Conflicting(path.MatchRoot("ssm_parameter"), path.MatchRoot("owners")),
		datasourcevalidator.AtLeastOneOf(path.MatchRoot("ssm_parameter"), path.MatchRoot("owners")),
	}
}

// ValidateConfig catches, at plan time, selectors the attribute validators
// cannot see (owners with neither a name nor a filter).
func (d *latestBaseImageDataSource) ValidateConfig(ctx context.Context, req datasource.ValidateConfigRequest, resp *datasource.ValidateConfigResponse) {
	var m latestBaseImageModel
	if diags := req.Config.Get(ctx, &m); diags.HasError() {
		return // unknown values: checked again when known
	}
	if m.Owners.IsNull() || m.Owners.IsUnknown() || m.Name.IsUnknown() || len(m.Owners.Elements()) == 0 {
		return
	}
	if m.Name.IsNull() && len(m.Filters) == 0 {
		resp.Diagnostics.AddAttributeError(path.Root("owners"), "Search too wide",
			"owners needs a name pattern or at least one filter block to narrow the search")
	}
}

func (d *latestBaseImageDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	data, diags := providerDataFrom(req.ProviderData)
	resp.Diagnostics.Append(diags...)
	d.data = data
}

func (d *latestBaseImageDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m latestBaseImageModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	sel, diags := m.selector(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	target := awsclient.Target{RoleARN: m.RoleARN.ValueString(), Region: m.Region.ValueString()}
	clients, err := d.data.clients.For(ctx, target)
	if err != nil {
		attr := path.Root("region")
		if target.RoleARN != "" {
			attr = path.Root("role_arn")
		}
		resp.Diagnostics.AddAttributeError(attr, "No AWS access for the base image lookup", err.Error())
		return
	}
	tflog.Info(ctx, "looking up base image", map[string]any{"selector": sel.Describe(), "region": clients.Target.Region, "account": clients.AccountID})
	res, err := baseimage.Find(ctx, clients.EC2, clients.SSM, sel)
	if err != nil {
		resp.Diagnostics.AddError("Base image lookup failed",
			fmt.Sprintf("In region %s of account %s: %s", clients.Target.Region, clients.AccountID, err))
		return
	}
	for _, w := range res.Warnings {
		resp.Diagnostics.AddAttributeWarning(path.Root("ssm_parameter"), "Base image lookup incomplete", w)
	}
	tflog.Info(ctx, "found base image", map[string]any{"id": res.Image.ID, "name": res.Image.Name,
		"security_level": res.SecurityLevel, "level_source": res.LevelSource})

	img := res.Image
	m.Region = types.StringValue(clients.Target.Region)
	m.ID = types.StringValue(img.ID)
	m.Name = types.StringValue(img.Name)
	m.Architecture = types.StringValue(img.Architecture)
	m.Description = types.StringValue(img.Description)
	m.OwnerID = types.StringValue(img.OwnerID)
	m.CreationDate = timeString(img.CreationDate)
	m.BootMode = types.StringValue(img.BootMode)
	m.ENASupport = types.BoolValue(img.ENASupport)
	m.RootDeviceName = types.StringValue(img.RootDeviceName)
	m.RootSnapshotID = types.StringValue(img.RootSnapshotID)
	m.DeprecationTime = types.StringNull()
	if img.DeprecationTime != nil {
		m.DeprecationTime = timeString(*img.DeprecationTime)
	}
	m.PreviousID, m.PreviousName, m.PreviousCreationDate = types.StringNull(), types.StringNull(), types.StringNull()
	if p := res.Previous; p != nil {
		m.PreviousID, m.PreviousName, m.PreviousCreationDate = types.StringValue(p.ID), types.StringValue(p.Name), timeString(p.CreationDate)
	}
	m.UpdateType = types.StringValue(res.UpdateType)
	m.SecurityLevel = types.StringValue(res.SecurityLevel.String())
	m.ChangelogURL = types.StringNull()
	if res.ChangelogURL != "" {
		m.ChangelogURL = types.StringValue(res.ChangelogURL)
	}
	cves, diags := types.ListValueFrom(ctx, types.StringType, nonNil(res.CVEs))
	resp.Diagnostics.Append(diags...)
	m.CVEs = cves
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// Descriptions of security levels, shared by the data source and the image
// stream: the canonical levels are reported, the vendors' words accepted.
const (
	securityLevelWords       = "`critical`, `high`, `medium`, `low` or `unknown`, case-insensitive; the vendors' words `important`, `moderate` and `negligible` mean `high`, `medium` and `low`"
	securityLevelDescription = "`critical`, `high`, `medium`, `low` or `unknown`. A tag or feed saying `important`, `moderate` or `negligible` (the words of Amazon Linux, Red Hat and Ubuntu advisories) is reported as `high`, `medium` or `low`."
)

// timeString renders a time as RFC 3339 in UTC; the zero time is null.
func timeString(t time.Time) types.String {
	if t.IsZero() {
		return types.StringNull()
	}
	return types.StringValue(t.UTC().Format(time.RFC3339))
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
