// Package provider is the Terraform layer of autoami: schemas, plans, drift
// and state. It stays thin; the work is done by packages that know no
// Terraform (awsclient, baseimage, policy, the publisher and the unpacker).
package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/autoami/terraform-provider-autoami/internal/awsclient"
)

// RegistryAddress is the provider's address in the Terraform registry.
const RegistryAddress = "registry.terraform.io/autoami/autoami"

var _ provider.Provider = (*autoamiProvider)(nil)

// New returns a constructor of the provider at the given version.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &autoamiProvider{version: version} }
}

type autoamiProvider struct {
	version string
}

// providerModel is the provider block.
type providerModel struct {
	Region       types.String       `tfsdk:"region"`
	Profile      types.String       `tfsdk:"profile"`
	AssumeRole   *assumeRoleModel   `tfsdk:"assume_role"`
	DefaultTags  types.Map          `tfsdk:"default_tags"`
	MaxRetries   types.Int64        `tfsdk:"max_retries"`
	EndpointURL  types.String       `tfsdk:"endpoint_url"`
	Endpoints    *endpointsModel    `tfsdk:"endpoints"`
	ContentStore *contentStoreModel `tfsdk:"content_store"`
}

type assumeRoleModel struct {
	RoleARN     types.String `tfsdk:"role_arn"`
	SessionName types.String `tfsdk:"session_name"`
	ExternalID  types.String `tfsdk:"external_id"`
}

type endpointsModel struct {
	EC2 types.String `tfsdk:"ec2"`
	S3  types.String `tfsdk:"s3"`
	SSM types.String `tfsdk:"ssm"`
	STS types.String `tfsdk:"sts"`
	KMS types.String `tfsdk:"kms"`
	EBS types.String `tfsdk:"ebs"`
	IAM types.String `tfsdk:"iam"`
}

type contentStoreModel struct {
	Bucket types.String `tfsdk:"bucket"`
	Prefix types.String `tfsdk:"prefix"`
}

// providerData is what resources and data sources receive in Configure.
type providerData struct {
	// clients gives AWS clients per target; clients.HomeRegion() is the
	// home region.
	clients *awsclient.Factory
	// defaultTags are added to everything autoami creates; a resource's own
	// tags win.
	defaultTags map[string]string
	// contentStore is the default content store of image streams; nil when
	// the provider sets none.
	contentStore *ContentStore
	version      string
}

// ContentStore is an S3 location holding content-addressed objects and
// manifests.
type ContentStore struct {
	Bucket string
	Prefix string
}

func (p *autoamiProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "autoami"
	resp.Version = p.version
}

func endpointAttribute(service string) schema.StringAttribute {
	return schema.StringAttribute{
		Optional:            true,
		MarkdownDescription: fmt.Sprintf("Endpoint URL for %s. Overrides `endpoint_url` and `AWS_ENDPOINT_URL_%s`.", service, upper(service)),
		Validators:          []validator.String{urlValidator()},
	}
}

func (p *autoamiProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "The autoami provider publishes identical, encrypted AMIs into many AWS accounts and regions, " +
			"and turns upstream security updates into planned rebuilds.\n\n" +
			"Credentials come from the standard AWS chain: environment variables, the shared config and " +
			"credentials files (`profile`), web identity, and instance metadata.",
		Attributes: map[string]schema.Attribute{
			"region": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "The home region: where the content store and policies live, and the default region " +
					"of every target. Defaults to `AWS_REGION` or the profile's region.",
				Validators: []validator.String{regionValidator()},
			},
			"profile": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "Profile of the shared config and credentials files. Defaults to `AWS_PROFILE`, then `default`.",
			},
			"default_tags": schema.MapAttribute{
				ElementType:         types.StringType,
				Optional:            true,
				MarkdownDescription: "Tags added to everything autoami creates. A resource's own `tags` win on conflict.",
			},
			"max_retries": schema.Int64Attribute{
				Optional: true,
				MarkdownDescription: fmt.Sprintf("How many times the AWS SDK retries a throttled or failed call, with "+
					"exponential backoff. Default %d.", awsclient.DefaultMaxRetries),
				Validators: []validator.Int64{int64validator.Between(1, 100)},
			},
			"endpoint_url": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "One endpoint URL for every AWS service (for example a local AWS such as moto). " +
					"Overrides `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>`. S3 uses path-style addressing whenever a custom endpoint is set.",
				Validators: []validator.String{urlValidator()},
			},
			"content_store": schema.SingleNestedAttribute{
				Optional:            true,
				MarkdownDescription: "Default content store of image streams: an S3 bucket in the home region.",
				Attributes: map[string]schema.Attribute{
					"bucket": schema.StringAttribute{
						Required:            true,
						MarkdownDescription: "Bucket name. The bucket must exist.",
						Validators:          []validator.String{stringvalidator.LengthBetween(3, 63)},
					},
					"prefix": schema.StringAttribute{
						Optional:            true,
						MarkdownDescription: "Key prefix for objects and manifests, e.g. `autoami/`. Default: none.",
					},
				},
			},
		},
		Blocks: map[string]schema.Block{
			"assume_role": schema.SingleNestedBlock{
				MarkdownDescription: "A role assumed from the credential chain before anything else.",
				Attributes: map[string]schema.Attribute{
					"role_arn": schema.StringAttribute{
						Optional:            true,
						MarkdownDescription: "ARN of the role to assume.",
						Validators:          []validator.String{roleARNValidator()},
					},
					"session_name": schema.StringAttribute{
						Optional:            true,
						MarkdownDescription: "Session name. Default `autoami`.",
					},
					"external_id": schema.StringAttribute{
						Optional:            true,
						MarkdownDescription: "External ID the role's trust policy requires.",
					},
				},
			},
			"endpoints": schema.SingleNestedBlock{
				MarkdownDescription: "Endpoint URLs per service. Each overrides `endpoint_url`.",
				Attributes: map[string]schema.Attribute{
					"ec2": endpointAttribute("ec2"),
					"s3":  endpointAttribute("s3"),
					"ssm": endpointAttribute("ssm"),
					"sts": endpointAttribute("sts"),
					"kms": endpointAttribute("kms"),
					"ebs": endpointAttribute("ebs"),
					"iam": endpointAttribute("iam"),
				},
			},
		},
	}
}

