package policy

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"30m", 30 * time.Minute},
		{"4h", 4 * time.Hour},
		{"7d", 7 * 24 * time.Hour},
		{"2w", 14 * 24 * time.Hour},
		{"1d12h", 36 * time.Hour},
		{"1w2d3h4m", (9*24+3)*time.Hour + 4*time.Minute},
		{" 90m ", 90 * time.Minute},
		{"4H", 4 * time.Hour},
		{"0h30m", 30 * time.Minute},
	}
	for _, tc := range tests {
		got, err := ParseDuration(tc.in)
		if err != nil {
			t.Errorf("ParseDuration(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseDurationErrors(t *testing.T) {
	tests := []struct{ in, wantInError string }{
		{"", "empty duration"},
		{"4", "invalid duration"},
		{"h", "invalid duration"},
		{"4s", "unit \"s\""},
		{"4y", "unit \"y\""},
		{"1h1d", "out of order"},
		{"1h2h", "out of order"},
		{"0m", "longer than zero"},
		{"-4h", "invalid duration"},
		{"4.5h", "invalid duration"},
		{"99999w", "too large"},
		{"immediate", "invalid duration"},
		{"4 h", "invalid duration"},
	}
	for _, tc := range tests {
		_, err := ParseDuration(tc.in)
		if err == nil {
			t.Errorf("ParseDuration(%q) succeeded, want error containing %q", tc.in, tc.wantInError)
			continue
		}
		if !strings.Contains(err.Error(), tc.wantInError) {
			t.Errorf("ParseDuration(%q) error %q, want it to contain %q", tc.in, err, tc.wantInError)
		}
		// Every error must teach the accepted forms.
		if tc.in != "99999w" && !strings.Contains(err.Error(), "30m, 4h, 7d or 2w") {
			t.Errorf("ParseDuration(%q) error %q does not list the accepted forms", tc.in, err)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{30 * time.Minute, "30m"},
		{4 * time.Hour, "4h"},
		{7 * 24 * time.Hour, "7d"},
		{14 * 24 * time.Hour, "14d"},
		{24 * time.Hour, "24h"},
		{36 * time.Hour, "36h"},
		{49*time.Hour + 30*time.Minute, "2d1h30m"},
		{60 * time.Minute, "1h"},
		{90 * time.Minute, "1h30m"},
		{90*time.Minute + 59*time.Second, "1h30m"},
		{0, "0m"},
		{-time.Hour, "0m"},
		{30 * time.Second, "0m"},
	}
	for _, tc := range tests {
		if got := FormatDuration(tc.in); got != tc.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDurationRoundTrip(t *testing.T) {
	for _, in := range []string{"30m", "4h", "7d", "2w", "1d12h", "3w6d23h59m"} {
		d, err := ParseDuration(in)
		if err != nil {
			t.Fatalf("ParseDuration(%q): %v", in, err)
		}
		back, err := ParseDuration(FormatDuration(d))
		if err != nil || back != d {
			t.Errorf("round trip of %q via %q gave %v, %v; want %v", in, FormatDuration(d), back, err, d)
		}
	}
}

func TestParseWindow(t *testing.T) {
	tests := []struct {
		in        string
		immediate bool
		manual    bool
		within    time.Duration
		str       string
	}{
		{in: "immediate", immediate: true, str: "immediate"},
		{in: " Immediate ", immediate: true, str: "immediate"},
		{in: "manual", manual: true, str: "manual"},
		{in: "MANUAL", manual: true, str: "manual"},
		{in: "4h", within: 4 * time.Hour, str: "4h"},
		{in: "2w", within: 14 * 24 * time.Hour, str: "14d"},
	}
	for _, tc := range tests {
		w, err := ParseDelay(tc.in)
		if err != nil {
			t.Errorf("ParseDelay(%q): %v", tc.in, err)
			continue
		}
		d, isWithin := w.Duration()
		if w.IsImmediate() != tc.immediate || w.IsManual() != tc.manual || d != tc.within ||
			isWithin != (tc.within > 0) || !w.IsSet() {
			t.Errorf("ParseDelay(%q) = %+v, want immediate=%v manual=%v within=%v", tc.in, w, tc.immediate, tc.manual, tc.within)
		}
		if w.String() != tc.str {
			t.Errorf("ParseDelay(%q).String() = %q, want %q", tc.in, w.String(), tc.str)
		}
	}
	for _, bad := range []string{"", "soon", "never", "0h", "4 hours", "-1h"} {
		_, err := ParseDelay(bad)
		if err == nil {
			t.Errorf("ParseDelay(%q) succeeded, want an error", bad)
			continue
		}
		for _, form := range []string{"`immediate`", "`manual`", "30m, 4h, 7d or 2w"} {
			if !strings.Contains(err.Error(), form) {
				t.Errorf("ParseDelay(%q) error %q does not mention %s", bad, err, form)
			}
		}
	}
	if Within(0) != Immediate() || Within(-time.Hour) != Immediate() {
		t.Errorf("Within(≤0) must be Immediate")
	}
	if (Delay{}).IsSet() || (Delay{}).String() != "" {
		t.Errorf("zero Delay must be unset and render empty")
	}
}
