package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/autoami/terraform-provider-autoami/internal/imagestream"
)

var _ resource.ResourceWithValidateConfig = (*imageStreamResource)(nil)

// ValidateConfig refuses, at validate and plan time, a directory source
// (root_filesystem.directory, overlay.directory) on a system that cannot
// read one faithfully (not Linux: ownership, xattrs, device nodes), with the
// tarball to use instead, before anything is read or created.
func (r *imageStreamResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	resp.Diagnostics.Append(checkDirectorySources(ctx, req.Config, imagestream.CheckDirectorySource)...)
}

// treeSourceBlocks are the blocks that take a directory or a tarball.
var treeSourceBlocks = []string{"root_filesystem", "overlay"}

// checkDirectorySources reports, at its attribute, every directory source of
// config that check (imagestream.CheckDirectorySource) refuses. A directory
// whose value is not yet known is still a directory source; a block not yet
// known may be a tarball and is left to the plan.
func checkDirectorySources(ctx context.Context, config tfsdk.Config, check func(block string) error) diag.Diagnostics {
	var diags diag.Diagnostics
	for _, block := range treeSourceBlocks {
		var source types.Object
		diags.Append(config.GetAttribute(ctx, path.Root(block), &source)...)
		if diags.HasError() {
			return diags
		}
		if source.IsNull() || source.IsUnknown() {
			continue
		}
		if dir, ok := source.Attributes()["directory"]; !ok || dir.IsNull() {
			continue
		}
		if err := check(block); err != nil {
			diags.AddAttributeError(path.Root(block).AtName("directory"), "Directory source unsupported on this system", err.Error())
		}
	}
	return diags
}
