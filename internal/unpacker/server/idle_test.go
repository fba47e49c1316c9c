package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/daemon"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/devices"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/server"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// TestMonitoringIsNotActivity: scraping metrics and probing health do not
// keep an idle daemon up; API calls do. The handler runs in a synctest
// bubble (requests are served in-process), so a minute passes in no time
// and the power-off instant moves by exactly that minute, or not at all.
func TestMonitoringIsNotActivity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
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
		h := server.NewHandler(d, log)
		get := func(path string) {
			t.Helper()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			if rec.Code != http.StatusOK {
				t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
			}
		}
		before := d.Status().IdlePoweroffAt
		time.Sleep(time.Minute) // fake time (synctest)
		for _, path := range []string{wire.PathMetrics, wire.PathHealth} {
			get(path)
			if got := d.Status().IdlePoweroffAt; !got.Equal(before) {
				t.Errorf("GET %s moved the idle power-off from %v to %v", path, before, got)
			}
		}
		get(wire.PathStatus)
		if got := d.Status().IdlePoweroffAt; !got.Equal(before.Add(time.Minute)) {
			t.Errorf("GET %s: power-off at %v, want a minute later than %v (the request counts as activity)", wire.PathStatus, got, before)
		}
	})
}
