// Package unpackerinstance runs the unpacker of one target (account,
// region) on an EC2 instance: it launches the instance from a stock Debian
// 12 image (or a given one) with an encrypted root volume, bootstraps the
// daemon through user-data that carries only public material (see
// deploy/README.md, "Bootstrap contract"), learns the daemon's server
// certificate fingerprint from the instance's console output and pins it,
// and starts, stops, upgrades and terminates it. Nothing is trusted on first
// use over the network: a daemon whose handshake shows another certificate
// than its console printed is refused.
//
// It knows no Terraform: the autoami_unpacker resource and the publisher
// (EnsureReady) use it. Every wait is an SDK waiter or a poll bounded by the
// caller's context, and is logged with what it waits for and how long it
// took.
package unpackerinstance

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/awsclient"
	"github.com/autoami/terraform-provider-autoami/internal/contentstore"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/client"
	"github.com/autoami/terraform-provider-autoami/internal/unpackerbinary"
)

// DebianOwner is the AWS account of the official Debian images; the default
// image is looked up among its images only (never a same-named image of
// anyone else).
const DebianOwner = "136693071363"

// How the provider reaches an unpacker's daemon.
const (
	ConnectViaPrivateIP = "private_ip"
	ConnectViaPublicIP  = "public_ip"
)

// DefaultIdlePoweroff is how long a daemon waits without requests before it
// powers its instance off (which stops it: shutdown behaviour stop).
const DefaultIdlePoweroff = 30 * time.Minute

// TagTarget is the tag on everything this package creates: the instance,
// its root volume and the security group it made. Its value is the target,
// "<account>/<region>".
const TagTarget = "autoami:unpacker"

// DefaultInstanceType is the instance type of an unpacker of arch that names
// none: a small current-generation burstable type (2 vCPUs, 2 GiB).
func DefaultInstanceType(arch string) (string, error) { return defaultInstanceType(arch) }

// DefaultImageName is the name pattern of the official Debian 12 images for
// arch ("debian-12-amd64-*").
func DefaultImageName(arch string) (string, error) { return defaultImageName(arch) }

// Config configures a Manager.
type Config struct {
	// Clients gives the AWS clients of each target.
	Clients *awsclient.Factory
	// Store is the content store the unpacker binary is uploaded to (once,
	// by digest); Presigner signs the GET the instance downloads it with
	// (an s3.PresignClient of the store's region).
	Store     *contentstore.Store
	Presigner contentstore.GetPresigner
	// Logger receives every wait and step (nil: discarded). Calls pass the
	// caller's context, so a handler can route them (the provider: tflog).
	Logger *slog.Logger
	// Polling tunes the waits; zero fields take DefaultPolling's.
	Polling Polling
}

// Polling says how often the waits look again.
type Polling struct {
	// InstanceMinDelay and InstanceMaxDelay bound the SDK waiters' delays
	// between DescribeInstances (and DescribeVolumes) calls.
	InstanceMinDelay, InstanceMaxDelay time.Duration
	// Console is the delay between reads of the console output while
	// waiting for the daemon's fingerprint line.
	Console time.Duration
	// Health is the delay between attempts to reach the daemon.
	Health time.Duration
}

// DefaultPolling suits EC2: instances take tens of seconds to change state.
var DefaultPolling = Polling{InstanceMinDelay: 2 * time.Second, InstanceMaxDelay: 15 * time.Second,
	Console: 5 * time.Second, Health: 2 * time.Second}

// Manager launches and manages unpacker instances. Safe for concurrent use.
type Manager struct{ m *manager }

// New checks cfg and returns a Manager. Store and Presigner may be nil for a
// Manager that never launches or upgrades (Describe, Delete, EnsureReady).
func New(cfg Config) (*Manager, error) { return newManager(cfg) }

// Spec is the unpacker to launch.
type Spec struct {
	// Target is the account (RoleARN, or the provider's own) and region.
	Target awsclient.Target
	// Architecture is unpackerbinary.X86_64 or ARM64.
	Architecture string
	// ImageID is the image to boot; "" means the newest official Debian 12
	// image for Architecture. An image the target cannot launch is an
	// error naming it.
	ImageID string
	// KMSKeyID encrypts the root volume; "" means the target's default EBS key.
	KMSKeyID string
	// InstanceType; "" means DefaultInstanceType(Architecture).
	InstanceType string
	// SubnetID; "" means the default VPC's subnet in the first zone (by
	// name) that offers InstanceType.
	SubnetID string
	// SecurityGroupIDs; none means a group made for this unpacker, open
	// only on Port and only to AllowedCIDRs (then required).
	SecurityGroupIDs []string
	AllowedCIDRs     []string
	// ConnectVia is ConnectViaPrivateIP (default) or ConnectViaPublicIP
	// (the instance then gets a public IP).
	ConnectVia string
	// Port is the daemon's port; 0 means the daemon's default (wire.DefaultPort).
	Port int
	// IdlePoweroff is the daemon's --idle-poweroff; 0 means never.
	IdlePoweroff time.Duration
	// Tags go on the instance, its root volume and a security group made
	// for it (with TagTarget added).
	Tags map[string]string
	// Binary is the unpacker to install.
	Binary unpackerbinary.Binary
}

