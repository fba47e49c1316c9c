// Package publisher publishes one revision of an image stream as an
// encrypted AMI in many targets (account, region) at once: Dominator's
// publisher, with resume, cleanup, permissions, SSM parameters, deprecation
// and drift. It knows no Terraform; the autoami_published_ami resource is a
// thin layer over it (plan-time checks: Publication.Validate and the
// Validate* helpers; apply: Publish; refresh: Refresh; destroy and dropped
// targets: Delete).
//
// Every target is worked on by one actor, in explicit steps (Step), with at
// most Config.Concurrency targets at a time. A tree stream's revision reaches
// a target through its unpacker: the stream volume (one persistent encrypted
// EBS volume per stream and target, in the unpacker's zone; grown in place
// when the content outgrows it, replaced for another zone or key) is
// attached to the unpacker instance, patched to the revision by the daemon with presigned URLs
// of the content store's objects, made ready (unmounted), snapshotted and
// released as soon as the snapshot has started (EBS snapshots are point in
// time). A raw-image stream is written straight into a snapshot with the EBS
// direct API (only the blocks that differ from the previous revision's
// snapshot). The snapshot is registered as an AMI, which is then tagged,
// shared, deprecated and written to an SSM parameter as asked.
//
// Progress survives failures and interruptions: everything the publisher
// makes carries tags naming the stream, revision, target and publication
// (Tag*), so the next Publish finds a completed snapshot or a registered
// image of the revision and finishes only what is missing, and Delete finds
// and removes all of it. A target's failure names the target and the step
// and does not undo the other targets.
package publisher

import (
	"context"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/awsclient"
	"github.com/autoami/terraform-provider-autoami/internal/contentstore"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/client"
)

// Target is one (account, region) that receives an AMI, and how to reach its
// unpacker: the `target` object of an autoami_unpacker resource.
type Target struct {
	// AccountID is the target's 12-digit account; the credentials (RoleARN,
	// or the provider's own) must act as this account.
	AccountID string
	// Region is the target's region.
	Region string
	// RoleARN is assumed to act in the account; empty means the provider's
	// own credentials.
	RoleARN string
	// InstanceID is the unpacker instance the stream volume is attached to.
	InstanceID string
	// AvailabilityZone is the unpacker's zone, where the stream volume must
	// be; empty means look it up from the instance.
	AvailabilityZone string
	// Endpoint is the daemon's "host:port" (its private IP and port).
	Endpoint string
	// ServerCertificateFingerprint pins the daemon's certificate.
	ServerCertificateFingerprint string
	// ClientCertificatePEM and ClientKeyPEM authenticate the provider to the
	// daemon (mutual TLS).
	ClientCertificatePEM string
	ClientKeyPEM         string
}

// Key is the target's key in results and in the resource's `amis` map:
// "ACCOUNT_ID/REGION".
func (t Target) Key() string { return targetKey(t.AccountID, t.Region) }

// String names the target in messages: "account 222222222222 in eu-west-1".
func (t Target) String() string { return "account " + t.AccountID + " in " + t.Region }

// LaunchPermission says who may launch the AMIs besides their owner. Accounts
// also get createVolumePermission on the AMI's snapshot. Nothing is public.
type LaunchPermission struct {
	AccountIDs             []string
	OrganizationARNs       []string
	OrganizationalUnitARNs []string
}

// Empty reports whether the AMIs are shared with nobody.
func (lp LaunchPermission) Empty() bool {
	return len(lp.AccountIDs)+len(lp.OrganizationARNs)+len(lp.OrganizationalUnitARNs) == 0
}

// SSMParameter is a parameter written in every target with the AMI's ID
// (data type aws:ec2:image).
type SSMParameter struct {
	Name string
	// Overwrite allows replacing a parameter this publication did not write.
	Overwrite bool
}

