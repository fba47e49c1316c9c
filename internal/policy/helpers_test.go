package policy

import (
	"testing"
	"time"
)

// at parses "2006-01-02 15:04" in UTC.
func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		t.Fatalf("bad test time %q: %v", s, err)
	}
	return v
}

func mustWindow(t *testing.T, start, end, zone string) *BuildWindow {
	t.Helper()
	w, err := ParseBuildWindow(start, end, zone)
	if err != nil {
		t.Fatalf("ParseBuildWindow(%q, %q, %q): %v", start, end, zone, err)
	}
	return &w
}

func sameInstant(a, b time.Time) bool {
	return a.Equal(b) && a.IsZero() == b.IsZero()
}
