package policystore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/autoami/terraform-provider-autoami/internal/testworld"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
)

// world is the test AWS, one per test binary; each test resets it first.
var world *testworld.World

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "autoami-policystore-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	world, err = testworld.Start(context.Background(), moto.Options{LogPath: filepath.Join(dir, "moto.log")})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start the test world:", err)
		return 1
	}
	defer world.Stop()
	return m.Run()
}