// Publication is what to publish and how. The resource fills every field;
// WithDefaults fills what a library caller left empty.
type Publication struct {
	// ID identifies the publication for as long as it exists (the resource's
	// ID); every volume, snapshot, image and parameter it makes is tagged with
	// it, and Delete removes what carries it.
	ID string
	// Stream and Revision name the content (a tree or raw-image stream).
	Stream   string
	Revision string
	// NameTemplate makes the AMI name from {stream}, {revision} (its first
	// 12 hex digits) and {date} (Date, UTC, as 20060102-1504).
	NameTemplate string
	// Date is the {date} of the name; it must not change between runs of
	// one publication of a revision (the resource passes the revision's
	// creation time), or a resumed run would look for another name.
	Date        time.Time
	Description string
	// Architecture is x86_64 or arm64.
	Architecture string
	// BootMode is legacy-bios, uefi or uefi-preferred.
	BootMode string
	// ENASupport marks the AMI as supporting ENA (the resource's default is
	// true).
	ENASupport bool
	// IMDSSupport is "v2.0" (instances from the AMI require IMDSv2) or "".
	IMDSSupport string
	// TPMSupport is "v2.0" (NitroTPM; needs uefi) or "".
	TPMSupport string
	// VolumeType is the root volume type of instances (gp3, gp2, io1, io2,
	// st1, sc1, standard).
	VolumeType string
	// VolumeSizeGiB is the root volume size of instances; 0 means the
	// snapshot's size (the stream volume: content × 1.25 plus room for the
	// boot partitions and file system, rounded up to GiB).
	VolumeSizeGiB int32
	// KMSKeyID is a key ID, alias ("alias/name") or key ARN that every
	// target resolves in its own account and region; empty means each
	// target's default EBS key. No key is ever shared across accounts.
	KMSKeyID string
	// LaunchPermission shares the AMIs (needs a customer managed key).
	LaunchPermission LaunchPermission
	// SSMParameter, when set, is written with the AMI ID in every target.
	SSMParameter *SSMParameter
	// DeprecateAt, when set, is the AMIs' deprecation time (rounded up to
	// the minute; a time already past deprecates at once).
	DeprecateAt time.Time
	// DeregistrationProtection protects the AMIs from deregistration
	// (without cooldown, so Delete can lift it).
	DeregistrationProtection bool
	// Tags are put on the AMIs, their snapshots and the stream volumes
	// besides autoami's own (keys starting with "autoami:" are reserved).
	Tags map[string]string
	// RemovedTags are keys dropped from Tags since the last run (the
	// resource's previous tags less its new ones): they are deleted from
	// the images and their snapshots. Tags set out of band are left alone.
	RemovedTags []string
}

// WithDefaults returns p with empty BootMode, VolumeType, Architecture and
// NameTemplate set to the defaults (DefaultBootMode, DefaultVolumeType,
// DefaultArchitecture, DefaultNameTemplate).
func (p Publication) WithDefaults() Publication { return withDefaults(p) }

// Validate checks p without calling AWS (plan time): every problem is an
// error naming the attribute.
func (p Publication) Validate() error { return validatePublication(p) }

// Defaults of a Publication.
const (
	DefaultBootMode     = "uefi-preferred"
	DefaultVolumeType   = "gp3"
	DefaultArchitecture = "x86_64"
	DefaultIMDSSupport  = "v2.0"
	DefaultNameTemplate = "{stream}-{revision}-{date}"
	// DefaultConcurrency is how many targets are worked on at once.
	DefaultConcurrency = 8
)

// ValidateNameTemplate checks an AMI name template (placeholders, allowed
// characters, length for the given stream).
func ValidateNameTemplate(template, stream string) error {
	return validateNameTemplate(template, stream)
}

// RenderName is the AMI name the template gives for stream, revision and date.
func RenderName(template, stream, revision string, date time.Time) string {
	return renderName(template, stream, revision, date)
}

// ValidateSSMParameterName checks an SSM parameter name for an AMI ID.
func ValidateSSMParameterName(name string) error { return validateSSMParameterName(name) }

// ValidateKMSKeyID checks a kms_key_id against the targets: a key ARN must
// name the account and region of every target (so it suits one target only).
func ValidateKMSKeyID(keyID string, targets []Target) error { return validateKMSKeyID(keyID, targets) }

// ValidateTargets checks the targets' shape: account IDs, regions, no target
// twice, what the unpacker connection needs.
func ValidateTargets(targets []Target) error { return validateTargets(targets) }

// ClientSource gives the AWS clients of a target; *awsclient.Factory is one.
type ClientSource interface {
	For(ctx context.Context, target awsclient.Target) (*awsclient.Clients, error)
}

// ConnectFunc makes sure a target's unpacker is ready (started, reachable)
// and returns a client of its daemon. The autoami_unpacker resource's
// package provides one; Dial only connects.
type ConnectFunc func(ctx context.Context, t Target) (*client.Client, error)

// Dial returns a client of the target's daemon (Endpoint, pinned
// fingerprint, client certificate); it does not start the instance.
func Dial(t Target) (*client.Client, error) { return dial(t) }

