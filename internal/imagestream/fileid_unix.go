//go:build unix

package imagestream

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// fileIdentity is what, besides path, size and mtime, tells that an open
// file is still the one a cached manifest was built from: the inode change
// time (which a rewrite moves even when the mtime is put back), the inode
// and the device.
func fileIdentity(f *os.File) (string, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return "", fmt.Errorf("identify %s: %w", f.Name(), err)
	}
	var st unix.Stat_t
	var statErr error
	if err := rc.Control(func(fd uintptr) { statErr = unix.Fstat(int(fd), &st) }); err != nil {
		return "", fmt.Errorf("identify %s: %w", f.Name(), err)
	}
	if statErr != nil {
		return "", fmt.Errorf("identify %s: stat: %w", f.Name(), statErr)
	}
	return fmt.Sprintf("%d.%d\x00%d\x00%d", st.Ctim.Sec, st.Ctim.Nsec, st.Ino, st.Dev), nil
}
