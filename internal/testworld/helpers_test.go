package testworld

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
)

// startWorld starts a world for one test and stops it when the test ends.
func startWorld(t *testing.T, opts moto.Options) *World {
	t.Helper()
	ctx := context.Background()
	opts.LogPath = filepath.Join(t.TempDir(), "moto.log")
	w, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Stop(); err != nil {
			t.Error(err)
		}
	})
	if err := w.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	return w
}
