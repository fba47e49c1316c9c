// Package moto starts and controls a moto server on 127.0.0.1, the AWS of
// autoami's tests and demo.
//
// The server is moto's own (moto 5.2.x), started through a small Python entry
// point kept in this package (autoami_moto.py) that first adds, in its own
// process, what moto lacks and autoami depends on: RegisterImage attributes and
// block device mappings, image deprecation, cross-account sharing of images and
// snapshots, CopyImage encryption, the default EBS key, optional pending
// states, usable EBS direct list calls. Each addition names the moto gap it
// fills; see internal/testworld/README.md. moto itself stays untouched.
//
// One Server per test binary is the intended use: start it in TestMain, Reset
// it at the start of each test so that no test depends on another's leftovers,
// and Stop it when the binary ends. Stop kills the server's own process group
// by PID, never by name, so parallel test binaries do not disturb each other.
package moto

import (
	"context"
	"os/exec"
	"time"
)

// DefaultAccountID is the account moto uses for requests whose credentials are
// not assumed-role credentials.
const DefaultAccountID = "123456789012"

// InstallHint is the one line printed when moto_server is missing.
const InstallHint = "moto_server not found on PATH: install it with `pip install 'moto[server]==5.2.1'`"

// Options configure Start.
type Options struct {
	// Binary is the moto_server executable; empty means "moto_server" on PATH.
	// The Python interpreter that runs the harness is the one this executable
	// uses (its #! line, else python3 beside it, else python3 on PATH).
	Binary string
	// Python overrides the interpreter; it must be able to import moto.
	Python string
	// LogPath receives the server's stdout and stderr; empty discards them.
	LogPath string
	// Port to listen on; 0 picks a free port.
	Port int
	// Pending is how long new resources stay pending; Reset returns to it.
	Pending Pending
	// DataDir holds the bytes the world keeps (volumes, snapshots, instance
	// roots). Empty means a new temporary directory, removed by Stop.
	DataDir string
	// BootDisk is a bootable raw disk (internal/testworld/bootdisk) that the
	// root snapshots of seeded images (Debian's) hold; empty means they hold
	// an empty disk. The file is linked, never written.
	BootDisk string
}

// Pending says how long newly made resources stay "pending" before they are
// "available" (images) or "completed" (snapshots). Zero means at once, as
// moto does. Real AWS takes seconds to many minutes; a few hundred
// milliseconds are enough to exercise waiters and eventual consistency.
type Pending struct {
	// Image applies to RegisterImage and CreateImage.
	Image time.Duration
	// ImageCopy applies to CopyImage: the image and its snapshot copies.
	ImageCopy time.Duration
	// Snapshot applies to CreateSnapshot and to EBS direct snapshots after
	// CompleteSnapshot (before it they are pending anyway).
	Snapshot time.Duration
	// SnapshotCopy applies to CopySnapshot.
	SnapshotCopy time.Duration
}

// Server is a running moto server with autoami's additions.
type Server struct {
	// URL is the endpoint for every AWS service, e.g. http://127.0.0.1:41234.
	URL string
	// Port is the TCP port the server listens on.
	Port int

	// DataDir is the directory of the world's bytes (see Options.DataDir).
	DataDir string

	cmd         *exec.Cmd
	done        chan struct{}
	scriptDir   string
	ownsDataDir bool
}

// Start launches the server on 127.0.0.1 and waits until it answers.
func Start(ctx context.Context, opts Options) (*Server, error) { return start(ctx, opts) }

// LookBinary reports whether moto_server can be found, with InstallHint as the
// error when it cannot.
func LookBinary(binary string) (string, error) { return lookBinary(binary) }

// Reset clears every account, region and resource in the server, and returns
// the harness knobs (pending durations, image overrides) to their start values.
func (s *Server) Reset(ctx context.Context) error { return s.reset(ctx) }

// Stop terminates the server (its whole process group) and waits for it.
func (s *Server) Stop() error { return s.stop() }

// PID is the server's process ID.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// SetPending changes how long new resources stay pending, until the next Reset.
func (s *Server) SetPending(ctx context.Context, p Pending) error { return s.setPending(ctx, p) }

// SetImageCreationDate makes DescribeImages report t as the CreationDate of
// imageID in region, for every account (moto gives all built-in AMIs the same
// date: the time it loaded them). Lasts until Reset.
func (s *Server) SetImageCreationDate(ctx context.Context, region, imageID string, t time.Time) error {
	return s.setImage(ctx, map[string]any{"region": region, "imageId": imageID, "creationDate": rfc3339(t)})
}

// SetImageDeprecationTime sets imageID's DeprecationTime, also in the past
// (which EnableImageDeprecation refuses, as AWS does); the zero time clears
// it. Lasts until Reset or the owner's next Enable/DisableImageDeprecation.
func (s *Server) SetImageDeprecationTime(ctx context.Context, region, imageID string, t time.Time) error {
	return s.setImage(ctx, map[string]any{"region": region, "imageId": imageID, "deprecationTime": rfc3339(t)})
}

// SetImageState forces imageID's State (e.g. "failed", with reason as its
// StateReason message); an empty state removes the override. Lasts until Reset.
func (s *Server) SetImageState(ctx context.Context, region, imageID, state, reason string) error {
	return s.setImage(ctx, map[string]any{"region": region, "imageId": imageID, "state": state, "stateReason": reason})
}

// ImportSnapshot makes a completed snapshot in account and region that holds
// the bytes of the raw disk file at path (as EC2 ImportSnapshot would), its
// size the file's rounded up to whole GiB, and returns its ID. The file is
// linked or copied sparsely, never written.
func (s *Server) ImportSnapshot(ctx context.Context, region, account, path, description string) (string, error) {
	return ImportSnapshot(ctx, s.URL, region, account, path, description)
}

// ImportSnapshot is Server.ImportSnapshot for a local AWS running elsewhere,
// reached at url (its moto or fault proxy endpoint).
func ImportSnapshot(ctx context.Context, url, region, account, path, description string) (string, error) {
	return importSnapshot(ctx, url, region, account, path, description)
}

// Additions lists, one line each, what the harness adds to moto.
func (s *Server) Additions(ctx context.Context) ([]string, error) { return s.additions(ctx) }
