// Package daemon is the core of the unpacker daemon: it owns block devices,
// keeps one persistent volume per image stream and patches it to revisions
// with the engine (internal/unpacker/patch), holding no AWS credentials and
// calling no AWS API. The HTTPS API (internal/unpacker/server) is a thin
// layer over it.
//
// Every stream has one actor goroutine that serialises the requests that
// change it, and an explicit state (wire.StreamState); a request that does
// not fit the state is refused with a wire.Error of code CodeConflict.
// Streams run in parallel.
//
// Crash safety: the stream's record in the state file is marked dirty, and
// made durable, before anything on its volume changes, and is marked clean at
// revision R only after a complete unpack of R has been synced to the
// device. A dirty stream is never offered for a snapshot; its next unpack
// drops the scan cache and re-verifies every file.
//
// Fast path: with the clean record of revision R goes R's manifest, stored
// durably in the state directory before the record is written. The next
// unpack of a clean stream gives it to the engine (patch.Options.Current),
// which then checks only the entries it changes instead of scanning the
// whole volume, and scans after all when one is not as recorded. A dirty
// stream never gets it. The metric autoami_unpacker_unpack_scans_total
// counts unpacks by which way they went.
package daemon

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/devices"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/volume"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// Config configures a Daemon.
type Config struct {
	// StateDir holds the state file, scan caches and mount points.
	StateDir string
	// Devices finds the block devices of volumes (devices.NewEBS or NewLocal).
	Devices devices.Finder
	// Volumes lays out, finds and boots volumes; nil means the volume package.
	Volumes Volumes
	// Version is reported by Health and Status.
	Version string
	// HTTPClient fetches manifests and objects; nil means a pooled client.
	HTTPClient *http.Client
	// FetchParallel bounds concurrent object downloads per stream (0: 8).
	FetchParallel int
	// URLWait is how long an unpack waits for the object URLs it asked for
	// while it has nothing else to do; then it fails (the stream is left
	// dirty, its last error says why), so an unpack its caller abandoned
	// does not hold the stream for ever. Zero means DefaultURLWait.
	URLWait time.Duration
	// IdlePoweroff powers the machine off when no request came for this
	// long, no unpack works (one waiting for object URLs does not count) and
	// no stream is frozen for a snapshot; zero disables it.
	IdlePoweroff time.Duration
	// Poweroff powers the machine off; nil runs "systemctl poweroff".
	Poweroff func(context.Context) error
	// Hook, when set, is called at each HookPoint of an unpack (and at the
	// engine's patch points, named "patch:<point>"); an error stops the
	// unpack there. For crash tests.
	Hook func(point string) error
	// Logger receives the daemon's log; nil means slog.Default().
	Logger *slog.Logger
}

// DefaultURLWait is the default Config.URLWait.
const DefaultURLWait = 10 * time.Minute

// Hook points of an unpack, in order; the engine's points come between
// HookDirty and HookBootable.
const (
	HookManifest = "manifest" // manifest fetched and verified, nothing changed yet
	HookDirty    = "dirty"    // dirty marker durable, about to change the volume
	HookBootable = "bootable" // content patched and synced, boot loaders written
	HookClean    = "clean"    // everything synced; about to record clean at R
)

// Volumes is what the daemon needs from internal/unpacker/volume; tests may
// substitute it.
type Volumes interface {
	Create(ctx context.Context, disk string, opts volume.CreateOptions) (*volume.Layout, error)
	Find(ctx context.Context, disk string, opts volume.FindOptions) (*volume.Layout, error)
	MakeBootable(ctx context.Context, layout *volume.Layout, rootDir string, opts volume.BootOptions) (*volume.BootReport, error)
	// CheckBootable says what a revision lacks to be made bootable.
	CheckBootable(m *manifest.Manifest) error
	// Normalize resets what mounting left on an unmounted root (times,
	// generations, journal, superblock) before a snapshot.
	Normalize(ctx context.Context, layout *volume.Layout, opts volume.NormalizeOptions) error
	// GrowthNeeded says whether the root of a layout no longer fills its
	// device (the volume grew); Grow grows the unmounted root to fill it.
	GrowthNeeded(ctx context.Context, layout *volume.Layout, opts volume.GrowOptions) (bool, string, error)
	Grow(ctx context.Context, layout *volume.Layout, opts volume.GrowOptions) (*volume.Layout, *volume.GrowReport, error)
}

