// Package patch is the unpacker's engine: it brings a mounted file-system
// root to exactly a manifest, writing only what differs, or a block device to
// exactly a raw image manifest, writing only the 512 KiB blocks that differ.
//
// A tree patch runs in two steps so that a daemon can ask the provider only
// for what it lacks:
//
//	plan, err := patch.Prepare(ctx, root, m, opts) // scan root (or trust opts.Current), diff, list missing objects
//	missing := plan.Missing()                      // objects neither on disk nor staged
//	res, err := plan.Apply(ctx, src)               // fetch missing from src, patch, sync
//
// Apply reuses content already on the volume (by digest), fetches only the
// missing objects into a staging directory on the same file system
// (StagingDir, verified on arrival), creates files under a temporary name and
// renames them into place, makes links, symlinks, device nodes and fifos,
// deletes everything the manifest does not name ("no debris"; a root-level
// lost+found directory the manifest does not mention is kept; sockets and
// entries of unknown type, which no manifest names, are deleted too), sets ownership,
// mode, xattrs and mtimes, directory mtimes last, removes the staging
// directory and syncs the file system (syncfs) before returning. Entries whose
// content and metadata already match are not touched, so their blocks do not
// change and snapshots stay incremental.
//
// Every path operation is relative to a directory file descriptor opened with
// openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_XDEV) and acts on
// the final component with AT_SYMLINK_NOFOLLOW (or O_NOFOLLOW), so no
// symlink is ever followed, inside or out of the root. The scan refuses a
// root that has a mount point inside it (an error naming it), and no open
// crosses one, so nothing outside the root's own mount is ever changed.
//
// Manifests carry no inode flags: Apply first clears the immutable and
// append-only flags (chattr -i -a) of every entry of the root that has one
// (regular files, directories and fifos; on another type such a flag is an
// error naming it), since the engine could not otherwise replace, delete or
// update it, and the exact revision has none.
//
// An interrupted Apply leaves a root that a later Apply (of the same or any
// manifest) brings to exactly its manifest; objects already staged are reused.
// The root is exactly the manifest only once Apply has returned nil.
package patch

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// StagingDir is the root-level directory in which Apply stages objects and
// temporary files. A manifest may not name it; Apply removes it on success.
const StagingDir = ".autoami-staging"

// Point names a place in Apply where Options.Hook is called.
type Point string

// Hook points, in the order Apply reaches them. Points marked "each" are
// reached once per object or entry.
const (
	PointScanned  Point = "scanned"  // root scanned and diffed (Prepare)
	PointStaged   Point = "staged"   // each object staged (reused or fetched)
	PointFetched  Point = "fetched"  // all missing objects staged
	PointDeleted  Point = "deleted"  // each entry deleted
	PointCreated  Point = "created"  // each entry created or replaced
	PointMetadata Point = "metadata" // each entry's metadata set
	PointSynced   Point = "synced"   // before returning success
)

// ErrInterrupted is wrapped by errors returned because a Hook asked to stop.
var ErrInterrupted = errors.New("interrupted by hook")

// ErrDevicesNotAllowed is wrapped by the error refusing a manifest with
// device nodes when Options.AllowDevices is off, so that callers can say how
// their users allow them.
var ErrDevicesNotAllowed = errors.New("not trusted with devices")

// Phase names what Apply is doing, for progress reports.
type Phase string

// Phases of a patch.
const (
	PhaseScanning Phase = "scanning"
	PhaseFetching Phase = "fetching"
	PhaseUpdating Phase = "updating"
	PhaseSyncing  Phase = "syncing"
	PhaseDone     Phase = "done"
)

// Progress is a snapshot of a running patch, for a daemon's status.
type Progress struct {
	Phase        Phase
	ObjectsDone  int
	ObjectsTotal int
	BytesDone    int64
	BytesTotal   int64
}