func (p *autoamiProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	// Every setting must be known: an unknown role or endpoint read as ""
	// would silently run in the wrong account or against real AWS.
	for _, p := range unknownPaths(req.Config.Raw) {
		resp.Diagnostics.AddAttributeError(p, "Unknown provider setting",
			fmt.Sprintf("%s is not known until apply, but the provider needs it to plan. Set it to a value known at plan time.", p))
	}
	if resp.Diagnostics.HasError() {
		return
	}
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}

	settings := awsclient.Settings{
		Region:      cfg.Region.ValueString(),
		Profile:     cfg.Profile.ValueString(),
		EndpointURL: cfg.EndpointURL.ValueString(),
		MaxRetries:  int(cfg.MaxRetries.ValueInt64()),
		UserAgent:   "terraform-provider-autoami/" + p.version,
		Endpoints:   map[awsclient.Service]string{},
	}
	if ar := cfg.AssumeRole; ar != nil {
		// A block's attributes cannot be Required without making the block
		// itself required, so the check is here.
		if ar.RoleARN.ValueString() == "" {
			resp.Diagnostics.AddAttributeError(path.Root("assume_role").AtName("role_arn"), "Missing role ARN",
				"assume_role needs role_arn: the role to assume before anything else")
			return
		}
		settings.AssumeRole = &awsclient.AssumeRole{
			RoleARN:     ar.RoleARN.ValueString(),
			SessionName: ar.SessionName.ValueString(),
			ExternalID:  ar.ExternalID.ValueString(),
		}
	}
	if ep := cfg.Endpoints; ep != nil {
		for svc, v := range map[awsclient.Service]types.String{
			awsclient.EC2: ep.EC2, awsclient.S3: ep.S3, awsclient.SSM: ep.SSM, awsclient.STS: ep.STS,
			awsclient.KMS: ep.KMS, awsclient.EBS: ep.EBS, awsclient.IAM: ep.IAM,
		} {
			if v.ValueString() != "" {
				settings.Endpoints[svc] = v.ValueString()
			}
		}
	}
	factory, err := awsclient.NewFactory(ctx, settings)
	if err != nil {
		resp.Diagnostics.AddError("Invalid AWS configuration", err.Error())
		return
	}
	if !awsclient.KnownRegion(factory.HomeRegion()) {
		resp.Diagnostics.AddAttributeWarning(path.Root("region"), "Unfamiliar region",
			fmt.Sprintf("%q is not a region this version of autoami knows; check the spelling if calls fail.", factory.HomeRegion()))
	}
	data := &providerData{clients: factory, defaultTags: map[string]string{}, version: p.version}
	resp.Diagnostics.Append(cfg.DefaultTags.ElementsAs(ctx, &data.defaultTags, false)...)
	if cs := cfg.ContentStore; cs != nil {
		data.contentStore = &ContentStore{Bucket: cs.Bucket.ValueString(), Prefix: cs.Prefix.ValueString()}
	}
	tflog.Debug(ctx, "configured autoami provider", map[string]any{"home_region": factory.HomeRegion()})
	resp.DataSourceData = data
	resp.ResourceData = data
}

func (p *autoamiProvider) Resources(_ context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		NewImageStreamResource,
		NewPolicyResource,
		NewUnpackerResource,
		NewPublishedAMIResource,
	}
}

func (p *autoamiProvider) DataSources(_ context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{
		NewLatestBaseImageDataSource,
	}
}
