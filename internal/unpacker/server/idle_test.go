package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/daemon"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/devices"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/server"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// TestMonitoringIsNotActivity: scraping metrics and probing health do not
// keep an idle daemon up; API calls do.
func TestMonitoringIsNotActivity(t *testing.T) {
	finder, err := devices.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	d, err := daemon.New(context.Background(), daemon.Config{
		StateDir: t.TempDir(), Devices: finder, IdlePoweroff: time.Hour, Logger: log,
		Poweroff: func(context.Context) error { t.Error("powered off"); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	srv := httptest.NewServer(server.NewHandler(d, log))
	defer srv.Close()
	get := func(path string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
	}
	before := d.Status().IdlePoweroffAt
	time.Sleep(20 * time.Millisecond)
	for _, path := range []string{wire.PathMetrics, wire.PathHealth} {
		get(path)
		if got := d.Status().IdlePoweroffAt; !got.Equal(before) {
			t.Errorf("GET %s moved the idle power-off from %v to %v", path, before, got)
		}
	}
	get(wire.PathStatus)
	if got := d.Status().IdlePoweroffAt; !got.After(before) {
		t.Errorf("GET %s did not count as activity: power-off still at %v", wire.PathStatus, got)
	}
}
