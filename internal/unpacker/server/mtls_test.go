package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/client"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/testpki"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// TestMutualTLS checks that the API refuses a client without a certificate
// and one whose certificate comes from another CA in the TLS handshake,
// before any handler runs, and that the fingerprint the daemon prints is the
// one its handshake presents (and that the client pins it).
func TestMutualTLS(t *testing.T) {
	w := newWorld(t)
	p := w.start("")
	ctx := context.Background()

	// The printed fingerprint is the handshake's.
	got, err := client.PeerFingerprint(ctx, p.addr, w.clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	if got != p.fingerprint {
		t.Fatalf("handshake presents %s, daemon printed %s", got, p.fingerprint)
	}

	requestsBefore := handledRequests(t, p.client(w))

	other := testpki.NewCA(t, "some other CA")
	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
	}{
		{"no client certificate", nil},
		{"certificate from another CA", []tls.Certificate{other.ClientCertificate(t, "intruder")}},
		{"server certificate of the right CA", []tls.Certificate{w.ca.ServerCertificate(t, "not a client")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
				InsecureSkipVerify: true, Certificates: tc.certs}}}
			resp, err := hc.Get("https://" + p.addr + wire.PathStatus)
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				t.Fatalf("request without an acceptable client certificate got HTTP %s: %s", resp.Status, body)
			}
			if !regexp.MustCompile(`tls: |remote error|certificate`).MatchString(err.Error()) {
				t.Errorf("error %q does not come from the TLS handshake", err)
			}
		})
	}
	// The daemon logged the handshake failures, and no handler ran for them:
	// the only handled requests are this test's two metrics reads.
	if after := handledRequests(t, p.client(w)); after != requestsBefore+1 {
		t.Errorf("handled requests went from %d to %d, want +1 (the metrics read itself)", requestsBefore, after)
	}
	if n := strings.Count(p.stderr.String(), "TLS handshake error"); n < 3 {
		t.Errorf("daemon logged %d TLS handshake errors, want 3:\n%s", n, p.stderr.String())
	}

	// A client pinning another fingerprint refuses the server, without retrying.
	bad, err := client.New(client.Config{Address: p.addr, Fingerprint: wire.Fingerprint([]byte("another server")), Certificate: w.clientTLS, RetryMax: 5})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = bad.Health(ctx)
	var pe *client.PinError
	if !errors.As(err, &pe) || pe.Got != p.fingerprint {
		t.Fatalf("health with a wrong pin: %v, want a PinError naming %s", err, p.fingerprint)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("a pinning failure took %s: it must not be retried", time.Since(start))
	}
	if h, err := p.client(w).Health(ctx); err != nil || h.Status != "ok" || !h.LocalDevices {
		t.Fatalf("health with the right pin: %+v, %v", h, err)
	}
}

var handledRE = regexp.MustCompile(`(?m)^autoami_unpacker_http_requests_total\{[^}]*\} (\d+)$`)

// handledRequests sums the requests that reached a handler before this one.
func handledRequests(t *testing.T, c *client.Client) int {
	t.Helper()
	text, err := c.Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range handledRE.FindAllStringSubmatch(text, -1) {
		v, _ := strconv.Atoi(m[1])
		n += v
	}
	return n
}
