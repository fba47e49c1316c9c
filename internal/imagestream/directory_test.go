package imagestream

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
)

// TestDirectorySourceRefusal: on a system that cannot read a directory
// faithfully, the error names the attribute of the block it was given in,
// keeps the content model's reason, and says which tarball to use instead.
func TestDirectorySourceRefusal(t *testing.T) {
	reason := fmt.Errorf("%w: reading a root filesystem from a directory needs Linux, this is darwin", manifest.ErrDirectoryUnsupported)
	for _, block := range []string{"root_filesystem", "overlay"} {
		err := directorySourceError(block, reason)
		if !errors.Is(err, manifest.ErrDirectoryUnsupported) {
			t.Errorf("%s: %v does not wrap ErrDirectoryUnsupported", block, err)
		}
		for _, want := range []string{block + ".directory cannot be used on this system", "this is darwin",
			"tar --numeric-owner --xattrs --acls", block + ".tarball instead"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %q does not say %q", block, err, want)
			}
		}
	}
	if err := directorySourceError("root_filesystem", nil); err != nil {
		t.Errorf("a system that reads directories was refused: %v", err)
	}
	if runtime.GOOS == "linux" {
		if err := CheckDirectorySource("root_filesystem"); err != nil {
			t.Errorf("CheckDirectorySource on Linux: %v", err)
		}
	}
}
