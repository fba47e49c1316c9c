// Package server is the unpacker daemon's HTTPS JSON API: mutual TLS (client
// certificates must chain to the configured client CA; anything else is
// refused in the TLS handshake, before any handler runs), a server key made
// on first start and kept in the state directory, and its SHA-256 certificate
// fingerprint printed to the console and the log at every start so that the
// provider can pin it. The handlers are a thin layer over internal/unpacker/daemon.
package server

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/daemon"
)

// Config configures Run: what `unpacker serve` is given on its command line.
type Config struct {
	// Listen is the address to listen on, e.g. ":6975" or "127.0.0.1:0".
	Listen string
	// StateDir holds the daemon's state and the server key (StateDir/tls).
	StateDir string
	// ClientCAFile is a PEM file of the CA certificates client certificates
	// must chain to.
	ClientCAFile string
	// LocalDevices, when set, is the directory of sparse files standing in
	// for volumes (local mode); empty means EC2 devices.
	LocalDevices string
	// IdlePoweroff powers the machine off after this long without requests
	// (zero: never).
	IdlePoweroff time.Duration
	// URLWait is how long an unpack waits for object URLs before it fails
	// (zero: daemon.DefaultURLWait).
	URLWait time.Duration
	// Version is reported by the API.
	Version string
	// Console receives the fingerprint and listening lines (stdout; the
	// systemd unit sends it to the serial console too). Nil means io.Discard.
	Console io.Writer
	// Logger is the daemon's log; nil means slog.Default().
	Logger *slog.Logger
	// Poweroff and Hook are passed to the daemon (tests set them).
	Poweroff func(context.Context) error
	Hook     func(point string) error
}

// Run starts the daemon and serves the API until ctx ends, then shuts down
// gracefully (a running unpack is cancelled; its stream stays dirty).
func Run(ctx context.Context, cfg Config) error { return run(ctx, cfg) }

// LoadOrCreateCertificate returns the server certificate kept in
// stateDir/tls, creating a new key and self-signed certificate on first use,
// and its fingerprint (wire.Fingerprint).
func LoadOrCreateCertificate(stateDir string) (tls.Certificate, string, error) {
	return loadOrCreateCertificate(stateDir)
}

// TLSConfig is the server's TLS configuration: TLS 1.3, the server
// certificate, and client certificates required and verified against clientCAs.
func TLSConfig(cert tls.Certificate, clientCAFile string) (*tls.Config, error) {
	return tlsConfig(cert, clientCAFile)
}

// NewHandler routes the API to d. Every request but metrics and health
// counts as activity for the idle power-off timer; every request is counted
// in d's metrics.
func NewHandler(d *daemon.Daemon, log *slog.Logger) http.Handler { return newHandler(d, log) }

// Serve serves the API on ln (already a TLS listener, or plain for tests of
// the handlers) until ctx ends.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	return serve(ctx, ln, h, log)
}
