// Package cloudinit proves an unpacker's bootstrap (the user-data an
// autoami_unpacker instance is launched with, see deploy/README.md, "Bootstrap
// contract") against the real thing, where the local AWS only runs a
// stand-in for cloud-init and systemd:
//
//   - ValidateUserData checks user-data with Debian 12's own
//     `cloud-init schema`, unpacked from Debian's packages into a cache
//     (scripts/cloud-init-schema), never installed on the host.
//   - BuildImage gives a Debian 12 disk image built from Debian packages
//     (cloud-init, systemd, the daemon's packages; scripts/cloud-init-image),
//     cached between runs, that boots under qemu (internal/testworld/qemuboot).
//   - WriteSeed makes the NoCloud `cidata` volume that hands such an image
//     its user-data, as cloud-init's NoCloud data source reads it.
//
// The package's tests take their user-data from the provider's renderer
// (unpackerinstance.UserData). The real boot passes only when the daemon
// prints its fingerprint on the serial console and answers over pinned
// mutual TLS through qemu's port forwarding, and then, after the daemon's
// idle power-off, boots the same disk with an upgrade's user-data, which
// cloud-init's per-boot bootcmd installs. See internal/testworld/README.md,
// "The bootstrap for real". A first run builds the image (some minutes):
// give `go test` a long -timeout (make test does).
package cloudinit

import (
	"context"
	"fmt"
)

// Python is the interpreter that runs cloud-init's modules: Debian 12's
// python3 (3.11), which the unpacked packages are built for.
const Python = "/usr/bin/python3"

// InstallHint names what the package needs on the host.
const InstallHint = "install python3, debootstrap, extlinux, genisoimage and socat (scripts/test-deps.txt, scripts/install-test-deps)"

// ValidateUserData checks data, a user-data document, with Debian 12's
// `cloud-init schema --config-file` (cloud-init 22.4), and, stricter than
// that, refuses top-level keys its schema does not describe: cloud-init
// ignores an unknown top-level key without a word, so a misspelt `runcmds`
// would leave an instance without its daemon. An invalid document gives an
// *InvalidUserDataError carrying cloud-init's report; any other error means
// the validator could not run (no Debian mirror, no python3).
func ValidateUserData(ctx context.Context, data []byte) error { return validateUserData(ctx, data) }

// InvalidUserDataError is the error of ValidateUserData for a document that
// cloud-init refuses.
type InvalidUserDataError struct {
	// Report is what the validator said: cloud-init's schema errors with
	// their paths (e.g. "write_files.0: Additional properties are not
	// allowed ('permission' was unexpected)") and unknown top-level keys.
	Report string
}

func (e *InvalidUserDataError) Error() string {
	return fmt.Sprintf("user-data is not valid cloud-config for Debian 12's cloud-init: %s", e.Report)
}

// Image is the cached Debian 12 disk image of BuildImage.
type Image struct {
	// Path is the raw disk image (sparse, 4 GiB, BIOS boot through
	// extlinux); read-only for callers: boot it with qemu's snapshot mode.
	Path string
	// KernelVersion is the kernel on it ("6.1.0-37-amd64").
	KernelVersion string
	// Packages maps every package on the image to its version.
	Packages map[string]string
}

// BuildImage returns the cached image, building it first when the cache
// lacks it or is stale (needs root and the Debian mirror apt uses; some
// minutes). Concurrent callers, also in other processes, wait for one build.
func BuildImage(ctx context.Context) (*Image, error) { return buildImage(ctx) }

// NoCloudLabel is the volume label cloud-init's NoCloud data source looks for.
const NoCloudLabel = "cidata"

// WriteSeed writes, at path, an ISO 9660 volume labelled cidata holding
// user-data and meta-data (instance-id and local-hostname): the seed of
// cloud-init's NoCloud data source, attached to a machine as a disk.
func WriteSeed(ctx context.Context, path string, userData []byte, meta MetaData) error {
	return writeSeed(ctx, path, userData, meta)
}

// MetaData is the NoCloud meta-data of a machine.
type MetaData struct {
	// InstanceID is what cloud-init keys its once-per-instance modules
	// on (write_files, packages, runcmd); EC2 gives the instance ID.
	InstanceID string
	// LocalHostname is the machine's host name.
	LocalHostname string
}
