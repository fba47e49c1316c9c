package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-retryablehttp"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

type client struct {
	base    string // https://host:port
	http    *retryablehttp.Client
	timeout time.Duration
}

func newClient(cfg Config) (*Client, error) {
	base, err := baseURL(cfg.Address)
	if err != nil {
		return nil, err
	}
	pin, err := wire.ParseFingerprint(cfg.Fingerprint)
	if err != nil {
		return nil, fmt.Errorf("unpacker client for %s: %w", cfg.Address, err)
	}
	if len(cfg.Certificate.Certificate) == 0 {
		return nil, fmt.Errorf("unpacker client for %s: no client certificate given", cfg.Address)
	}
	transport := cleanhttp.DefaultPooledTransport()
	transport.TLSClientConfig = pinnedTLSConfig(pin, cfg.Certificate)
	rc := retryablehttp.NewClient()
	rc.HTTPClient = &http.Client{Transport: transport}
	rc.RetryMax = cfg.RetryMax
	if rc.RetryMax == 0 {
		rc.RetryMax = 8
	}
	rc.RetryWaitMin = 250 * time.Millisecond
	rc.RetryWaitMax = cfg.RetryWaitMax
	if rc.RetryWaitMax == 0 {
		rc.RetryWaitMax = 10 * time.Second
	}
	rc.Logger = nil
	if cfg.Logger != nil {
		rc.Logger = cfg.Logger
	}
	rc.CheckRetry = checkRetry
	rc.ErrorHandler = retryablehttp.PassthroughErrorHandler
	c := &client{base: base, http: rc, timeout: cfg.Timeout}
	if c.timeout == 0 {
		c.timeout = 2 * time.Minute
	}
	return &Client{impl: c}, nil
}

func baseURL(address string) (string, error) {
	if address == "" {
		return "", fmt.Errorf("unpacker client: no address given")
	}
	if strings.HasPrefix(address, "https://") {
		u, err := url.Parse(address)
		if err != nil || u.Host == "" {
			return "", fmt.Errorf("unpacker address %q is not a URL", address)
		}
		return "https://" + u.Host, nil
	}
	if strings.Contains(address, "://") {
		return "", fmt.Errorf("unpacker address %q: only https is spoken", address)
	}
	if _, _, err := net.SplitHostPort(address); err != nil {
		address = net.JoinHostPort(address, strconv.Itoa(wire.DefaultPort))
	}
	return "https://" + address, nil
}

// pinnedTLSConfig trusts only the certificate with fingerprint pin: the
// daemon's certificate is self-signed, so the usual chain and host name
// checks are replaced by the pin. The pin is checked in VerifyConnection,
// which (unlike VerifyPeerCertificate) also runs on resumed sessions.
func pinnedTLSConfig(pin string, cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		Certificates:       []tls.Certificate{cert},
		InsecureSkipVerify: true, // verified by VerifyConnection below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return &PinError{Want: pin, Got: "(none)"}
			}
			if got := wire.Fingerprint(cs.PeerCertificates[0].Raw); got != pin {
				return &PinError{Want: pin, Got: got}
			}
			return nil
		},
	}
}

// checkRetry retries what retryablehttp retries, except a pinning failure
// (another server, or an attack: retrying cannot help).
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	var pe *PinError
	if errors.As(err, &pe) {
		return false, err
	}
	return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
}

// call POSTs in as JSON to path and decodes the answer into out.
func (c *client) call(ctx context.Context, path string, in, out any) error {
	return c.do(ctx, http.MethodPost, path, in, out, c.timeout)
}

// callWaiting is call for a request the daemon may spend up to wait on.
func (c *client) callWaiting(ctx context.Context, path string, in, out any, wait time.Duration) error {
	return c.do(ctx, http.MethodPost, path, in, out, c.timeout+wait)
}

// attachWait is how long the daemon may wait for the device of req: the
// same defaults and bound as the daemon applies.
func attachWait(req wire.AttachDeviceRequest) time.Duration {
	secs := float64(wire.DefaultAttachWaitSeconds)
	if req.WaitSeconds > 0 {
		secs = min(req.WaitSeconds, wire.MaxAttachWaitSeconds)
	}
	return time.Duration(secs * float64(time.Second))
}

func (c *client) do(ctx context.Context, method, path string, in, out any, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("unpacker %s: encode request: %w", path, err)
		}
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("unpacker %s: %w", path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("unpacker %s%s: %w", c.base, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("unpacker %s%s: read answer: %w", c.base, path, err)
	}
	if resp.StatusCode/100 != 2 {
		we := &wire.Error{}
		if json.Unmarshal(b, we) != nil || we.Code == "" {
			we = &wire.Error{Code: wire.CodeInternal, Message: fmt.Sprintf("HTTP %s: %q", resp.Status, truncate(b, 200))}
		}
		return fmt.Errorf("unpacker %s%s: %w", c.base, path, we)
	}
	if out == nil {
		return nil
	}
	if s, ok := out.(*string); ok {
		*s = string(b)
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("unpacker %s%s: decode answer: %w", c.base, path, err)
	}
	return nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(bytes.ToValidUTF8(b[:n], nil)) + "…"
	}
	return string(b)
}

func (c *client) health(ctx context.Context) (wire.Health, error) {
	var out wire.Health
	return out, c.do(ctx, http.MethodGet, wire.PathHealth, nil, &out, c.timeout)
}

func (c *client) status(ctx context.Context) (wire.Status, error) {
	var out wire.Status
	return out, c.do(ctx, http.MethodGet, wire.PathStatus, nil, &out, c.timeout)
}

func (c *client) metrics(ctx context.Context) (string, error) {
	var out string
	return out, c.do(ctx, http.MethodGet, wire.PathMetrics, nil, &out, c.timeout)
}

func (c *client) unpackStatus(ctx context.Context, req wire.UnpackStatusRequest) (wire.UnpackStatus, error) {
	var out wire.UnpackStatus
	// A long poll may take WaitSeconds (as far as the daemon allows) on top
	// of the usual time.
	wait := time.Duration(min(req.WaitSeconds, wire.MaxStatusWaitSeconds) * float64(time.Second))
	return out, c.callWaiting(ctx, wire.PathUnpackStatus, req, &out, max(wait, 0))
}

func peerFingerprint(ctx context.Context, address string, cert tls.Certificate) (string, error) {
	base, err := baseURL(address)
	if err != nil {
		return "", err
	}
	host := strings.TrimPrefix(base, "https://")
	d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}}}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return "", fmt.Errorf("connect to unpacker %s: %w", host, err)
	}
	defer conn.Close()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return "", fmt.Errorf("unpacker %s presented no certificate", host)
	}
	return wire.Fingerprint(certs[0].Raw), nil
}