// Daemon is the unpacker's core. Its methods are safe for concurrent use;
// errors that a caller caused are *wire.Error values.
type Daemon struct {
	impl *daemon
}

// New loads the state from cfg.StateDir, finds the devices of attached
// volumes again and starts every known stream's actor, which re-mounts its
// volume in the background.
func New(ctx context.Context, cfg Config) (*Daemon, error) { return newDaemon(ctx, cfg) }

// Close stops the actors (a running unpack is cancelled and its stream left
// dirty) and the idle timer. Mounts and loop devices stay, for the next start.
func (d *Daemon) Close() error { return d.impl.close() }

// Touch records activity (a request) for the idle power-off timer.
func (d *Daemon) Touch() { d.impl.touch() }

// Health reports that the daemon is up.
func (d *Daemon) Health() wire.Health { return d.impl.health() }

// Status reports devices and streams.
func (d *Daemon) Status() wire.Status { return d.impl.status() }

// AttachDevice finds (local mode: creates and attaches) a volume's device.
func (d *Daemon) AttachDevice(ctx context.Context, req wire.AttachDeviceRequest) (wire.Device, error) {
	return d.impl.attachDevice(ctx, req)
}

// DetachDevice forgets a device no stream uses.
func (d *Daemon) DetachDevice(ctx context.Context, req wire.DetachDeviceRequest) error {
	return d.impl.detachDevice(ctx, req)
}

// AssociateStream binds a stream to an attached volume and mounts it.
func (d *Daemon) AssociateStream(ctx context.Context, req wire.AssociateStreamRequest) (wire.Stream, error) {
	return d.impl.associateStream(ctx, req)
}

// Unpack starts (or reports) bringing a stream's volume to a revision.
func (d *Daemon) Unpack(ctx context.Context, req wire.UnpackRequest) (wire.UnpackStatus, error) {
	return d.impl.unpack(ctx, req)
}

// UnpackStatus reports an unpack, waiting up to req.WaitSeconds for news.
func (d *Daemon) UnpackStatus(ctx context.Context, req wire.UnpackStatusRequest) (wire.UnpackStatus, error) {
	return d.impl.unpackStatus(ctx, req)
}

// SupplyObjectURLs hands an unpack URLs for the objects it wants.
func (d *Daemon) SupplyObjectURLs(ctx context.Context, req wire.ObjectURLsRequest) (wire.UnpackStatus, error) {
	return d.impl.supplyObjectURLs(ctx, req)
}

// CancelUnpack stops a running unpack of a revision and waits for it to
// end; the stream is left dirty (a new unpack resumes, keeping the objects
// already fetched). Without a running unpack it does nothing.
func (d *Daemon) CancelUnpack(ctx context.Context, req wire.CancelUnpackRequest) (wire.Stream, error) {
	return d.impl.cancelUnpack(ctx, req)
}

// PrepareForSnapshot syncs and freezes or unmounts a clean stream.
func (d *Daemon) PrepareForSnapshot(ctx context.Context, req wire.PrepareForSnapshotRequest) (wire.Stream, error) {
	return d.impl.prepareForSnapshot(ctx, req)
}

// Release thaws or re-mounts a stream after its snapshot.
func (d *Daemon) Release(ctx context.Context, req wire.ReleaseRequest) (wire.Stream, error) {
	return d.impl.release(ctx, req)
}

// ForgetStream unmounts a stream's volume and drops the stream.
func (d *Daemon) ForgetStream(ctx context.Context, req wire.ForgetStreamRequest) error {
	return d.impl.forgetStream(ctx, req)
}

// Registry holds the daemon's Prometheus metrics; the server adds its own
// and serves it as text.
func (d *Daemon) Registry() *prometheus.Registry { return d.impl.metrics.registry }
