package loopdev

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/devices"
)

// CleanupDaemon undoes what an unpacker daemon in local mode may have left
// behind when a test ends, also after a failure or a killed daemon: it
// unmounts everything under stateDir/mnt and detaches the loop devices of
// the volume files in localDir, by name.
func CleanupDaemon(t testing.TB, stateDir, localDir string) {
	mounts, _ := filepath.Glob(filepath.Join(stateDir, "mnt", "*"))
	for _, m := range mounts {
		for unix.Unmount(m, 0) == nil { // stacked mounts: until none is left
		}
	}
	files, _ := filepath.Glob(filepath.Join(localDir, "*"))
	for _, f := range files {
		loops, _ := devices.LoopsOf(context.Background(), f)
		for _, l := range loops {
			if out, err := exec.Command("losetup", "-d", l).CombinedOutput(); err != nil {
				t.Errorf("cleanup: losetup -d %s: %v: %s", l, err, out)
			}
		}
	}
}
