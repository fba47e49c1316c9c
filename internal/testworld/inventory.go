package testworld

import (
	"context"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
)

// Inventory is what tests and the provider made in the world, per account and
// region: instances, volumes, snapshots, images and SSM parameters, with tags
// (see moto.Inventory).
type Inventory = moto.Inventory

// Resource is one entry of an Inventory (see moto.Resource).
type Resource = moto.Resource

// TaggedWith matches resources carrying tag key (with value, unless value is
// empty); use it with Inventory.Leftovers.
func TaggedWith(key, value string) func(Resource) bool { return moto.TaggedWith(key, value) }

// Inventory lists, per account and region, every instance, volume, snapshot,
// image and SSM parameter tests and the provider made, asking moto directly
// (no faults, not counted). A test asserts nothing is orphaned after a
// destroy, a failure or an interruption with:
//
//	inv, err := w.Inventory(ctx)
//	if left := inv.Leftovers(testworld.TaggedWith("autoami:stream", "")); len(left) > 0 { t.Errorf("left behind: %v", left) }
func (w *World) Inventory(ctx context.Context) (Inventory, error) {
	return w.Moto.Inventory(ctx)
}
