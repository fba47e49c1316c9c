// Package client is the typed client of the unpacker daemon's API, used by
// the Terraform provider. It speaks HTTPS with a client certificate (mutual
// TLS) and trusts exactly one server certificate: the one whose SHA-256
// fingerprint it was given (the daemon prints it at every start). Requests
// are retried with backoff on connection errors and 5xx answers; every API
// call is idempotent, so retrying is safe.
package client

import (
	"context"
	"crypto/tls"
	"log/slog"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// Config configures a Client.
type Config struct {
	// Address is the daemon's "host:port" (the default port is
	// wire.DefaultPort) or an https:// URL.
	Address string
	// Fingerprint is the server certificate's SHA-256 fingerprint to pin
	// (see wire.ParseFingerprint for accepted forms).
	Fingerprint string
	// Certificate is the client certificate, issued by the daemon's client CA.
	Certificate tls.Certificate
	// RetryMax is the number of retries of a failed request (0: 8);
	// RetryWaitMax bounds the backoff between them (0: 10s).
	RetryMax     int
	RetryWaitMax time.Duration
	// Timeout bounds one request, retries included (0: 2 minutes). Calls in
	// which the daemon may wait (attach-device, unpack-status long polls,
	// cancel-unpack) get the daemon's wait bound on top.
	Timeout time.Duration
	// Logger receives retries; nil discards them.
	Logger *slog.Logger
}

// Client talks to one unpacker daemon. It is safe for concurrent use.
type Client struct {
	impl *client
}

// New returns a client for cfg; it does not connect yet.
func New(cfg Config) (*Client, error) { return newClient(cfg) }

// PinError is returned (wrapped) when the server presents a certificate
// other than the pinned one. It is never retried.
type PinError struct {
	Want, Got string
}

func (e *PinError) Error() string {
	return "unpacker server certificate fingerprint is " + e.Got + ", want " + e.Want
}

// Health checks that the daemon is up.
func (c *Client) Health(ctx context.Context) (wire.Health, error) { return c.impl.health(ctx) }

// Status returns the daemon's devices and streams.
func (c *Client) Status(ctx context.Context) (wire.Status, error) { return c.impl.status(ctx) }

// AttachDevice waits for the device of an attached volume (see wire.AttachDeviceRequest).
func (c *Client) AttachDevice(ctx context.Context, req wire.AttachDeviceRequest) (wire.Device, error) {
	var out wire.Device
	return out, c.impl.callWaiting(ctx, wire.PathAttachDevice, req, &out, attachWait(req))
}

// DetachDevice makes the daemon let go of a volume no stream uses.
func (c *Client) DetachDevice(ctx context.Context, req wire.DetachDeviceRequest) error {
	return c.impl.call(ctx, wire.PathDetachDevice, req, &wire.Empty{})
}

// AssociateStream binds a stream to an attached volume.
func (c *Client) AssociateStream(ctx context.Context, req wire.AssociateStreamRequest) (wire.Stream, error) {
	var out wire.Stream
	return out, c.impl.call(ctx, wire.PathAssociateStream, req, &out)
}

// StartUnpack starts an unpack (or reports the running one); see Unpack for
// the whole exchange.
func (c *Client) StartUnpack(ctx context.Context, req wire.UnpackRequest) (wire.UnpackStatus, error) {
	var out wire.UnpackStatus
	return out, c.impl.call(ctx, wire.PathUnpack, req, &out)
}

// UnpackStatus reads an unpack's status, waiting up to req.WaitSeconds for news.
func (c *Client) UnpackStatus(ctx context.Context, req wire.UnpackStatusRequest) (wire.UnpackStatus, error) {
	return c.impl.unpackStatus(ctx, req)
}

// SupplyObjectURLs hands the daemon URLs for objects it wants.
func (c *Client) SupplyObjectURLs(ctx context.Context, req wire.ObjectURLsRequest) (wire.UnpackStatus, error) {
	var out wire.UnpackStatus
	return out, c.impl.call(ctx, wire.PathObjectURLs, req, &out)
}

// CancelUnpack stops the running unpack of req.Revision and returns the
// stream, then dirty; without a running unpack it does nothing.
func (c *Client) CancelUnpack(ctx context.Context, req wire.CancelUnpackRequest) (wire.Stream, error) {
	var out wire.Stream
	return out, c.impl.callWaiting(ctx, wire.PathCancelUnpack, req, &out, wire.MaxCancelWaitSeconds*time.Second)
}

// URLSigner returns URLs (typically presigned S3 GETs) for content objects
// named by their hex SHA-256.
type URLSigner func(ctx context.Context, hashes []string) (map[string]string, error)

// UnpackOptions tune Unpack.
type UnpackOptions struct {
	// Progress, when set, is called with every status received.
	Progress func(wire.UnpackStatus)
	// Attempts is how often an unpack that failed is started again (it
	// resumes: objects already fetched are kept); 0 means 3.
	Attempts int
	// PollWait is the long-poll wait (0: 20s).
	PollWait time.Duration
}

// Unpack brings a stream to req.Revision and returns when the daemon reports
// it clean at that revision: it starts the unpack, answers every batch of
// wanted objects with URLs from sign, and long-polls the status between.
func (c *Client) Unpack(ctx context.Context, req wire.UnpackRequest, sign URLSigner, opts UnpackOptions) (wire.UnpackStatus, error) {
	return c.impl.unpack(ctx, req, sign, opts)
}

// PrepareForSnapshot syncs and freezes or unmounts a clean stream.
func (c *Client) PrepareForSnapshot(ctx context.Context, req wire.PrepareForSnapshotRequest) (wire.Stream, error) {
	var out wire.Stream
	return out, c.impl.call(ctx, wire.PathPrepareForSnapshot, req, &out)
}

// Release thaws or re-mounts a stream after its snapshot.
func (c *Client) Release(ctx context.Context, req wire.ReleaseRequest) (wire.Stream, error) {
	var out wire.Stream
	return out, c.impl.call(ctx, wire.PathRelease, req, &out)
}

// ForgetStream drops a stream; its volume keeps its content.
func (c *Client) ForgetStream(ctx context.Context, req wire.ForgetStreamRequest) error {
	return c.impl.call(ctx, wire.PathForgetStream, req, &wire.Empty{})
}

// Metrics returns the daemon's Prometheus metrics as text.
func (c *Client) Metrics(ctx context.Context) (string, error) { return c.impl.metrics(ctx) }

// PeerFingerprint connects once and returns the fingerprint of the server
// certificate presented, without pinning (to compare with a printed one).
func PeerFingerprint(ctx context.Context, address string, cert tls.Certificate) (string, error) {
	return peerFingerprint(ctx, address, cert)
}
