package policy

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/securitylevel"
)

func customPolicy(t *testing.T) Policy {
	return Policy{
		Name: "prod",
		RebuildDelays: RebuildDelays{
			Critical: Immediate(),
			High:     Within(6 * time.Hour),
			Medium:   Within(2 * week),
			Low:      Within(30 * day),
			Unknown:  Manual(),
		},
		MaxAge:      14 * day,
		BuildWindow: mustWindow(t, "22:00", "04:30", "Europe/Berlin"),
		Retention:   Retention{KeepRevisions: 5, DeregisterAfter: Immediate(), DeleteSnapshots: true},
		Budget:      &Budget{MonthlyUSD: 100, UrgentUSD: 50},
		Prices:      map[string]RegionPrices{"eu-central-1": {SnapshotGiBMonthUSD: 0.04, VolumeGiBMonthUSD: 0.09, UnpackerHourUSD: 0.02}},
	}
}

func TestDocumentRoundTrip(t *testing.T) {
	for name, p := range map[string]Policy{"default": {Name: "d"}, "custom": customPolicy(t)} {
		t.Run(name, func(t *testing.T) {
			data, err := p.Document()
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseDocument(data)
			if err != nil {
				t.Fatalf("ParseDocument(%s): %v", data, err)
			}
			if !back.Equal(p) || !p.Equal(back) {
				t.Errorf("round trip changed the policy:\n%s\nvs\n%+v", data, back)
			}
			if back.Summary() != p.Summary() {
				t.Errorf("summary changed: %q vs %q", back.Summary(), p.Summary())
			}
		})
	}
}

func TestDocumentContent(t *testing.T) {
	data, err := customPolicy(t).Document()
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := json.Unmarshal(data, &generic); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"version": float64(2),
		"name":    "prod",
		"max_age": "14d",
		"rebuild_delays": map[string]any{
			"critical": "immediate", "high": "6h", "medium": "14d", "low": "30d", "unknown": "manual",
		},
		"build_window": map[string]any{"start": "22:00", "end": "04:30", "timezone": "Europe/Berlin"},
		"retention":    map[string]any{"keep_revisions": float64(5), "deregister_after": "immediate", "delete_snapshots": true},
		"budget":       map[string]any{"monthly_usd": float64(100), "urgent_usd": float64(50)},
	}
	for key, v := range want {
		got, _ := json.Marshal(generic[key])
		exp, _ := json.Marshal(v)
		if string(got) != string(exp) {
			t.Errorf("%s = %s, want %s", key, got, exp)
		}
	}
	if s, _ := generic["summary"].(string); !strings.Contains(s, "critical immediately") {
		t.Errorf("summary = %q", s)
	}
	// Defaults are written out so the stored rules need no code to read.
	data, _ = Policy{Name: "d"}.Document()
	for _, part := range []string{`"critical": "4h"`, `"high": "24h"`, `"medium": "7d"`, `"low": "manual"`,
		`"unknown": "24h"`, `"max_age": "30d"`, `"keep_revisions": 3`, `"deregister_after": "30d"`} {
		if !strings.Contains(string(data), part) {
			t.Errorf("default document lacks %s:\n%s", part, data)
		}
	}
	if strings.Contains(string(data), `"build_window":`) || strings.Contains(string(data), `"budget":`) {
		t.Errorf("default document has optional sections:\n%s", data)
	}
}

// TestParseDocumentVersion1: a policy stored before the rebuild delays were
// renamed (version 1, "security_windows") reads as the same rules.
func TestParseDocumentVersion1(t *testing.T) {
	v1 := `{"version": 1, "name": "prod", "security_windows": {"critical": "immediate", "high": "6h", "medium": "14d", "low": "30d", "unknown": "manual"},
  "max_age": "14d", "retention": {"keep_revisions": 5, "deregister_after": "immediate", "delete_snapshots": true}}`
	p, err := ParseDocument([]byte(v1))
	if err != nil {
		t.Fatal(err)
	}
	want := Policy{Name: "prod", MaxAge: 14 * day,
		RebuildDelays: RebuildDelays{Critical: Immediate(), High: Within(6 * time.Hour), Medium: Within(14 * day), Low: Within(30 * day), Unknown: Manual()},
		Retention:     Retention{KeepRevisions: 5, DeregisterAfter: Immediate(), DeleteSnapshots: true}}
	if !p.Equal(want) {
		t.Fatalf("version 1 reads as %s, want %s", p.Summary(), want.Summary())
	}
	doc, err := p.Document()
	if err != nil || !strings.Contains(string(doc), `"version": 2`) || !strings.Contains(string(doc), `"rebuild_delays": {`) {
		t.Fatalf("rewritten as %s, %v; want version 2 with rebuild_delays", doc, err)
	}
}

