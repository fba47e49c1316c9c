package publisher

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/autoami/terraform-provider-autoami/internal/testworld"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
)

// The package's tests run against one local AWS whose instances run real
// unpacker daemons (built once from ./cmd/unpacker) on loop devices; they
// need root. Each test resets the world first.
var (
	world *testworld.World
	// unpackerBinary is the daemon the launched instances download.
	unpackerBinary []byte
	// worldErr says why the world could not start (tests that need it fail
	// with it; unit tests run anyway).
	worldErr error
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "autoami-publisher-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if os.Geteuid() != 0 {
		worldErr = fmt.Errorf("launched unpackers need root (loop devices, mounts)")
		return m.Run()
	}
	bin := filepath.Join(dir, "unpacker")
	build := exec.Command("go", "build", "-o", bin, "./cmd/unpacker")
	build.Dir = filepath.Join("..", "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ./cmd/unpacker: %v: %s\n", err, out)
		return 1
	}
	if unpackerBinary, err = os.ReadFile(bin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	world, err = testworld.Start(context.Background(), moto.Options{
		LogPath: filepath.Join(dir, "moto.log"),
		DataDir: filepath.Join(dir, "data"),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start the test world:", err)
		return 1
	}
	code := m.Run()
	if err := world.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop the test world:", err)
		code = 1
	}
	if left, err := world.Moto.HostLeftovers(); err != nil || len(left) > 0 {
		fmt.Fprintf(os.Stderr, "the world's machines left on the host: %v %v\n", left, err)
		code = 1
	}
	if code != 0 {
		if log, err := os.ReadFile(filepath.Join(dir, "moto.log")); err == nil && len(log) > 0 {
			fmt.Fprintf(os.Stderr, "moto log (last 4 KiB):\n%s\n", log[max(0, len(log)-4096):])
		}
	}
	return code
}
