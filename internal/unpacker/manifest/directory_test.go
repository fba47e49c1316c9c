package manifest

import (
	"errors"
	"runtime"
	"strings"
	"testing"
)

// TestDirectoryRefusalNamesTheSystem: where directories cannot be read, the
// error wraps ErrDirectoryUnsupported and says which system and what would
// be lost, so the image stream can turn it into a plan error.
func TestDirectoryRefusalNamesTheSystem(t *testing.T) {
	for _, goos := range []string{"darwin", "windows"} {
		err := unsupportedOn(goos)
		if !errors.Is(err, ErrDirectoryUnsupported) {
			t.Errorf("%s: %v does not wrap ErrDirectoryUnsupported", goos, err)
		}
		for _, want := range []string{"needs Linux", "this is " + goos, "ownership", "extended attributes", "device nodes"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %q does not say %q", goos, err, want)
			}
		}
	}
	if runtime.GOOS == "linux" {
		if err := DirectorySupport(); err != nil {
			t.Errorf("DirectorySupport on Linux: %v", err)
		}
	}
}
