// Package wire holds the JSON request and response types of the unpacker's
// HTTPS API. The server (internal/unpacker/server) and the typed client
// (internal/unpacker/client) both use them, so the two cannot drift apart.
//
// The API is RPC-like: every call that changes something is a POST of a JSON
// body to its own path, because stream names contain slashes ("web/al2023")
// and do not fit in a URL path segment. Every call is idempotent: repeating it
// after a lost response has the same effect as calling it once, so the client
// may retry freely.
package wire

import "time"

// Paths of the API. Reads are GETs, everything else is a POST with a JSON body.
const (
	PathHealth             = "/v1/health"               // GET  → Health
	PathStatus             = "/v1/status"               // GET  → Status
	PathAttachDevice       = "/v1/attach-device"        // POST AttachDeviceRequest → Device
	PathDetachDevice       = "/v1/detach-device"        // POST DetachDeviceRequest → Empty
	PathAssociateStream    = "/v1/associate-stream"     // POST AssociateStreamRequest → Stream
	PathUnpack             = "/v1/unpack"               // POST UnpackRequest → UnpackStatus
	PathUnpackStatus       = "/v1/unpack-status"        // POST UnpackStatusRequest → UnpackStatus
	PathObjectURLs         = "/v1/object-urls"          // POST ObjectURLsRequest → UnpackStatus
	PathCancelUnpack       = "/v1/cancel-unpack"        // POST CancelUnpackRequest → Stream
	PathPrepareForSnapshot = "/v1/prepare-for-snapshot" // POST PrepareForSnapshotRequest → Stream
	PathRelease            = "/v1/release"              // POST ReleaseRequest → Stream
	PathForgetStream       = "/v1/forget-stream"        // POST ForgetStreamRequest → Empty
	PathMetrics            = "/metrics"                 // GET  → Prometheus text format
)

// DefaultPort is the port the daemon listens on unless told otherwise.
const DefaultPort = 6975

// FingerprintLinePrefix starts the line the daemon prints to its console and
// log at every start; the rest of the line is the server certificate's SHA-256
// fingerprint ("sha256:" and 64 lower-case hex digits). The provider reads it
// from the instance's console output and pins it.
const FingerprintLinePrefix = "autoami-unpacker server certificate fingerprint: "

// StreamState is where a stream is in its life cycle. A stream is in exactly
// one state; every operation checks it and refuses a conflicting request with
// an error of code CodeConflict.
type StreamState string

// The states of a stream.
const (
	// StateNoDevice: the stream's volume is not (or no longer) visible as a
	// block device on this machine.
	StateNoDevice StreamState = "no-device"
	// StatePreparingVolume: partitioning and formatting an empty volume.
	StatePreparingVolume StreamState = "preparing-volume"
	// StateUnmounted: the volume is known, its root file system not mounted.
	StateUnmounted StreamState = "unmounted"
	// StateMounted: the root file system is mounted; the content is not known
	// to be clean at any revision (a fresh volume, or one from a base snapshot).
	StateMounted StreamState = "mounted"
	// StateFetchingManifest: an unpack is reading the revision's manifest.
	StateFetchingManifest StreamState = "fetching-manifest"
	// StateScanning: an unpack is comparing the volume's content with the manifest.
	StateScanning StreamState = "scanning"
	// StateFetching: an unpack is fetching the objects the volume lacks.
	StateFetching StreamState = "fetching"
	// StateUpdating: an unpack is changing the file system.
	StateUpdating StreamState = "updating"
	// StateMakingBootable: an unpack is installing the boot loaders.
	StateMakingBootable StreamState = "making-bootable"
	// StateSyncing: an unpack is flushing everything to the device.
	StateSyncing StreamState = "syncing"
	// StateClean: the volume holds exactly Stream.Revision, synced to the device.
	StateClean StreamState = "clean"
	// StateFrozen: clean and frozen (fsfreeze): ready for a snapshot.
	StateFrozen StreamState = "frozen-for-snapshot"
	// StateUnmountedForSnapshot: clean and unmounted: ready for a snapshot.
	StateUnmountedForSnapshot StreamState = "unmounted-for-snapshot"
	// StateDirty: an unpack was interrupted or failed; the content is unknown
	// and is verified in full by the next unpack. Never snapshotted.
	StateDirty StreamState = "dirty"
)

