package provider

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// streamConfig is an autoami_image_stream configuration with name set and
// the given blocks (root_filesystem, overlay: directory/tarball values, nil
// for null, tftypes.UnknownValue for unknown); everything else is null.
func streamConfig(t *testing.T, blocks map[string]map[string]any) tfsdk.Config {
	t.Helper()
	ctx := context.Background()
	var sr resource.SchemaResponse
	(&imageStreamResource{}).Schema(ctx, resource.SchemaRequest{}, &sr)
	if sr.Diagnostics.HasError() {
		t.Fatalf("schema: %v", sr.Diagnostics)
	}
	typ := sr.Schema.Type().TerraformType(ctx).(tftypes.Object)
	values := map[string]tftypes.Value{}
	for name, at := range typ.AttributeTypes {
		values[name] = tftypes.NewValue(at, nil)
	}
	values["name"] = tftypes.NewValue(tftypes.String, "web/al2023")
	for block, attrs := range blocks {
		bt := typ.AttributeTypes[block].(tftypes.Object)
		if attrs == nil {
			values[block] = tftypes.NewValue(bt, tftypes.UnknownValue)
			continue
		}
		inner := map[string]tftypes.Value{}
		for name, at := range bt.AttributeTypes {
			inner[name] = tftypes.NewValue(at, attrs[name])
		}
		values[block] = tftypes.NewValue(bt, inner)
	}
	return tfsdk.Config{Schema: sr.Schema, Raw: tftypes.NewValue(typ, values)}
}

// TestDirectorySourceRefusedAtPlan: on a system that cannot read
// directories (the check is injected, as on macOS or Windows), a directory
// source is an error at root_filesystem.directory or overlay.directory
// carrying the image stream's explanation; tarballs, blocks not yet known
// and a system that reads directories raise nothing.
func TestDirectorySourceRefusedAtPlan(t *testing.T) {
	ctx := context.Background()
	refuse := func(called *[]string) func(string) error {
		return func(block string) error {
			*called = append(*called, block)
			return errors.New(block + ".directory cannot be used on this system: use " + block + ".tarball")
		}
	}
	for _, tc := range []struct {
		name      string
		blocks    map[string]map[string]any
		wantPaths []path.Path
	}{
		{"root filesystem directory", map[string]map[string]any{"root_filesystem": {"directory": "/srv/rootfs"}},
			[]path.Path{path.Root("root_filesystem").AtName("directory")}},
		{"overlay directory not yet known", map[string]map[string]any{"overlay": {"directory": tftypes.UnknownValue}},
			[]path.Path{path.Root("overlay").AtName("directory")}},
		{"root filesystem tarball", map[string]map[string]any{"root_filesystem": {"tarball": "/srv/rootfs.tar"}}, nil},
		{"overlay tarball", map[string]map[string]any{"overlay": {"tarball": "/srv/overlay.tar.zst"}}, nil},
		{"root filesystem not yet known", map[string]map[string]any{"root_filesystem": nil}, nil},
		{"raw image only", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var called []string
			diags := checkDirectorySources(ctx, streamConfig(t, tc.blocks), refuse(&called))
			if len(diags) != len(tc.wantPaths) || len(called) != len(tc.wantPaths) {
				t.Fatalf("diagnostics %v after checks of %v, want errors at %v", diags, called, tc.wantPaths)
			}
			for i, d := range diags {
				withPath, ok := d.(interface{ Path() path.Path })
				if !ok || !withPath.Path().Equal(tc.wantPaths[i]) {
					t.Errorf("diagnostic %q is not at %s", d.Detail(), tc.wantPaths[i])
				}
				block := strings.Split(tc.wantPaths[i].String(), ".")[0]
				if !strings.Contains(d.Detail(), block+".tarball") {
					t.Errorf("diagnostic %q does not carry the check's explanation", d.Detail())
				}
			}
		})
	}
	// A system that reads directories raises nothing.
	cfg := streamConfig(t, map[string]map[string]any{"root_filesystem": {"directory": "/srv/rootfs"}})
	if diags := checkDirectorySources(ctx, cfg, func(string) error { return nil }); diags.HasError() {
		t.Errorf("a system that reads directories: %v", diags)
	}
}