func TestParseDocumentErrors(t *testing.T) {
	tests := []struct{ doc, want string }{
		{`{"version":2,"name":"x","rebuild_delays":{"high":"soon"}}`, "rebuild_delays.high: invalid delay \"soon\""},
		{`{"version":1,"name":"x","security_windows":{"high":"soon"}}`, "security_windows.high: invalid delay \"soon\""},
		{`{"version":2,"name":"x","security_windows":{"high":"4h"}}`, "security_windows is version 1's name; version 2 calls them rebuild_delays"},
		{`{"version":1,"name":"x","rebuild_delays":{"high":"4h"}}`, "rebuild_delays needs version 2"},
		{`{"version":2,"name":"x","max_age":"manual"}`, "max_age: invalid duration"},
		{`{"version":2,"name":"x","retention":{"deregister_after":"1y"}}`, "retention.deregister_after"},
		{`{"version":2,"name":"x","build_window":{"start":"02:00","end":"02:00","timezone":"UTC"}}`, "build_window: build window start and end are both 02:00"},
		{`{"version":2,"name":"x","build_window":{"start":"02:00","end":"03:00","timezone":"Nowhere/City"}}`, "build_window: build window timezone"},
		{`{"version":2,"name":"x","retention":{"keep_revisions":-2}}`, "retention.keep_revisions: -2"},
		{`{"version":2,"name":"x","budget":{"monthly_usd":-5}}`, "budget.monthly_usd"},
		{`{"version":2,"name":"x","prices":{"us-east-1":{"snapshot_gib_month_usd":-1}}}`, `prices["us-east-1"].snapshot_gib_month_usd`},
		{`{"version":3,"name":"x"}`, "version 3, want 2 (or 1)"},
		{`{"version":2,"name":"x","colour":"blue"}`, "unknown field \"colour\""},
		{`{"version":2,"name":"x"} {}`, "trailing data"},
		{`not json`, "policy document"},
	}
	for _, tc := range tests {
		_, err := ParseDocument([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseDocument(%s) error = %v, want %q", tc.doc, err, tc.want)
		}
	}
}

func TestEqual(t *testing.T) {
	a := Policy{Name: "p", RebuildDelays: RebuildDelays{Medium: Within(7 * day)}}
	b := Policy{Name: "p"} // medium defaults to 7d
	if !a.Equal(b) {
		t.Errorf("a policy spelling out a default must equal one leaving it unset")
	}
	c := Policy{Name: "p", RebuildDelays: RebuildDelays{Medium: Within(6 * day)}}
	if a.Equal(c) {
		t.Errorf("different medium delays compare equal")
	}
	if a.Equal(Policy{Name: "q"}) {
		t.Errorf("different names compare equal")
	}
	w1 := mustWindow(t, "02:00", "06:00", "UTC")
	w2 := mustWindow(t, "02:00", "06:00", "Etc/UTC")
	if (Policy{BuildWindow: w1}).Equal(Policy{BuildWindow: w2}) {
		t.Errorf("different zone names compare equal")
	}
}

func TestWithDefaultsCopies(t *testing.T) {
	p := customPolicy(t)
	q := p.WithDefaults()
	q.Budget.MonthlyUSD = 1
	q.Prices["eu-central-1"] = RegionPrices{}
	q.BuildWindow.start = 0
	if p.Budget.MonthlyUSD != 100 || p.Prices["eu-central-1"].SnapshotGiBMonthUSD != 0.04 || p.BuildWindow.start != 22*60 {
		t.Errorf("WithDefaults shares memory with its receiver")
	}
	if got := (Policy{}).RebuildDelayFor(securitylevel.Unknown); got != Within(24*time.Hour) {
		t.Errorf("default unknown rebuild delay = %v, want 24h", got)
	}
	if got := (Policy{}).RebuildDelayFor("bogus"); got != Within(24*time.Hour) {
		t.Errorf("unrecognised level's rebuild delay = %v, want unknown's 24h", got)
	}
	if got := (Policy{}).RebuildDelayFor(securitylevel.Low); !got.IsManual() {
		t.Errorf("default low window = %v, want manual", got)
	}
	if err := Default().Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
}
