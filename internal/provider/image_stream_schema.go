package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/objectvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/resourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/autoami/terraform-provider-autoami/internal/baseimage"
)

func fileTreeSourceAttributes(what string) map[string]schema.Attribute {
	return map[string]schema.Attribute{
		"directory": schema.StringAttribute{
			Optional:            true,
			MarkdownDescription: fmt.Sprintf("Directory holding %s (read as root to keep owners, modes, xattrs and device nodes). Linux only: elsewhere a plan refuses it; use `tarball`.", what),
			Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
		},
		"tarball": schema.StringAttribute{
			Optional:            true,
			MarkdownDescription: fmt.Sprintf("Tarball of %s: plain, gzip or zstd; GNU or PAX (xattrs from PAX records are kept).", what),
			Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
		},
	}
}

func computedStringAttr(desc string) schema.StringAttribute {
	return schema.StringAttribute{Computed: true, MarkdownDescription: desc}
}

func computedInt64Attr(desc string) schema.Int64Attribute {
	return schema.Int64Attribute{Computed: true, MarkdownDescription: desc}
}

func (r *imageStreamResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A named sequence of revisions (`web/al2023`, `base/bookworm`). Each apply turns the " +
			"stream's source into a revision in the content store, uploading only the objects the store lacks. " +
			"The revision is the digest of the content, so an unchanged source plans no change. " +
			"For streams layered on a base image, a newer base image shows up as drift, and the stream's policy " +
			"decides whether the plan rebuilds now, defers to the build window, or waits for approval.",
		Attributes: map[string]schema.Attribute{
			"name": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "Stream name: slash-separated segments of `a-z`, `0-9`, `.`, `_`, `-` (e.g. `web/al2023`). Changing it makes a new stream.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators:          []validator.String{streamNameValidator()},
			},
			"root_filesystem": schema.SingleNestedAttribute{
				Optional:            true,
				MarkdownDescription: "A complete root filesystem built elsewhere (debootstrap, mkosi, `docker export`).",
				Attributes:          fileTreeSourceAttributes("the root filesystem"),
				Validators:          []validator.Object{exactlyOneTreeSource()},
			},
			"base_image": schema.SingleNestedAttribute{
				Optional: true,
				MarkdownDescription: "Layer the stream on an AWS base image, found with the lookup arguments of the " +
					"`autoami_latest_base_image` data source. The revision names the base image by name (AMI IDs differ " +
					"per region) plus the overlay. A newer base image is adopted when the policy says so, or when " +
					"`rebuild_trigger` changes.",
				Attributes: baseImageSelectorAttributes(),
			},
			"overlay": schema.SingleNestedAttribute{
				Optional:            true,
				MarkdownDescription: "Files added on top of `base_image`.",
				Attributes:          fileTreeSourceAttributes("the overlay"),
				Validators:          []validator.Object{exactlyOneTreeSource(), objectvalidator.AlsoRequires(path.MatchRoot("base_image"))},
			},
			"raw_image": schema.SingleNestedAttribute{
				Optional:            true,
				MarkdownDescription: "A raw disk image (for example a unikernel), stored as 512 KiB blocks.",
				Attributes: map[string]schema.Attribute{
					"path": schema.StringAttribute{Required: true, MarkdownDescription: "Path of the image file.",
						Validators: []validator.String{stringvalidator.LengthAtLeast(1)}},
				},
			},
			"content_store": schema.SingleNestedAttribute{
				Optional:            true,
				MarkdownDescription: "Content store of this stream; default: the provider's `content_store`.",
				Attributes: map[string]schema.Attribute{
					"bucket": schema.StringAttribute{Required: true, MarkdownDescription: "Bucket in the home region; it must exist."},
					"prefix": schema.StringAttribute{Optional: true, MarkdownDescription: "Key prefix, e.g. `autoami/`."},
				},
			},
			"policy_id": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "`id` of an `autoami_policy` deciding when base image updates are adopted. Default: the default policy (critical 4h, high 24h, medium 7d, low manual; no build window).",
			},
			"rebuild_trigger": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Any value; changing it makes a new revision of a `base_image` stream with the newest base image " +
					"(like `keepers` of the random provider). Use it to approve an update waiting for manual approval. " +
					"`terraform apply -replace` works too.",
				Validators: []validator.String{stringvalidator.AlsoRequires(path.MatchRoot("base_image"))},
			},
			"tags": schema.MapAttribute{
				ElementType:         types.StringType,
				Optional:            true,
				MarkdownDescription: "Tags recorded with the stream and carried to what is published from it (with the provider's `default_tags`).",
			},
			"timeouts": timeouts.Attributes(ctx, timeouts.Opts{Create: true, Update: true, Delete: true}),

			"id": schema.StringAttribute{
				Computed: true, MarkdownDescription: "The stream name.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"revision":            computedStringAttr("The current revision: the SHA-256 of its content (for layered streams: of base image name, overlay and `rebuild_trigger`). Shown changing in a plan when the source changed."),
			"revision_created_at": computedStringAttr("When the current revision was first uploaded to the content store (RFC 3339)."),
			"manifest_uri":        computedStringAttr("`s3://` URI of the revision's manifest."),
			"size_bytes":          computedInt64Attr("Bytes of content (regular files, or the raw image size)."),
			"file_count":          computedInt64Attr("Regular files in the revision (0 for raw images)."),
			"bytes_uploaded":      computedInt64Attr("Bytes uploaded by the last apply: only objects the store lacked."),
			"objects_uploaded":    computedInt64Attr("Objects uploaded by the last apply."),
			"base_image_name":     computedStringAttr("Name of the base image the current revision is layered on."),
			"base_image_ids": schema.MapAttribute{
				ElementType: types.StringType, Computed: true,
				MarkdownDescription: "The base image's ID per region (`base_image.regions`, default the home region): in each region " +
					"the image called `base_image_name` owned by one of `base_image.owners`, or named by `base_image.ssm_parameter` " +
					"read in that region (now or in an earlier version). An image of that name from any other account is never used; " +
					"a region without one fails the apply.",
			},
			"latest_base_image": schema.SingleNestedAttribute{
				Computed:            true,
				MarkdownDescription: "The newest image the `base_image` selector finds now.",
				Attributes: map[string]schema.Attribute{
					"id":             computedStringAttr("Image ID in the home region."),
					"name":           computedStringAttr("Image name."),
					"creation_date":  computedStringAttr("When the image was created (EC2's `CreationDate`, RFC 3339); its level's rebuild delay counts from it."),
					"security_level": computedStringAttr(securityLevelDescription),
					"update_type":    computedStringAttr("`security`, `feature`, `maintenance` or `unknown`."),
				},
			},
			"rebuild_required": schema.BoolAttribute{Computed: true,
				MarkdownDescription: "Whether the policy says to adopt `latest_base_image` now; the plan then shows a new revision."},
			"rebuild_reason": computedStringAttr("Why a rebuild is due, deferred or waiting for approval; null when the stream is current."),
		},
	}
}