// Options configure Prepare and ApplyRaw.
type Options struct {
	// AllowDevices permits creating character and block device nodes; without
	// it a manifest holding one is rejected before anything is written (for
	// sources not trusted with devices).
	AllowDevices bool
	// StatCachePath is the stat cache for scanning the root (see
	// manifest.DirOptions); it must live outside the root. Apply refreshes it
	// on success, so the next Prepare of the same root is fast.
	StatCachePath string
	// Parallel bounds concurrent object fetches and hashes; 0 means 8.
	Parallel int
	// Progress, when set, is called (from one goroutine at a time, at most
	// a few times a second plus at each phase change) with the current progress.
	Progress func(Progress)
	// Hook, when set, is called (one call at a time) at each Point; a non-nil error stops Apply at
	// once, returning an error wrapping ErrInterrupted and the hook's error.
	// For tests of interrupted patches.
	Hook func(p Point, path string) error
	// KeepStaged keeps verified objects in the staging directory when Apply
	// fails before it changed the tree (e.g. a fetch broke off), so a retry
	// does not download them again. Without it such a failure leaves the
	// root exactly as it was found.
	KeepStaged bool
	// Logger receives a summary and timings; nil discards.
	Logger *slog.Logger
	// Current, when set, is the manifest the root is known to equal exactly:
	// the one the last successful Apply of this root made it equal to, with
	// nothing written to the root since (the caller vouches for that, e.g. a
	// daemon that recorded the volume clean at that revision). Prepare then
	// does not scan the whole tree: it diffs Current with the manifest, and
	// the entries the patch changes, deletes, links to or takes content
	// from, the paths it creates and the directories whose entries change
	// are checked on disk (statx, never following a symlink; while Apply
	// fetches, and before it changes anything): type, mode, owner, size,
	// mtime, link count, device numbers, no inode flags, hard links sharing
	// their inode, and the content of files stashed by link. On any
	// difference the engine logs why and scans the whole tree as without
	// Current (Result.CurrentNotTrusted); Apply then also fetches what that
	// scan finds missing beyond Missing.
	// Content is still reused by digest from wherever Current has it.
	// A trusted patch leaves the stat cache as it was: its records of the
	// entries the patch changed no longer match their stat, so a later scan
	// reads just those again.
	Current *manifest.Manifest
	// RawStagingDir is where ApplyRaw keeps fetched blocks before writing them;
	// empty means os.TempDir(). Tree patches always stage inside the root.
	RawStagingDir string
}

// Result says what a patch did.
type Result struct {
	Created   int // entries that did not exist (or had another type)
	Updated   int // entries whose content or metadata changed
	Deleted   int // entries removed
	Unchanged int // entries left untouched
	// BytesWritten counts file content bytes written (copied or fetched into
	// place); renaming a staged object counts its fetched bytes once.
	BytesWritten int64
	// ObjectsFetched and BytesFetched count objects obtained from the Source.
	ObjectsFetched int
	BytesFetched   int64
	// ObjectsReused counts objects found on the volume instead of fetched.
	ObjectsReused int
	// BlocksWritten counts 512 KiB blocks written (raw image mode).
	BlocksWritten int
	// TrustedCurrent says Prepare took Options.Current as the root's
	// content (the fast path) instead of scanning the tree.
	TrustedCurrent bool
	// CurrentNotTrusted says why Options.Current, although given, was not
	// trusted and the tree was scanned; empty otherwise.
	CurrentNotTrusted string
	Duration          time.Duration
}

// Plan is a prepared tree patch: the root's scan and its difference from the
// manifest. A Plan is used once.
type Plan struct {
	impl *plan
}

// Prepare scans root, compares it with m (which it validates, also against
// opts.AllowDevices) and returns the plan. Nothing under root is modified
// except the staging directory, which may be created.
func Prepare(ctx context.Context, root string, m *manifest.Manifest, opts Options) (*Plan, error) {
	return prepare(ctx, root, m, opts)
}

// Missing lists the objects Apply must fetch: those the manifest needs that
// are neither on the volume nor already staged. (When Options.Current turns
// out not to be trustworthy, Apply fetches what else its scan finds missing.)
func (p *Plan) Missing() []objects.Want { return p.impl.missingObjects() }

// Apply fetches the missing objects from src (which may be nil when Missing
// is empty), patches the root and syncs it.
func (p *Plan) Apply(ctx context.Context, src objects.Source) (Result, error) {
	return p.impl.apply(ctx, src)
}

// Apply is Prepare followed by Plan.Apply.
func Apply(ctx context.Context, root string, m *manifest.Manifest, src objects.Source, opts Options) (Result, error) {
	p, err := Prepare(ctx, root, m, opts)
	if err != nil {
		return Result{}, err
	}
	return p.Apply(ctx, src)
}

// ApplyRaw makes the device (or image file) at path hold exactly the raw
// image manifest m in its first m.Image.Size bytes, writing only blocks whose
// digest differs. Blocks found elsewhere on the device are reused; the
// all-zero block is never fetched. The device is synced before returning.
func ApplyRaw(ctx context.Context, path string, m *manifest.Manifest, src objects.Source, opts Options) (Result, error) {
	return applyRaw(ctx, path, m, src, opts)
}
