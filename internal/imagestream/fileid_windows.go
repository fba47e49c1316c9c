package imagestream

import (
	"fmt"
	"os"

	"golang.org/x/sys/windows"
)

// fileIdentity is what, besides path, size and mtime, tells that an open
// file is still the one a cached manifest was built from: the volume and
// the file index (Windows' inode). Windows reports no inode change time
// through this call; a file rewritten in place with its size and mtime put
// back keeps its cached manifest; an object then read from it that no
// longer matches fails the upload (the content store verifies every object
// it is given) instead of being stored.
func fileIdentity(f *os.File) (string, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return "", fmt.Errorf("identify %s: %w", f.Name(), err)
	}
	var info windows.ByHandleFileInformation
	var infoErr error
	if err := rc.Control(func(h uintptr) { infoErr = windows.GetFileInformationByHandle(windows.Handle(h), &info) }); err != nil {
		return "", fmt.Errorf("identify %s: %w", f.Name(), err)
	}
	if infoErr != nil {
		return "", fmt.Errorf("identify %s: %w", f.Name(), infoErr)
	}
	return fmt.Sprintf("volume=%d\x00index=%d.%d", info.VolumeSerialNumber, info.FileIndexHigh, info.FileIndexLow), nil
}
