package client

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/inprocess"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/testpki"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// TestAttachWaitsAsLongAsTheDaemon: a request the daemon may spend its
// wait on (attach-device) is not cut off by the client's per-request
// timeout, while any other request is. The daemon is a handler served
// in-process in a synctest bubble, so its delay is fake time and each call
// ends at an exact instant.
func TestAttachWaitsAsLongAsTheDaemon(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const deviceLate = 1600 * time.Millisecond // within the attach wait, past the timeout
		daemon := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(deviceLate) // fake time: the device appears late, the status is slow
			if r.URL.Path == wire.PathStatus {
				json.NewEncoder(w).Encode(wire.Status{Version: "test"})
				return
			}
			var req wire.AttachDeviceRequest
			json.NewDecoder(r.Body).Decode(&req)
			json.NewEncoder(w).Encode(wire.Device{VolumeID: req.VolumeID, Path: "/dev/loop7"})
		})
		c, err := New(Config{
			Address:     "unpacker.test",
			Fingerprint: "sha256:" + strings.Repeat("ab", 32),
			Certificate: testpki.NewCA(t, "client CA").ClientCertificate(t, "provider"),
			Timeout:     500 * time.Millisecond,
			RetryMax:    1,
		})
		if err != nil {
			t.Fatal(err)
		}
		c.impl.http.HTTPClient = inprocess.Client(daemon)

		start := time.Now()
		dev, err := c.AttachDevice(context.Background(), wire.AttachDeviceRequest{VolumeID: "vol-1", WaitSeconds: 2})
		if err != nil || dev.Path != "/dev/loop7" {
			t.Fatalf("attach with a 2 s device wait and a 0.5 s request timeout: %+v, %v", dev, err)
		}
		if el := time.Since(start); el != deviceLate {
			t.Errorf("attach took %s, want the daemon's %s", el, deviceLate)
		}
		start = time.Now()
		if _, err := c.Status(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("status from a daemon slower than the timeout: %v, want a deadline", err)
		}
		if el := time.Since(start); el != 500*time.Millisecond {
			t.Errorf("status gave up after %s, want the 0.5 s timeout (retries included)", el)
		}
		time.Sleep(deviceLate) // fake time: the slow status handler ends too, inside the bubble
	})
	if got := attachWait(wire.AttachDeviceRequest{}); got != wire.DefaultAttachWaitSeconds*time.Second {
		t.Errorf("default attach wait %s", got)
	}
	if got := attachWait(wire.AttachDeviceRequest{WaitSeconds: 1e6}); got != wire.MaxAttachWaitSeconds*time.Second {
		t.Errorf("attach wait is not capped as the daemon caps it: %s", got)
	}
}

// TestPinCheckedOnResumedSessions: the pin is checked on every connection,
// also when TLS resumes an earlier session (where VerifyPeerCertificate is
// not called): a client whose pin does not match is refused even with a
// session ticket from a good connection in its cache.
func TestPinCheckedOnResumedSessions(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS13}
	srv.StartTLS()
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "https://")
	clientCert := testpki.NewCA(t, "client CA").ClientCertificate(t, "provider")
	cache := tls.NewLRUClientSessionCache(4)
	dial := func(pin string) (*tls.ConnectionState, error) {
		cfg := pinnedTLSConfig(pin, clientCert)
		cfg.ClientSessionCache = cache
		cfg.ServerName = "unpacker"
		conn, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		// TLS 1.3 tickets arrive after the handshake: read to take them.
		conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		conn.Read(make([]byte, 1))
		cs := conn.ConnectionState()
		return &cs, nil
	}
	good := wire.Fingerprint(srv.Certificate().Raw)
	if _, err := dial(good); err != nil {
		t.Fatalf("first connection with the right pin: %v", err)
	}
	if cs, err := dial(good); err != nil || !cs.DidResume {
		t.Fatalf("second connection: resumed %v, %v; the test needs a resumed session", cs != nil && cs.DidResume, err)
	}
	wrong := "sha256:" + strings.Repeat("0", 64)
	_, err := dial(wrong)
	var pe *PinError
	if !errors.As(err, &pe) || pe.Got != good {
		t.Fatalf("resumed connection with a wrong pin: %v, want a PinError naming %s", err, good)
	}
}