// Config configures a Publisher.
type Config struct {
	// Clients gives every target's AWS clients (and the account they act as).
	Clients ClientSource
	// Store is the content store holding the streams' revisions, and
	// Presigner signs GETs of its objects (an s3.PresignClient of the
	// store's S3 client).
	Store     *contentstore.Store
	Presigner contentstore.GetPresigner
	// Connect readies a target's unpacker; nil means Dial.
	Connect ConnectFunc
	// Progress receives every step and wait, one call at a time (the
	// provider turns them into log lines). It may cancel the context of the
	// running call (tests stop a publication at a chosen step this way).
	Progress func(Event)
	// Concurrency bounds the targets worked on at once; 0 means
	// DefaultConcurrency.
	Concurrency int
	// Timeouts bound the waits; zero fields take DefaultTimeouts'.
	Timeouts Timeouts
	// Polling paces the waits; zero fields take DefaultPolling's.
	Polling Polling
	// URLExpiry is how long a presigned URL handed to a daemon is valid;
	// 0 means one hour. The daemon asks for URLs just before it uses them
	// and asks again for one that expired.
	URLExpiry time.Duration
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Timeouts bound each kind of wait. The caller's context (the resource's
// timeouts) bounds the whole publication on top.
type Timeouts struct {
	// Volume: a new volume available, a modification, an attach or detach.
	Volume time.Duration
	// Unpack: the daemon patching the stream volume to the revision.
	Unpack time.Duration
	// Snapshot: a snapshot completed.
	Snapshot time.Duration
	// Image: a registered image available.
	Image time.Duration
	// SSMParameter: a written parameter readable with the new value.
	SSMParameter time.Duration
}

// DefaultTimeouts are the Timeouts of an empty Config.Timeouts field.
var DefaultTimeouts = Timeouts{
	Volume:       5 * time.Minute,
	Unpack:       60 * time.Minute,
	Snapshot:     60 * time.Minute,
	Image:        40 * time.Minute,
	SSMParameter: 2 * time.Minute,
}

// Polling paces waits: SDK waiters and bounded polls start at MinDelay and
// back off to MaxDelay.
type Polling struct {
	MinDelay time.Duration
	MaxDelay time.Duration
	// ImageObservations is how many consecutive "available" answers an image
	// needs (EC2 is eventually consistent).
	ImageObservations int
}

// DefaultPolling is the Polling of an empty Config.Polling field.
var DefaultPolling = Polling{MinDelay: 2 * time.Second, MaxDelay: 20 * time.Second, ImageObservations: 3}

// Publisher publishes revisions into targets. Safe for concurrent use.
type Publisher struct{ impl *publisher }

// New checks cfg and returns a Publisher.
func New(cfg Config) (*Publisher, error) { return newPublisher(cfg) }

// Publish brings every target to pub's revision and returns one Result per
// target, in the order of targets. Targets that fail do not stop or undo the
// others; the Outcome's Err joins their errors. Calling Publish again (after
// a failure, an interruption or a crash) finishes only what is missing:
// an image of the revision found by its tags is reused, as is a completed
// snapshot; launch permissions, deprecation, protection and the SSM
// parameter are brought to what pub says (which also repairs drift).
func (p *Publisher) Publish(ctx context.Context, pub Publication, targets []Target) Outcome {
	return p.impl.publish(ctx, pub, targets)
}

// Refresh reads the state of the publication's images in the targets (one
// DescribeImages per account and region, by the records' image IDs) and
// reports drift per target key: images gone or unusable (republish that
// target), launch permissions, deprecation, protection or the SSM parameter
// changed (Publish restores them). Records are the previous results.
func (p *Publisher) Refresh(ctx context.Context, pub Publication, targets []Target, records map[string]Record) (map[string]Drift, error) {
	return p.impl.refresh(ctx, pub, targets, records)
}

// Lookup finds, by their tags, the publication's images of pub.Revision in
// the targets (one DescribeImages per target): the records of an imported
// publication, or of one whose records were lost. A target without an
// available image of the revision gets a record that is not Published.
func (p *Publisher) Lookup(ctx context.Context, pub Publication, targets []Target) (map[string]Record, error) {
	return p.impl.lookup(ctx, pub, targets)
}

// Delete removes from the targets everything the publication made: its
// AMIs of every revision (deregistered with their snapshots, protection
// lifted first), snapshots not registered, the SSM parameter when it still
// holds one of its images, and its stream volumes (the daemon forgets the
// stream, then the volume is detached and deleted). A destroy passes every
// target; an update passes the targets dropped from the list. Errors are
// per target, joined; what succeeded stays done.
func (p *Publisher) Delete(ctx context.Context, pub Publication, targets []Target) error {
	return p.impl.delete(ctx, pub, targets)
}

// DeleteParameter removes the SSM parameter name from the targets where
// this publication wrote it and it still holds one of its images: for an
// update that renames ssm_parameter or drops it.
func (p *Publisher) DeleteParameter(ctx context.Context, pub Publication, name string, targets []Target) error {
	return p.impl.deleteParameter(ctx, pub, name, targets)
}

// Step is where a target's actor is. The steps of a tree stream run in this
// order; a raw-image stream goes from StepResume to StepWriteSnapshot and on
// to StepWaitSnapshot.
type Step string

// The steps.
const (
	StepCheck           Step = "check target"        // clients, account, KMS key
	StepResume          Step = "find progress"       // earlier image or snapshot of the revision
	StepConnect         Step = "connect unpacker"    // the unpacker ready, its zone known
	StepVolume          Step = "stream volume"       // found, created or replaced
	StepAttach          Step = "attach volume"       // attached to the unpacker instance
	StepAssociate       Step = "associate stream"    // the daemon holds the device and the stream
	StepUnpack          Step = "unpack"              // the volume patched to the revision
	StepPrepareSnapshot Step = "prepare snapshot"    // unmounted, clean at the revision
	StepCreateSnapshot  Step = "create snapshot"     // CreateSnapshot
	StepRelease         Step = "release stream"      // the daemon re-mounts the volume
	StepWriteSnapshot   Step = "write snapshot"      // raw image: EBS direct
	StepWaitSnapshot    Step = "wait for snapshot"   // completed
	StepRegister        Step = "register image"      // RegisterImage
	StepWaitImage       Step = "wait for image"      // available
	StepShare           Step = "share image"         // tags, launch and volume permissions
	StepDeprecate       Step = "deprecate image"     // deprecation time, protection
	StepSSMParameter    Step = "write ssm parameter" // PutParameter and read back
	StepDone            Step = "done"
	// StepDelete is the step of Delete's events.
	StepDelete Step = "delete"
)

// EventKind says what an Event reports.
type EventKind string

// The kinds of events.
const (
	EventStep   EventKind = "step"   // a target enters Step
	EventWait   EventKind = "wait"   // a wait starts (Message says for what and how long at most)
	EventInfo   EventKind = "info"   // something worth a log line
	EventDone   EventKind = "done"   // the target is published
	EventFailed EventKind = "failed" // the target failed (Err)
)

// Event is one piece of progress of one target.
type Event struct {
	Time time.Time
	// Target is the target's key ("ACCOUNT_ID/REGION").
	Target  string
	Step    Step
	Kind    EventKind
	Message string
	Err     error
}

// Record is what one target holds of a publication: what the resource
// keeps in private state per target and maps to its `amis` map.
type Record struct {
	Target   string `json:"target"`
	Revision string `json:"revision"`
	// Step is the last step the target completed (StepDone when published).
	Step       Step      `json:"step"`
	VolumeID   string    `json:"volume_id,omitempty"`
	SnapshotID string    `json:"snapshot_id,omitempty"`
	ImageID    string    `json:"image_id,omitempty"`
	Name       string    `json:"name,omitempty"`
	CreatedAt  time.Time `json:"created_at,omitzero"`
}

// Published reports whether the target holds the revision's AMI, ready.
func (r Record) Published() bool { return r.Step == StepDone && r.ImageID != "" }

// Result is the outcome of one target.
type Result struct {
	Target Target
	Record Record
	// Err is nil or a *TargetError.
	Err error
}

// Outcome is the outcome of a Publish.
type Outcome struct {
	Results []Result
	// Err is an error for the publication as a whole (e.g. the revision is
	// not in the content store), when no target was tried.
	Err error
}

// Error joins the publication's error and every target's.
func (o Outcome) Error() error { return outcomeError(o) }

// TargetError is a target's failure: which target, at which step, why.
type TargetError struct {
	Target Target
	Step   Step
	Err    error
}

func (e *TargetError) Error() string {
	return "publish to " + e.Target.String() + ": " + string(e.Step) + ": " + e.Err.Error()
}

func (e *TargetError) Unwrap() error { return e.Err }

// Drift is what changed out of band in one target.
type Drift struct {
	Target string
	// ImageMissing: the image is gone, failed or disabled: republish the target.
	ImageMissing bool
	// LaunchPermission, SnapshotPermission, Deprecation, Protection and
	// SSMParameter: changed; Publish restores them.
	LaunchPermission   bool
	SnapshotPermission bool
	Deprecation        bool
	Protection         bool
	SSMParameter       bool
	// Details say what changed, one sentence each.
	Details []string
}

// Any reports whether anything drifted.
func (d Drift) Any() bool {
	return d.ImageMissing || d.LaunchPermission || d.SnapshotPermission || d.Deprecation || d.Protection || d.SSMParameter
}

// Tags autoami puts on what it makes.
const (
	TagStream      = "autoami:stream"
	TagRevision    = "autoami:revision"
	TagTarget      = "autoami:target"
	TagPublication = "autoami:publication"
	// TagRole says what a volume or snapshot is to autoami ("stream-volume", "root-snapshot").
	TagRole = "autoami:role"
)