// Identity is the provider's side of the trust: a client CA (whose
// certificate the daemon gets through user-data) and a client certificate
// it issued (ECDSA P-256, long-lived). Only ClientCACertificatePEM ever
// leaves the provider; the CA's key is not kept (no more certificates are
// ever issued from it), so a new identity means a new CA.
type Identity struct {
	ClientCACertificatePEM string
	ClientCertificatePEM   string
	ClientPrivateKeyPEM    string
}

// NewIdentity makes a client CA and a client certificate named commonName.
func NewIdentity(commonName string) (Identity, error) { return newIdentity(commonName) }

// TLSCertificate is the client certificate and key, for the unpacker client.
func (id Identity) TLSCertificate() (tls.Certificate, error) { return id.tlsCertificate() }

// Validity is how long an Identity's certificates are valid: long-lived,
// rotated by replacing the unpacker (terraform apply -replace).
const Validity = 30 * 365 * 24 * time.Hour

// Unpacker is one unpacker instance as it is, and what it was bootstrapped with.
type Unpacker struct {
	Region    string
	AccountID string
	// RoleARN is the role the target is reached through ("" for the
	// provider's own account).
	RoleARN    string
	InstanceID string
	// State is the instance state (pending, running, stopping, stopped,
	// shutting-down, terminated).
	State            string
	ImageID          string
	Architecture     string
	InstanceType     string
	AvailabilityZone string
	SubnetID         string
	SecurityGroupIDs []string
	// CreatedSecurityGroupID is the group made for this unpacker (deleted
	// with it); "" when the groups were given.
	CreatedSecurityGroupID string
	// AllowedCIDRs are the sources the created group admits.
	AllowedCIDRs []string
	PrivateIP    string
	PublicIP     string
	ConnectVia   string
	Port         int
	IdlePoweroff time.Duration
	// Endpoint is "host:port" the daemon is reached at.
	Endpoint string
	// ServerCertificateFingerprint is the pin, learnt from the console.
	ServerCertificateFingerprint string
	// UnpackerVersion is the version the daemon reported.
	UnpackerVersion string
	// BinarySHA256 is the digest of the binary its user-data installs.
	BinarySHA256 string
	// ClientCACertificatePEM is the client CA its user-data installs.
	ClientCACertificatePEM string
	// Tags are the instance's tags (TagTarget left out).
	Tags map[string]string
}

// Target is everything a published AMI needs to reach and trust one
// unpacker (the autoami_unpacker resource's `target` attribute).
type Target struct {
	Region                       string
	AccountID                    string
	RoleARN                      string
	InstanceID                   string
	Endpoint                     string
	ServerCertificateFingerprint string
	ClientCertificatePEM         string
	ClientPrivateKeyPEM          string
}

// Target returns u's target with the client identity id.
func (u *Unpacker) Target(id Identity) Target { return targetOf(u, id) }

// ErrGone is wrapped by errors about an instance that is terminated or
// does not exist (any more).
var ErrGone = errors.New("the unpacker instance is gone")

// Create launches an unpacker: it uploads the binary (unless the content
// store has it), launches the instance (with a client token, so a retried
// call never makes two), waits until it runs, until its console shows the
// daemon's fingerprint, and until the daemon answers over mutual TLS pinned
// to it. An error after the launch returns the Unpacker too, so that the
// caller can record (and later delete) it; a security group it made before
// a failed launch is deleted again.
func (m *Manager) Create(ctx context.Context, spec Spec, id Identity) (*Unpacker, error) {
	return m.m.create(ctx, spec, id)
}

// Refresh reads u's instance again and updates u's EC2 fields (state,
// addresses, type, tags; the endpoint keeps its last address while the
// instance has none). The error wraps ErrGone for a terminated or missing
// instance.
func (m *Manager) Refresh(ctx context.Context, u *Unpacker) error { return m.m.refresh(ctx, u) }

// Adopt reads an unpacker that was not created here (terraform import): the
// instance, what its user-data says (port, idle power-off, binary, client
// CA; an instance whose user-data is not an unpacker's is an error), the
// security group made for it and the fingerprint its console shows last.
func (m *Manager) Adopt(ctx context.Context, target awsclient.Target, instanceID string) (*Unpacker, error) {
	return m.m.adopt(ctx, target, instanceID)
}

