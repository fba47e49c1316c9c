package manifest

import (
	"errors"
	"fmt"
)

// ErrDirectoryUnsupported is wrapped by FromDirectory, ScanDirectory,
// WriteStatCache, DirectorySource's Fetch and DirectorySupport on a system
// where a directory tree cannot be read faithfully.
var ErrDirectoryUnsupported = errors.New("this system cannot read a directory tree faithfully")

// DirectorySupport says whether FromDirectory can read a tree as a Linux
// root filesystem holds it: nil on Linux; elsewhere an error wrapping
// ErrDirectoryUnsupported that says what would be lost. A caller that takes
// a directory from its user (the image stream) checks it up front, so the
// user learns of it before anything is read.
func DirectorySupport() error { return directorySupport() }

// unsupportedOn is DirectorySupport's answer on goos, where the scan does not
// exist: the manifest records what only Linux reports faithfully (numeric
// ownership, extended attributes with POSIX ACLs and file capabilities,
// device numbers, the mount a file is on) and reads it through calls only
// Linux has (statx, openat2 resolving beneath the root), so a partial
// reading elsewhere would give a different revision for the same tree.
func unsupportedOn(goos string) error {
	return fmt.Errorf("%w: reading a root filesystem from a directory needs Linux, this is %s "+
		"(ownership, extended attributes with ACLs and file capabilities, and device nodes would not be read as the image holds them)",
		ErrDirectoryUnsupported, goos)
}
