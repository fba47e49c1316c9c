package imagestream

import (
	"fmt"
)

// directorySourceError turns the content model's answer to "can this system
// read a directory tree faithfully?" (nil, or why not) into the error a
// user of block ("root_filesystem" or "overlay") sees: which attribute
// cannot be used here, why, and the tarball to use instead.
func directorySourceError(block string, unsupported error) error {
	if unsupported == nil {
		return nil
	}
	return fmt.Errorf("%s.directory cannot be used on this system: %w. "+
		"Pack the tree into a tarball on Linux, as root, keeping numeric owners, xattrs and ACLs "+
		"(tar --numeric-owner --xattrs --acls -cf rootfs.tar -C <directory> .), and set %s.tarball instead",
		block, unsupported, block)
}

// sourceBlock is the configuration block a tree source of kind is given in.
func sourceBlock(kind SourceKind) string {
	if kind == KindLayered {
		return "overlay"
	}
	return "root_filesystem"
}
