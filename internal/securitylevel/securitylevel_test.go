package securitylevel

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]Level{
		"critical":    Critical,
		"CRITICAL":    Critical,
		" high ":      High,
		"important":   High,
		"Important":   High,
		"medium":      Medium,
		"moderate":    Medium,
		"MODERATE":    Medium,
		"low":         Low,
		"negligible":  Low,
		"Negligible ": Low,
		"unknown":     Unknown,
		"":            Unknown,
		"   ":         Unknown,
	} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"severe", "urgent", "hi", "critical!", "medium-high"} {
		_, err := Parse(bad)
		if err == nil || !strings.Contains(err.Error(), `"`+bad+`"`) || !strings.Contains(err.Error(), Accepted) {
			t.Errorf("Parse(%q) error = %v; want one naming the word and listing %s", bad, err, Accepted)
		}
	}
}

func TestAllAreCanonical(t *testing.T) {
	all := All()
	if len(all) != 5 || all[0] != Critical || all[4] != Unknown {
		t.Fatalf("All() = %v", all)
	}
	for _, l := range all {
		if got, err := Parse(l.String()); err != nil || got != l {
			t.Errorf("Parse(%q) = %q, %v", l, got, err)
		}
	}
}
