package provider

import (
	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// imageStreamModel is autoami_image_stream's state.
type imageStreamModel struct {
	Name           types.String            `tfsdk:"name"`
	RootFilesystem *fileTreeSourceModel    `tfsdk:"root_filesystem"`
	BaseImage      *baseImageSelectorModel `tfsdk:"base_image"`
	Overlay        *fileTreeSourceModel    `tfsdk:"overlay"`
	RawImage       *rawImageSourceModel    `tfsdk:"raw_image"`
	ContentStore   *contentStoreModel      `tfsdk:"content_store"`
	PolicyID       types.String            `tfsdk:"policy_id"`
	RebuildTrigger types.String            `tfsdk:"rebuild_trigger"`
	Tags           types.Map               `tfsdk:"tags"`
	Timeouts       timeouts.Value          `tfsdk:"timeouts"`

	ID                types.String `tfsdk:"id"`
	Revision          types.String `tfsdk:"revision"`
	RevisionCreatedAt types.String `tfsdk:"revision_created_at"`
	ManifestURI       types.String `tfsdk:"manifest_uri"`
	SizeBytes         types.Int64  `tfsdk:"size_bytes"`
	FileCount         types.Int64  `tfsdk:"file_count"`
	BytesUploaded     types.Int64  `tfsdk:"bytes_uploaded"`
	ObjectsUploaded   types.Int64  `tfsdk:"objects_uploaded"`
	BaseImageName     types.String `tfsdk:"base_image_name"`
	BaseImageIDs      types.Map    `tfsdk:"base_image_ids"`
	LatestBaseImage   types.Object `tfsdk:"latest_base_image"`
	RebuildRequired   types.Bool   `tfsdk:"rebuild_required"`
	RebuildReason     types.String `tfsdk:"rebuild_reason"`
}

// fileTreeSourceModel is root_filesystem and overlay: exactly one of a
// directory or a tarball.
type fileTreeSourceModel struct {
	Directory types.String `tfsdk:"directory"`
	Tarball   types.String `tfsdk:"tarball"`
}

type rawImageSourceModel struct {
	Path types.String `tfsdk:"path"`
}

// baseImageSelectorModel takes the lookup arguments of the
// autoami_latest_base_image data source.
type baseImageSelectorModel struct {
	baseImageLookupModel
	Regions types.List `tfsdk:"regions"`
}

// latestBaseImageAttrTypes are the fields of latest_base_image.
var latestBaseImageAttrTypes = map[string]attr.Type{
	"id":             types.StringType,
	"name":           types.StringType,
	"creation_date":  types.StringType,
	"security_level": types.StringType,
	"update_type":    types.StringType,
}