// SetTags replaces the tags of u's instance, root volume and the group made
// for it with tags (TagTarget kept).
func (m *Manager) SetTags(ctx context.Context, u *Unpacker, tags map[string]string) error {
	return m.m.setTags(ctx, u, tags)
}

// ChangeInstanceType stops a running instance, changes its type and starts
// it again, waiting until its daemon answers with the pinned fingerprint; a
// stopped instance only changes type (it starts when it is needed).
func (m *Manager) ChangeInstanceType(ctx context.Context, u *Unpacker, id Identity, instanceType string) error {
	return m.m.changeInstanceType(ctx, u, id, instanceType)
}

// Rebootstrap gives u new user-data and boots it: stop, user-data with bin
// and id's client CA, start, wait until the daemon answers. The per-boot
// part of the bootstrap installs a binary of another digest and the client
// CA, while the state directory and the server key survive, so the
// fingerprint stays (a changed one, printed by the console, is adopted and
// logged). Used for upgrades (a new provider version) and to re-establish
// trust after an import (a new identity).
func (m *Manager) Rebootstrap(ctx context.Context, u *Unpacker, bin unpackerbinary.Binary, id Identity) error {
	return m.m.rebootstrap(ctx, u, bin, id)
}

// Delete detaches any volume besides the root (stopping the instance first
// if one is attached, so the daemon unmounts it), terminates the instance,
// waits until it is terminated and deletes the security group made for it.
// A gone instance is not an error.
func (m *Manager) Delete(ctx context.Context, u *Unpacker) error { return m.m.delete(ctx, u) }

// EnsureReady is the package-level EnsureReady with the Manager's clients,
// logger and polling.
func (m *Manager) EnsureReady(ctx context.Context, t Target) (*client.Client, error) {
	return ensureReady(ctx, m.m.readyEnv(), t)
}

// ReadyOptions tune EnsureReady.
type ReadyOptions struct {
	Logger  *slog.Logger
	Polling Polling
}

// EnsureReady makes t's unpacker ready for work: a stopped (or stopping)
// instance is started, and it waits until the daemon answers over mutual
// TLS pinned to t's fingerprint, then returns a client for it. A daemon
// whose handshake shows another certificate is refused with an error
// wrapping *client.PinError (naming both fingerprints); a gone instance is
// an error wrapping ErrGone. With connect_via public_ip the endpoint's host
// follows the instance's current public IP (it changes at every start).
func EnsureReady(ctx context.Context, clients *awsclient.Factory, t Target, opts ReadyOptions) (*client.Client, error) {
	return ensureReady(ctx, readyEnv{clients: clients, log: loggerOr(opts.Logger), poll: opts.Polling.withDefaults()}, t)
}

// Bootstrap is what an unpacker's user-data says: the contract of
// deploy/README.md ("Bootstrap contract"), with only public material.
type Bootstrap struct {
	// Architecture selects the packages (the GRUB module packages differ).
	Architecture string
	// SkipPackages leaves out the packages step (an image that has them).
	SkipPackages bool
	// ClientCACertificatePEM is the CA client certificates must chain to.
	ClientCACertificatePEM string
	// BinaryURL is where the instance downloads the unpacker (a presigned
	// S3 GET); BinarySHA256 its hex SHA-256, verified before it runs.
	BinaryURL    string
	BinarySHA256 string
	// Port is the daemon's port (0: wire.DefaultPort).
	Port int
	// IdlePoweroff is the daemon's --idle-poweroff (0: never).
	IdlePoweroff time.Duration
}

// UserData renders b as the contract's cloud-config (its JSON form, which
// cloud-init reads as YAML): packages, write_files, runcmd for the first
// boot, and the bootcmd part that runs at every boot (installing a binary
// of another digest and the client CA). A missing or malformed field is an
// error naming it; the result is at most 16 KiB (EC2's limit).
func UserData(b Bootstrap) ([]byte, error) { return renderUserData(b) }

// ParseUserData reads user-data that UserData made (e.g. of an imported
// instance); anything else is an error.
func ParseUserData(data []byte) (Bootstrap, error) { return parseUserData(data) }

// Packages are the Debian packages an unpacker of arch installs
// (deploy/README.md, "Debian packages the instance needs").
func Packages(arch string) ([]string, error) { return packagesFor(arch) }

// FormatDuration writes an idle power-off as the bootstrap (and the
// configuration) does: "30m", "1h30m", "45s", "0s".
func FormatDuration(d time.Duration) string { return formatDuration(d) }
