package volume

import (
	"context"
	"errors"
)

// errNotYet marks the functions whose implementation is landing next.
var errNotYet = errors.New("volume: not implemented yet")

func create(ctx context.Context, disk string, opts CreateOptions) (*Layout, error) {
	return nil, errNotYet
}

func find(ctx context.Context, disk string, opts FindOptions) (*Layout, error) {
	return nil, errNotYet
}

func makeBootable(ctx context.Context, layout *Layout, rootDir string, opts BootOptions) (*BootReport, error) {
	return nil, errNotYet
}
