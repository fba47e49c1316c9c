package daemon

import (
	"context"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/volume"
)

// volumePackage is Volumes backed by internal/unpacker/volume.
type volumePackage struct{}

func (volumePackage) Create(ctx context.Context, disk string, opts volume.CreateOptions) (*volume.Layout, error) {
	return volume.Create(ctx, disk, opts)
}

func (volumePackage) Find(ctx context.Context, disk string, opts volume.FindOptions) (*volume.Layout, error) {
	return volume.Find(ctx, disk, opts)
}

func (volumePackage) CheckBootable(m *manifest.Manifest) error { return volume.CheckBootable(m) }

func (volumePackage) MakeBootable(ctx context.Context, layout *volume.Layout, rootDir string, opts volume.BootOptions) (*volume.BootReport, error) {
	return volume.MakeBootable(ctx, layout, rootDir, opts)
}

func (volumePackage) Normalize(ctx context.Context, layout *volume.Layout, opts volume.NormalizeOptions) error {
	return volume.Normalize(ctx, layout, opts)
}

func (volumePackage) GrowthNeeded(ctx context.Context, layout *volume.Layout, opts volume.GrowOptions) (bool, string, error) {
	return volume.GrowthNeeded(ctx, layout, opts)
}

func (volumePackage) Grow(ctx context.Context, layout *volume.Layout, opts volume.GrowOptions) (*volume.Layout, *volume.GrowReport, error) {
	return volume.Grow(ctx, layout, opts)
}
