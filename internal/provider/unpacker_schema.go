package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/setvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/objectplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/setplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
	"github.com/autoami/terraform-provider-autoami/internal/unpackerbinary"
	"github.com/autoami/terraform-provider-autoami/internal/unpackerinstance"
)

// Default timeouts of autoami_unpacker: a first boot installs packages
// from the distribution's mirror before the daemon starts.
const (
	defaultUnpackerCreateTimeout = 20 * time.Minute
	defaultUnpackerUpdateTimeout = 20 * time.Minute
	defaultUnpackerDeleteTimeout = 15 * time.Minute
)

// unpackerTargetAttrTypes are the fields of `target`.
var unpackerTargetAttrTypes = map[string]attr.Type{
	"region":                         types.StringType,
	"account_id":                     types.StringType,
	"role_arn":                       types.StringType,
	"instance_id":                    types.StringType,
	"endpoint":                       types.StringType,
	"server_certificate_fingerprint": types.StringType,
	"client_certificate_pem":         types.StringType,
	"client_private_key_pem":         types.StringType,
}

// requiresReplaceUnlessImported replaces the unpacker when a value known in
// state changes, but not when the state has none: after an import, what
// cannot be read back from the instance (connect_via, kms_key_id) is taken
// from the configuration.
func requiresReplaceUnlessImported() planmodifier.String {
	return stringplanmodifier.RequiresReplaceIf(func(_ context.Context, req planmodifier.StringRequest, resp *stringplanmodifier.RequiresReplaceIfFuncResponse) {
		resp.RequiresReplace = !req.StateValue.IsNull()
	}, "Changing it replaces the unpacker (after an import, a value that cannot be read back is taken from the configuration).",
		"Changing it replaces the unpacker (after an import, a value that cannot be read back is taken from the configuration).")
}

func (r *unpackerResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "An unpacker in one target (account, region): an EC2 instance that runs the unpacker daemon, " +
			"which patches the stream volumes of that target. It boots from the newest official Debian 12 image (or " +
			"`image_id`) with an encrypted root volume, installs the daemon's packages and the unpacker of the provider's " +
			"own version through user-data that carries only public material (the client CA, a presigned URL of the " +
			"binary, flags: no private key, no AWS credential, no instance profile), and is trusted through the server " +
			"certificate fingerprint its console prints. It stops itself when idle (`idle_poweroff`) and is started " +
			"again when a publication needs it.\n\n" +
			"Give `target` to published AMIs: `targets = [autoami_unpacker.a.target, autoami_unpacker.b.target]`. " +
			"In place: `tags`, `instance_type`, and an upgrade of the daemon when the unpacker to install has another " +
			"digest (a new provider version, another `unpacker_binary`); other changes replace the unpacker.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "`REGION/INSTANCE_ID`.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"region": schema.StringAttribute{
				Optional:            true,
				Computed:            true,
				MarkdownDescription: "Region of the target. Default: the provider's `region`.",
				Validators:          []validator.String{regionValidator()},
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown(), stringplanmodifier.RequiresReplace()},
			},
			"role_arn": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Role of the target account, assumed from the provider's credentials. Default: the " +
					"provider's own account.",
				Validators:    []validator.String{roleARNValidator()},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"architecture": schema.StringAttribute{
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString(unpackerbinary.X86_64),
				MarkdownDescription: "`x86_64` (default) or `arm64`: of the image, the instance type and the unpacker binary.",
				Validators:          []validator.String{stringvalidator.OneOf(unpackerbinary.Architectures...)},
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"image_id": schema.StringAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: fmt.Sprintf("Image to boot. Default: the newest official Debian 12 image for the "+
					"architecture at create time (owner %s, named `debian-12-amd64-*` or `debian-12-arm64-*`; never a "+
					"same-named image of another owner). A newer Debian image later does not replace the unpacker. An "+
					"image the target cannot launch (not shared with it, deregistered) is an error naming the image.",
					unpackerinstance.DebianOwner),
				Validators:    []validator.String{stringvalidator.RegexMatches(amiIDPattern, "must be an AMI ID (ami-...)")},
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown(), stringplanmodifier.RequiresReplace()},
			},
			"kms_key_id": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "KMS key (ID, ARN or alias) of the root volume, which is always encrypted. Default: " +
					"the target's default EBS key. No image copy is needed.",
				Validators:    []validator.String{stringvalidator.LengthAtLeast(1)},
				PlanModifiers: []planmodifier.String{requiresReplaceUnlessImported()},
			},
			"instance_type": schema.StringAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "Instance type. Default `t3.small` (`x86_64`) or `t4g.small` (`arm64`). Changing it " +
					"stops the instance, changes the type and starts it again (a stopped instance stays stopped).",
				Validators:    []validator.String{stringvalidator.RegexMatches(instanceTypePattern, "must be an EC2 instance type, e.g. t3.small")},
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"subnet_id": schema.StringAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "Subnet. Default: the default VPC's subnet in the first zone (by name) that offers " +
					"the instance type.",
				Validators:    []validator.String{stringvalidator.RegexMatches(subnetIDPattern, "must be a subnet ID (subnet-...)")},
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown(), stringplanmodifier.RequiresReplace()},
			},
			"security_group_ids": schema.SetAttribute{
				ElementType: types.StringType,
				Optional:    true,
				Computed:    true,
				MarkdownDescription: "Security groups of the instance. Default: a group the resource creates (and deletes " +
					"with the unpacker), open only on `port` and only to `allowed_cidrs`.",
				Validators: []validator.Set{
					setvalidator.SizeAtLeast(1),
					setvalidator.ValueStringsAre(stringvalidator.RegexMatches(securityGroupIDPattern, "must be a security group ID (sg-...)")),
					setvalidator.ConflictsWith(path.MatchRoot("allowed_cidrs")),
				},
				PlanModifiers: []planmodifier.Set{setplanmodifier.UseStateForUnknown(), setplanmodifier.RequiresReplace()},
			},
			"allowed_cidrs": schema.SetAttribute{
				ElementType: types.StringType,
				Optional:    true,
				MarkdownDescription: "CIDR blocks (IPv4 or IPv6) the resource's own security group admits on `port`: " +
					"where the provider (and the publisher) run from. Required unless `security_group_ids` is set.",
				Validators: []validator.Set{
					setvalidator.SizeAtLeast(1),
					setvalidator.ValueStringsAre(stringCheck{"Invalid CIDR block", "must be a CIDR block, e.g. 10.0.0.0/16", unpackerinstance.ValidateCIDR}),
				},
				PlanModifiers: []planmodifier.Set{setplanmodifier.RequiresReplace()},
			},
			"connect_via": schema.StringAttribute{
				Optional: true,
				Computed: true,
				Default:  stringdefault.StaticString(unpackerinstance.ConnectViaPrivateIP),
				MarkdownDescription: "Address the provider reaches the daemon at: `private_ip` (default; the provider runs " +
					"in or is routed into the VPC) or `public_ip` (the instance gets a public IP, which changes at every " +
					"start; publications follow it).",
				Validators:    []validator.String{stringvalidator.OneOf(unpackerinstance.ConnectViaPrivateIP, unpackerinstance.ConnectViaPublicIP)},
				PlanModifiers: []planmodifier.String{requiresReplaceUnlessImported()},
			},
			"port": schema.Int64Attribute{
				Optional:            true,
				Computed:            true,
				Default:             int64default.StaticInt64(wire.DefaultPort),
				MarkdownDescription: fmt.Sprintf("TCP port of the daemon's API. Default `%d`.", wire.DefaultPort),
				Validators:          []validator.Int64{int64validator.Between(1, 65535)},
				PlanModifiers:       []planmodifier.Int64{int64planmodifier.RequiresReplace()},
			},
			"idle_poweroff": schema.StringAttribute{
				Optional: true,
				Computed: true,
				Default:  stringdefault.StaticString(unpackerinstance.FormatDuration(unpackerinstance.DefaultIdlePoweroff)),
				MarkdownDescription: "How long the daemon waits without requests before it powers the instance off " +
					"(which stops it: its shutdown behaviour is `stop`): a duration of whole seconds such as `30m`, " +
					"`1h30m` or `45s`; `0s` never. Default `30m`. A stopped unpacker is started again when a publication " +
					"needs it.",
				Validators:    []validator.String{idlePoweroffValidator()},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"tags": schema.MapAttribute{
				ElementType: types.StringType,
				Optional:    true,
				MarkdownDescription: "Tags of the instance, its root volume and the security group made for it, over the " +
					"provider's `default_tags`. Every one also carries `" + unpackerinstance.TagTarget + " = <account>/<region>`.",
			},
			"unpacker_binary": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Path of a Linux build of `cmd/unpacker` for the architecture, instead of the " +
					"unpacker the provider carries (of its own version). A binary of another SHA-256 than the running " +
					"one is installed in place (stop, new user-data, start).",
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"timeouts": timeouts.Attributes(ctx, timeouts.Opts{Create: true, Update: true, Delete: true}),

			"instance_id": unpackerComputed("ID of the EC2 instance."),
			"account_id":  unpackerComputed("Account of the target."),
			"availability_zone": schema.StringAttribute{
				Computed: true, MarkdownDescription: "Availability zone of the instance.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"private_ip": unpackerComputed("Private IP address of the instance."),
			"public_ip": schema.StringAttribute{
				Computed: true, MarkdownDescription: "Public IP address of the instance; empty without one (and while it is stopped).",
			},
			"endpoint": unpackerComputed("`host:port` of the daemon's API, at the `connect_via` address (a public IP " +
				"changes at every start; the last one is kept while the instance is stopped)."),
			"server_certificate_fingerprint": unpackerComputed("SHA-256 fingerprint (`sha256:<hex>`) of the daemon's " +
				"server certificate, as its console printed it; pinned by every connection."),
			"instance_state": schema.StringAttribute{
				Computed: true,
				MarkdownDescription: "State of the instance: `running`, `stopped` (idle unpackers stop themselves; this is " +
					"no drift), `pending`, `stopping`.",
			},
			"unpacker_version": unpackerComputed("Version of the running daemon, as it reports it."),
			"target": schema.SingleNestedAttribute{
				Computed: true,
				MarkdownDescription: "Everything a published AMI needs to reach and trust this unpacker: give it to the " +
					"AMI's `targets`. `client_private_key_pem` is sensitive.",
				PlanModifiers: []planmodifier.Object{objectplanmodifier.UseStateForUnknown()},
				Attributes: map[string]schema.Attribute{
					"region":                         schema.StringAttribute{Computed: true, MarkdownDescription: "Region."},
					"account_id":                     schema.StringAttribute{Computed: true, MarkdownDescription: "Account ID."},
					"role_arn":                       schema.StringAttribute{Computed: true, MarkdownDescription: "Role that reaches the account (`\"\"` for the provider's own)."},
					"instance_id":                    schema.StringAttribute{Computed: true, MarkdownDescription: "Instance ID (to start it when it sleeps)."},
					"endpoint":                       schema.StringAttribute{Computed: true, MarkdownDescription: "`host:port` of the daemon."},
					"server_certificate_fingerprint": schema.StringAttribute{Computed: true, MarkdownDescription: "Pinned fingerprint of the daemon's certificate."},
					"client_certificate_pem":         schema.StringAttribute{Computed: true, MarkdownDescription: "Client certificate (PEM)."},
					"client_private_key_pem": schema.StringAttribute{Computed: true, Sensitive: true,
						MarkdownDescription: "Private key of the client certificate (PKCS #8 PEM)."},
				},
			},
		},
	}
}

func unpackerComputed(desc string) schema.StringAttribute {
	return schema.StringAttribute{Computed: true, MarkdownDescription: desc,
		PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}}
}

// parseIdle reads idle_poweroff: a Go duration of whole seconds, at least 0.
func parseIdle(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 30m, 1h30m or 45s", s)
	}
	if d < 0 || d%time.Second != 0 {
		return 0, fmt.Errorf("%q must be a whole number of seconds, at least 0s (0s: never)", s)
	}
	return d, nil
}

func idlePoweroffValidator() validator.String {
	return stringCheck{"Invalid idle_poweroff", "a duration of whole seconds such as 30m; 0s never", func(s string) error {
		_, err := parseIdle(s)
		return err
	}}
}
