package baseimage

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/securitylevel"
)

func TestSortIsDeterministic(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	want := []Image{
		{ID: "ami-3", Name: "b", CreationDate: t0.Add(time.Hour)},
		{ID: "ami-9", Name: "b", CreationDate: t0},
		{ID: "ami-1", Name: "b", CreationDate: t0},
		{ID: "ami-5", Name: "a", CreationDate: t0},
		{ID: "ami-0", Name: "z"}, // no creation date sorts last
	}
	for i := 0; i < 20; i++ {
		got := append([]Image(nil), want...)
		rand.Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
		Sort(got)
		for k := range want {
			if got[k].ID != want[k].ID {
				t.Fatalf("order %v, want %v", ids(got), ids(want))
			}
		}
	}
}

func ids(images []Image) []string {
	var out []string
	for _, img := range images {
		out = append(out, img.ID)
	}
	return out
}

func TestSelectorValidate(t *testing.T) {
	for _, tc := range []struct {
		sel  Selector
		want string
	}{
		{Selector{SSMParameter: "/p", Owners: []string{"amazon"}}, "ssm_parameter and owners cannot be combined"},
		{Selector{Name: "al2023-*"}, "need owners"},
		{Selector{Filters: []Filter{{Name: "name", Values: []string{"x"}}}}, "need owners"},
		{Selector{}, "give either ssm_parameter"},
		{Selector{Owners: []string{"amazon"}}, "needs a name pattern or at least one filter"},
		{Selector{Owners: []string{"amazon"}, Filters: []Filter{{Name: "tag:x"}}}, "filter 0 needs a name and at least one value"},
	} {
		if err := tc.sel.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.sel, err, tc.want)
		}
	}
	if err := (Selector{Owners: []string{"amazon"}, Name: "x"}).Validate(); err != nil {
		t.Error(err)
	}
}

func writeFeed(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "feed.json")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFeedErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ body, want string }{
		{`not json`, "is not a valid feed document"},
		{`{"advisories": [{"image_id": "ami-1", "security_level": "severe"}]}`, `advisories[0] (image_id "ami-1"): security_level: unknown security level "severe": want critical, high (or important)`},
		{`{"advisories": [{"image_name": "x*", "update_type": "bugfix"}]}`, `advisories[0] (image_name "x*"): unknown update_type "bugfix"`},
		{`{"advisories": [{"security_level": "low"}]}`, "names neither image_id nor image_name"},
		{`{"advisories": [{"image_id": "a", "image_name": "b"}]}`, "names both"},
		{`{"advisories": [{"image_id": "a", "levle": "low"}]}`, `unknown field "levle"`},
		{`{}`, `no "advisories" list`},
	} {
		_, err := LoadAdvisories(ctx, writeFeed(t, tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.body, err, tc.want)
		}
	}
	if _, err := LoadAdvisories(ctx, "/no/such/feed.json"); err == nil || !strings.Contains(err.Error(), "/no/such/feed.json") {
		t.Errorf("missing file: %v", err)
	}
}

// TestFeedVendorWords: a feed may use the vendors' words; they are stored
// as the canonical levels they mean.
func TestFeedVendorWords(t *testing.T) {
	feed, err := LoadAdvisories(context.Background(), writeFeed(t, `{"advisories": [
  {"image_id": "ami-1", "security_level": "important"},
  {"image_id": "ami-2", "security_level": "Moderate"},
  {"image_id": "ami-3", "security_level": "negligible"},
  {"image_id": "ami-4"}
]}`))
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]securitylevel.Level{"ami-1": securitylevel.High, "ami-2": securitylevel.Medium,
		"ami-3": securitylevel.Low, "ami-4": securitylevel.Unknown} {
		if adv := feed.Lookup(Image{ID: id}); adv == nil || adv.SecurityLevel != want {
			t.Errorf("%s: advisory %+v, want level %s", id, adv, want)
		}
	}
}

func TestFeedOverHTTP(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls == 1 { // a transient failure is retried
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.Write([]byte(`{"advisories": [{"image_name": "al2023-*/x", "security_level": "high", "cves": ["CVE-1"]}]}`))
	}))
	defer srv.Close()
	feed, err := LoadAdvisories(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	adv := feed.Lookup(Image{ID: "ami-1", Name: "al2023-2026/x"})
	if adv == nil || adv.SecurityLevel != "high" || adv.UpdateType != UpdateSecurity || adv.CVEs[0] != "CVE-1" {
		t.Fatalf("lookup = %+v", adv)
	}
	srv.Close()
	if _, err := LoadAdvisories(context.Background(), srv.URL); err == nil || !strings.Contains(err.Error(), "fetch advisory feed "+srv.URL) {
		t.Fatalf("unreachable feed: %v", err)
	}
}

func TestClassify(t *testing.T) {
	feed := &Feed{Advisories: []Advisory{
		{ImageName: "img-*", SecurityLevel: "low", UpdateType: "feature"},
		{ImageID: "ami-2", SecurityLevel: "critical", UpdateType: "security", ChangelogURL: "https://x"},
	}}
	for _, tc := range []struct {
		img           Image
		level         securitylevel.Level
		update, where string
	}{
		{Image{ID: "ami-2", Name: "img-2"}, "critical", "security", "advisories"}, // ID beats an earlier pattern
		{Image{ID: "ami-3", Name: "img-3"}, "low", "feature", "advisories"},
		{Image{ID: "ami-4", Name: "other"}, "unknown", "unknown", "default"},
		{Image{ID: "ami-2", Name: "img-2", Tags: map[string]string{"lvl": "Medium"}}, "medium", "security", "tag"}, // the tag wins
		{Image{ID: "ami-5", Name: "other", Tags: map[string]string{"lvl": "high"}}, "high", "security", "tag"},
		// Vendor words on tags mean the canonical level.
		{Image{ID: "ami-6", Name: "other", Tags: map[string]string{"lvl": "important"}}, "high", "security", "tag"},
		{Image{ID: "ami-7", Name: "other", Tags: map[string]string{"lvl": "Moderate"}}, "medium", "security", "tag"},
		{Image{ID: "ami-8", Name: "img-8", Tags: map[string]string{"lvl": "negligible"}}, "low", "feature", "tag"},
		// A blank tag says nothing: the feed's level stands.
		{Image{ID: "ami-2", Name: "img-2", Tags: map[string]string{"lvl": " "}}, "critical", "security", "advisories"},
	} {
		res := &Result{Image: tc.img}
		if err := classify(res, feed, "lvl"); err != nil {
			t.Fatal(err)
		}
		if res.SecurityLevel != tc.level || res.UpdateType != tc.update || res.LevelSource != tc.where {
			t.Errorf("%s: got %s/%s/%s, want %s/%s/%s", tc.img.ID, res.SecurityLevel, res.UpdateType, res.LevelSource, tc.level, tc.update, tc.where)
		}
	}
	err := classify(&Result{Image: Image{ID: "ami-9", Tags: map[string]string{"lvl": "urgent"}}}, nil, "lvl")
	if err == nil || !strings.Contains(err.Error(), `tag lvl = "urgent"`) {
		t.Fatalf("bad tag: %v", err)
	}
}