func baseImageSelectorAttributes() map[string]schema.Attribute {
	return map[string]schema.Attribute{
		"ssm_parameter": schema.StringAttribute{Optional: true, MarkdownDescription: "SSM parameter holding the AMI ID. Conflicts with `owners`.",
			Validators: []validator.String{stringvalidator.ExactlyOneOf(path.MatchRelative().AtParent().AtName("owners"))}},
		"owners": schema.ListAttribute{ElementType: types.StringType, Optional: true,
			MarkdownDescription: "Owners to search; required for `name` and `filter`.",
			Validators:          []validator.List{listvalidator.SizeAtLeast(1), listvalidator.NoNullValues()}},
		"name": schema.StringAttribute{Optional: true, MarkdownDescription: "Image name pattern (`*`, `?`).",
			Validators: []validator.String{stringvalidator.AlsoRequires(path.MatchRelative().AtParent().AtName("owners"))}},
		"filter": schema.ListNestedAttribute{
			Optional:            true,
			MarkdownDescription: "DescribeImages filters; require `owners`.",
			Validators:          []validator.List{listvalidator.AlsoRequires(path.MatchRelative().AtParent().AtName("owners"))},
			NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
				"name": schema.StringAttribute{Required: true, MarkdownDescription: "Filter name."},
				"values": schema.ListAttribute{ElementType: types.StringType, Required: true, MarkdownDescription: "Values.",
					Validators: []validator.List{listvalidator.SizeAtLeast(1), listvalidator.NoNullValues()}},
			}},
		},
		"architecture": schema.StringAttribute{Optional: true, MarkdownDescription: "Default `x86_64`.",
			Validators: []validator.String{stringvalidator.OneOf("x86_64", "arm64", "i386")}},
		"include_deprecated": schema.BoolAttribute{Optional: true, MarkdownDescription: "Also consider deprecated images."},
		"advisories":         schema.StringAttribute{Optional: true, MarkdownDescription: "Advisory feed (path or URL); see the data source."},
		"security_level_tag": schema.StringAttribute{Optional: true,
			MarkdownDescription: fmt.Sprintf("Tag carrying the security level. Default `%s`.", baseimage.DefaultSecurityLevelTag)},
		"role_arn": schema.StringAttribute{Optional: true, MarkdownDescription: "Role to assume for the lookup.",
			Validators: []validator.String{roleARNValidator()}},
		"regions": schema.ListAttribute{ElementType: types.StringType, Optional: true,
			MarkdownDescription: "Regions whose IDs of the base image `base_image_ids` reports. Default: the home region.",
			Validators:          []validator.List{listvalidator.NoNullValues(), listvalidator.ValueStringsAre(regionValidator())}},
	}
}

func (r *imageStreamResource) ConfigValidators(context.Context) []resource.ConfigValidator {
	return []resource.ConfigValidator{
		resourcevalidator.ExactlyOneOf(path.MatchRoot("root_filesystem"), path.MatchRoot("base_image"), path.MatchRoot("raw_image")),
	}
}

// exactlyOneTreeSource requires one of directory or tarball in a tree
// source. (objectvalidator.ExactlyOneOf counts the object itself.)
func exactlyOneTreeSource() validator.Object { return treeSourceValidator{} }

type treeSourceValidator struct{}

func (treeSourceValidator) Description(context.Context) string {
	return "exactly one of directory or tarball"
}
func (v treeSourceValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}
func (treeSourceValidator) ValidateObject(_ context.Context, req validator.ObjectRequest, resp *validator.ObjectResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	set := 0
	for _, name := range []string{"directory", "tarball"} {
		if v, ok := req.ConfigValue.Attributes()[name]; ok && !v.IsNull() {
			set++
		}
	}
	if set != 1 {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid source",
			fmt.Sprintf("%s needs exactly one of directory or tarball (%d given)", req.Path, set))
	}
}