// Busy reports whether the state belongs to a running unpack.
func (s StreamState) Busy() bool {
	switch s {
	case StatePreparingVolume, StateFetchingManifest, StateScanning, StateFetching,
		StateUpdating, StateMakingBootable, StateSyncing:
		return true
	}
	return false
}

// Origin says where a stream's volume came from, and so how the daemon finds
// (or makes) its root file system.
type Origin string

// The origins of a volume.
const (
	// OriginEmpty: a new, blank volume. The daemon partitions it (GPT: BIOS
	// boot, EFI system and root partitions), formats the root with a label and
	// makes it bootable after every unpack. A volume that already carries the
	// daemon's layout (re-association) is used as it is; a non-blank volume
	// without it is refused rather than overwritten.
	OriginEmpty Origin = "empty"
	// OriginSnapshot: a volume made from a base image's snapshot. Its layout
	// and boot loader are kept; the daemon finds the root partition and patches
	// only the file system on it.
	OriginSnapshot Origin = "snapshot"
)

// SnapshotMode says how a volume is made ready for a snapshot.
type SnapshotMode string

// The ways to prepare for a snapshot.
const (
	// SnapshotFreeze syncs and freezes the mounted file system (FIFREEZE).
	SnapshotFreeze SnapshotMode = "freeze"
	// SnapshotUnmount syncs and unmounts the file system: the snapshot then
	// needs no journal recovery at first boot.
	SnapshotUnmount SnapshotMode = "unmount"
)

// Health is the answer to GET PathHealth.
type Health struct {
	Status    string    `json:"status"` // "ok"
	Version   string    `json:"version"`
	StartedAt time.Time `json:"started_at"`
	// LocalDevices is true when volumes are sparse files on loop devices.
	LocalDevices bool `json:"local_devices"`
}

// Status is the answer to GET PathStatus: everything the daemon knows.
type Status struct {
	Version       string    `json:"version"`
	StartedAt     time.Time `json:"started_at"`
	LastRequestAt time.Time `json:"last_request_at"`
	// IdlePoweroffAt is when the machine powers off unless a request comes
	// first; zero when idle power-off is disabled.
	IdlePoweroffAt time.Time `json:"idle_poweroff_at,omitzero"`
	Devices        []Device  `json:"devices"`
	Streams        []Stream  `json:"streams"`
}

// Device is a block device holding a volume.
type Device struct {
	VolumeID string `json:"volume_id"`
	// Path is the whole-volume block device, e.g. /dev/nvme1n1 or /dev/loop3.
	// Empty when the volume is not visible on this machine right now.
	Path      string `json:"path,omitempty"`
	SizeBytes int64  `json:"size_bytes"`
	// Stream is the stream associated with the device, if any.
	Stream string `json:"stream,omitempty"`
	// BackingFile is the sparse file behind a loop device (local mode only).
	BackingFile string `json:"backing_file,omitempty"`
}

// Stream is the status of one image stream.
type Stream struct {
	Name     string      `json:"name"`
	VolumeID string      `json:"volume_id"`
	Origin   Origin      `json:"origin"`
	State    StreamState `json:"state"`
	// Device and RootPartition are the block devices of the volume and of its
	// root file system.
	Device        string `json:"device,omitempty"`
	RootPartition string `json:"root_partition,omitempty"`
	// Revision is the revision the volume is clean at. It is set only in the
	// states StateClean, StateFrozen and StateUnmountedForSnapshot: a stream is
	// never reported at a revision before a complete, synced unpack of it.
	Revision string `json:"revision,omitempty"`
	// TargetRevision is the revision being unpacked (busy states) or whose
	// unpack was interrupted (StateDirty).
	TargetRevision string    `json:"target_revision,omitempty"`
	Progress       *Progress `json:"progress,omitempty"`
	LastError      string    `json:"last_error,omitempty"`
	LastUsedAt     time.Time `json:"last_used_at,omitzero"`
}

