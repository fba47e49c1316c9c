package patch

import (
	"context"
	"errors"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

var errNotYet = errors.New("patch: not implemented yet")

type plan struct{}

func prepare(ctx context.Context, root string, m *manifest.Manifest, opts Options) (*Plan, error) {
	return nil, errNotYet
}
func (p *plan) missingObjects() []objects.Want { return nil }
func (p *plan) apply(ctx context.Context, src objects.Source) (Result, error) {
	return Result{}, errNotYet
}
func applyRaw(ctx context.Context, path string, m *manifest.Manifest, src objects.Source, opts Options) (Result, error) {
	return Result{}, errNotYet
}