// Progress of the current (or last) unpack of a stream.
type Progress struct {
	Revision string      `json:"revision"`
	Phase    StreamState `json:"phase"`
	// ObjectsTotal and BytesTotal are what the volume lacked: objects to fetch.
	ObjectsTotal int64 `json:"objects_total"`
	ObjectsDone  int64 `json:"objects_done"`
	BytesTotal   int64 `json:"bytes_total"`
	BytesDone    int64 `json:"bytes_done"`
	// ObjectsAwaitingURLs counts objects the daemon asked URLs for and has none yet.
	ObjectsAwaitingURLs int64 `json:"objects_awaiting_urls"`
	// BytesPerSecond is the fetch rate since fetching started.
	BytesPerSecond float64 `json:"bytes_per_second"`
	// ETASeconds estimates the time left fetching; -1 when unknown.
	ETASeconds float64   `json:"eta_seconds"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// AttachDeviceRequest makes the daemon find the block device of a volume the
// caller has attached to this machine (AWS: AttachVolume), waiting until it
// appears. In local mode the volume is a sparse file, created with SizeBytes
// when missing, attached as a loop device. Attaching an attached volume
// returns it unchanged.
type AttachDeviceRequest struct {
	VolumeID string `json:"volume_id"`
	// DeviceName is the name given to AttachVolume (e.g. /dev/sdf): the
	// fallback on instances whose devices are not NVMe.
	DeviceName string `json:"device_name,omitempty"`
	// SizeBytes is the size of a new sparse file in local mode; ignored otherwise.
	SizeBytes int64 `json:"size_bytes,omitempty"`
	// WaitSeconds bounds the wait for the device to appear (default
	// DefaultAttachWaitSeconds, at most MaxAttachWaitSeconds).
	WaitSeconds float64 `json:"wait_seconds,omitempty"`
}

// Bounds of the waits the daemon does inside one request; the client adds
// them to its per-request timeout so that it never gives up on an answer the
// daemon is still allowed to be working on.
const (
	// DefaultAttachWaitSeconds is AttachDeviceRequest.WaitSeconds when unset.
	DefaultAttachWaitSeconds = 60
	// MaxAttachWaitSeconds caps AttachDeviceRequest.WaitSeconds.
	MaxAttachWaitSeconds = 600
	// MaxStatusWaitSeconds caps UnpackStatusRequest.WaitSeconds.
	MaxStatusWaitSeconds = 60
	// MaxCancelWaitSeconds is how long cancel-unpack waits for the unpack
	// to stop.
	MaxCancelWaitSeconds = 60
)

// DetachDeviceRequest makes the daemon forget a device that no stream uses
// (in local mode it also detaches the loop device). The caller detaches the
// volume afterwards.
type DetachDeviceRequest struct {
	VolumeID string `json:"volume_id"`
}

// AssociateStreamRequest binds a stream to the volume of an attached device
// and mounts its root file system, preparing an empty volume first.
// Associating a stream with the volume it already has is a no-op.
type AssociateStreamRequest struct {
	Stream   string `json:"stream"`
	VolumeID string `json:"volume_id"`
	Origin   Origin `json:"origin"`
}

// UnpackRequest starts bringing a stream's volume to a revision. The daemon
// fetches the manifest, works out which content objects the volume lacks and
// asks the caller for URLs for them in batches (UnpackStatus.WantedObjects),
// so that presigned URLs are made only when they are about to be used.
// Repeating the request while the same unpack runs returns its status; asking
// for the revision the stream is clean at returns at once with Done set.
type UnpackRequest struct {
	Stream   string `json:"stream"`
	Revision string `json:"revision"`
	// ManifestURL is where the revision's manifest is (a presigned URL). Its
	// digest must equal Revision.
	ManifestURL string `json:"manifest_url"`
	// ObjectURLs optionally gives URLs up front (content hash → URL).
	ObjectURLs map[string]string `json:"object_urls,omitempty"`
}

// UnpackStatusRequest reads the status of a stream's unpack, waiting up to
// WaitSeconds (long poll, at most MaxStatusWaitSeconds) until the daemon
// wants object URLs, the unpack ends, or its phase changes.
type UnpackStatusRequest struct {
	Stream      string  `json:"stream"`
	Revision    string  `json:"revision"`
	WaitSeconds float64 `json:"wait_seconds,omitempty"`
}

// ObjectURLsRequest supplies URLs for objects an unpack wants (content hash →
// URL). URLs for objects the daemon does not want are ignored; a URL that
// fails with an authorization error (expired) makes the object wanted again.
type ObjectURLsRequest struct {
	Stream   string            `json:"stream"`
	Revision string            `json:"revision"`
	URLs     map[string]string `json:"urls"`
}

// CancelUnpackRequest stops the running unpack of Revision on Stream and
// waits for it to end: the stream is then dirty (its last error says it was
// cancelled) and accepts an unpack of any revision, or forget-stream. The
// objects it fetched are kept for the next unpack. Without a running unpack
// it does nothing; when another revision is being unpacked it is a conflict.
//
// An unpack whose caller stops supplying the object URLs it asked for fails
// by itself after the daemon's URL wait (unpacker serve --url-wait).
type CancelUnpackRequest struct {
	Stream   string `json:"stream"`
	Revision string `json:"revision"`
}

// UnpackStatus is the state of an unpack.
type UnpackStatus struct {
	Stream Stream `json:"stream"`
	// Done: the volume is clean at the requested revision.
	Done bool `json:"done"`
	// Error: the unpack failed (or was cancelled, or its caller supplied no
	// URLs for the daemon's URL wait); the stream is dirty, and a new unpack
	// request starts over, verifying everything but keeping the objects
	// already fetched.
	Error string `json:"error,omitempty"`
	// WantedObjects are content hashes the daemon needs URLs for now; at most
	// MaxWantedBatch of them.
	WantedObjects []string `json:"wanted_objects,omitempty"`
	// MissingObjects counts all objects the volume lacked at the scan.
	MissingObjects int64 `json:"missing_objects"`
}

// MaxWantedBatch bounds UnpackStatus.WantedObjects: a caller presigns at most
// this many URLs per round trip.
const MaxWantedBatch = 500

// PrepareForSnapshotRequest syncs the stream's file system and freezes or
// unmounts it, refusing unless the stream is clean at Revision. Repeating it
// is a no-op.
type PrepareForSnapshotRequest struct {
	Stream   string       `json:"stream"`
	Revision string       `json:"revision"`
	Mode     SnapshotMode `json:"mode"`
}

// ReleaseRequest thaws or remounts a stream after its snapshot was taken.
type ReleaseRequest struct {
	Stream string `json:"stream"`
}

// ForgetStreamRequest unmounts a stream's file system and drops the stream;
// the device stays attached and the volume keeps its content.
type ForgetStreamRequest struct {
	Stream string `json:"stream"`
}

// Empty is the body of answers that carry nothing.
type Empty struct{}

// ErrorCode classifies an API error.
type ErrorCode string

// The error codes and the HTTP statuses they travel with.
const (
	CodeBadRequest  ErrorCode = "bad-request" // 400
	CodeNotFound    ErrorCode = "not-found"   // 404
	CodeConflict    ErrorCode = "conflict"    // 409: the stream's state forbids the request
	CodeUnavailable ErrorCode = "unavailable" // 503: e.g. the device did not appear in time
	CodeInternal    ErrorCode = "internal"    // 500
)

// Error is the body of every non-2xx answer.
type Error struct {
	Code    ErrorCode `json:"code"`
	Message string    `json:"message"`
}

// Error implements error.
func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }
