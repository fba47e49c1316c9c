package policy

import (
	"strings"
	"testing"
	"time"
)

func TestParseBuildWindowErrors(t *testing.T) {
	tests := []struct{ start, end, zone, wantInError string }{
		{"02:00", "02:00", "UTC", "start ≠ end"},
		{"2:00", "02:00", "UTC", "start ≠ end"},
		{"24:00", "06:00", "UTC", "start: invalid time of day \"24:00\""},
		{"02:60", "06:00", "UTC", "start: invalid time of day"},
		{"02:00", "6", "UTC", "end: invalid time of day"},
		{"02:00", "6pm", "UTC", "end: invalid time of day"},
		{"-1:00", "06:00", "UTC", "start: invalid time of day"},
		{"02:00", "06:00", "", "timezone: empty time zone"},
		{"02:00", "06:00", "Mars/Olympus", "timezone: unknown time zone \"Mars/Olympus\""},
		{"02:00", "06:00", "Local", "depends on the machine"},
		{"02:00", "06:00", "CEST", "unknown time zone"},
	}
	for _, tc := range tests {
		_, err := ParseBuildWindow(tc.start, tc.end, tc.zone)
		if err == nil || !strings.Contains(err.Error(), tc.wantInError) {
			t.Errorf("ParseBuildWindow(%q, %q, %q) error = %v, want it to contain %q",
				tc.start, tc.end, tc.zone, err, tc.wantInError)
		}
	}
}

func TestBuildWindowAccessors(t *testing.T) {
	w := mustWindow(t, "2:05", "6:00", "Europe/Berlin")
	if w.Start() != "02:05" || w.End() != "06:00" || w.Zone() != "Europe/Berlin" ||
		w.String() != "02:05-06:00 Europe/Berlin" {
		t.Errorf("accessors: %q %q %q %q", w.Start(), w.End(), w.Zone(), w.String())
	}
	var zero BuildWindow
	if !zero.Contains(time.Date(2025, 6, 1, 13, 0, 0, 0, time.UTC)) {
		t.Errorf("the zero BuildWindow must be open all day")
	}
}

// TestBuildWindowNext checks Contains and Next together: for each instant,
// the opening containing it (inside) or the next one.
func TestBuildWindowNext(t *testing.T) {
	tests := []struct {
		name               string
		start, end, zone   string
		now                string // UTC
		inside             bool
		wantStart, wantEnd string // UTC
	}{
		// Plain UTC window.
		{"before", "02:00", "06:00", "UTC", "2025-01-10 01:59", false, "2025-01-10 02:00", "2025-01-10 06:00"},
		{"exactly at start is inside", "02:00", "06:00", "UTC", "2025-01-10 02:00", true, "2025-01-10 02:00", "2025-01-10 06:00"},
		{"inside", "02:00", "06:00", "UTC", "2025-01-10 05:59", true, "2025-01-10 02:00", "2025-01-10 06:00"},
		{"exactly at end is outside", "02:00", "06:00", "UTC", "2025-01-10 06:00", false, "2025-01-11 02:00", "2025-01-11 06:00"},
		{"late evening", "02:00", "06:00", "UTC", "2025-01-10 23:59", false, "2025-01-11 02:00", "2025-01-11 06:00"},
		{"year end", "02:00", "06:00", "UTC", "2025-12-31 12:00", false, "2026-01-01 02:00", "2026-01-01 06:00"},

		// Crossing midnight.
		{"crossing: before start", "22:00", "04:00", "UTC", "2025-01-10 21:59", false, "2025-01-10 22:00", "2025-01-11 04:00"},
		{"crossing: evening part", "22:00", "04:00", "UTC", "2025-01-10 23:30", true, "2025-01-10 22:00", "2025-01-11 04:00"},
		{"crossing: exactly midnight", "22:00", "04:00", "UTC", "2025-01-11 00:00", true, "2025-01-10 22:00", "2025-01-11 04:00"},
		{"crossing: morning part opened yesterday", "22:00", "04:00", "UTC", "2025-01-11 03:59", true, "2025-01-10 22:00", "2025-01-11 04:00"},
		{"crossing: exactly at end", "22:00", "04:00", "UTC", "2025-01-11 04:00", false, "2025-01-11 22:00", "2025-01-12 04:00"},
		{"ends at midnight", "22:00", "00:00", "UTC", "2025-01-10 23:59", true, "2025-01-10 22:00", "2025-01-11 00:00"},
		{"ends at midnight: exactly midnight", "22:00", "00:00", "UTC", "2025-01-11 00:00", false, "2025-01-11 22:00", "2025-01-12 00:00"},

		// A zone east of UTC: local 02:00 CET is 01:00 UTC in winter.
		{"Berlin winter", "02:00", "06:00", "Europe/Berlin", "2025-01-10 00:59", false, "2025-01-10 01:00", "2025-01-10 05:00"},
		{"Berlin local date differs from UTC date", "00:30", "01:30", "Europe/Berlin", "2025-01-10 23:45", true, "2025-01-10 23:30", "2025-01-11 00:30"},
		// Berlin springs forward on 2025-03-30 at 01:00 UTC (02:00 CET → 03:00 CEST).
		{"Berlin spring: opening skipped hour starts at the jump", "02:00", "06:00", "Europe/Berlin", "2025-03-30 00:30", false, "2025-03-30 01:00", "2025-03-30 04:00"},
		{"Berlin spring: at the jump inside", "02:00", "06:00", "Europe/Berlin", "2025-03-30 01:00", true, "2025-03-30 01:00", "2025-03-30 04:00"},
		{"Berlin spring: end in the gap closes at the jump", "01:00", "02:30", "Europe/Berlin", "2025-03-30 00:59", true, "2025-03-30 00:00", "2025-03-30 01:00"},
		{"Berlin spring: window inside the gap is skipped that day", "02:00", "02:30", "Europe/Berlin", "2025-03-29 23:00", false, "2025-03-31 00:00", "2025-03-31 00:30"},
		{"Berlin spring: crossing midnight into the jump", "22:00", "03:00", "Europe/Berlin", "2025-03-30 00:59", true, "2025-03-29 21:00", "2025-03-30 01:00"},
		{"Berlin spring: the day after is CEST", "02:00", "06:00", "Europe/Berlin", "2025-03-30 23:00", false, "2025-03-31 00:00", "2025-03-31 04:00"},
		// Berlin falls back on 2025-10-26 at 01:00 UTC (03:00 CEST → 02:00 CET);
		// 02:00-02:59 local happens twice.
		{"Berlin autumn: window is an hour longer", "02:00", "06:00", "Europe/Berlin", "2025-10-26 04:59", true, "2025-10-26 00:00", "2025-10-26 05:00"},
		{"Berlin autumn: start in the repeat takes the first reading", "02:30", "04:00", "Europe/Berlin", "2025-10-26 00:00", false, "2025-10-26 00:30", "2025-10-26 03:00"},
		{"Berlin autumn: end in the repeat takes the second reading", "01:00", "02:30", "Europe/Berlin", "2025-10-26 01:15", true, "2025-10-25 23:00", "2025-10-26 01:30"},
		{"Berlin autumn: end in the repeat, just after", "01:00", "02:30", "Europe/Berlin", "2025-10-26 01:30", false, "2025-10-27 00:00", "2025-10-27 01:30"},
		// New York springs forward on 2025-03-09 at 07:00 UTC (02:00 EST → 03:00 EDT)
		// and falls back on 2025-11-02 at 06:00 UTC (02:00 EDT → 01:00 EST).
		{"New York spring: crossing window ending in the gap", "23:00", "02:30", "America/New_York", "2025-03-09 06:59", true, "2025-03-09 04:00", "2025-03-09 07:00"},
		{"New York spring: next day", "23:00", "02:30", "America/New_York", "2025-03-09 07:00", false, "2025-03-10 03:00", "2025-03-10 06:30"},
		{"New York autumn: doubled hour covered twice", "01:00", "01:30", "America/New_York", "2025-11-02 06:15", true, "2025-11-02 05:00", "2025-11-02 06:30"},
		{"New York autumn: window after the repeat", "03:00", "05:00", "America/New_York", "2025-11-02 07:59", false, "2025-11-02 08:00", "2025-11-02 10:00"},
		// A zone with a half-hour offset and no DST.
		{"Kolkata", "02:00", "06:00", "Asia/Kolkata", "2025-01-10 20:00", false, "2025-01-10 20:30", "2025-01-11 00:30"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := mustWindow(t, tc.start, tc.end, tc.zone)
			now := at(t, tc.now)
			if got := w.Contains(now); got != tc.inside {
				t.Errorf("Contains(%s) = %v, want %v", tc.now, got, tc.inside)
			}
			start, end := w.Next(now)
			if !start.Equal(at(t, tc.wantStart)) || !end.Equal(at(t, tc.wantEnd)) {
				t.Errorf("Next(%s) = %s .. %s, want %s .. %s", tc.now,
					start.UTC().Format("2006-01-02 15:04"), end.UTC().Format("2006-01-02 15:04"), tc.wantStart, tc.wantEnd)
			}
		})
	}
}

// TestBuildWindowEveryMinute walks a whole year minute by minute in a DST zone
// and checks Contains against the wall clock: every instant whose local reading
// is inside the window must be inside, and on ordinary days nothing else.
func TestBuildWindowEveryMinute(t *testing.T) {
	for _, tc := range []struct{ start, end, zone string }{
		{"02:00", "06:00", "Europe/Berlin"},
		{"22:30", "02:30", "America/New_York"},
	} {
		w := mustWindow(t, tc.start, tc.end, tc.zone)
		loc, _ := time.LoadLocation(tc.zone)
		startMin, _ := parseClock(tc.start)
		endMin, _ := parseClock(tc.end)
		for now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC); now.Year() == 2025; now = now.Add(time.Minute) {
			local := now.In(loc)
			m := local.Hour()*60 + local.Minute()
			readingInside := m >= startMin && m < endMin
			if endMin < startMin {
				readingInside = m >= startMin || m < endMin
			}
			got := w.Contains(now)
			if readingInside && !got {
				t.Fatalf("%s window: %s (local %s) reads inside but Contains is false",
					w, now.Format(time.RFC3339), local.Format(time.RFC3339))
			}
			_, off := local.Zone()
			_, offBefore := now.Add(-3 * time.Hour).In(loc).Zone()
			_, offAfter := now.Add(3 * time.Hour).In(loc).Zone()
			ordinary := off == offBefore && off == offAfter
			if got && !readingInside && ordinary {
				t.Fatalf("%s window: %s (local %s) reads outside but Contains is true",
					w, now.Format(time.RFC3339), local.Format(time.RFC3339))
			}
			if start, end := w.Next(now); !end.After(now) || (!got && !start.After(now)) || (got && start.After(now)) {
				t.Fatalf("%s window: Next(%s) = %s..%s is inconsistent with Contains=%v", w, now, start, end, got)
			}
		}
	}
}

func TestCheckTimeOfDayAndZone(t *testing.T) {
	for _, ok := range []string{"00:00", "2:00", "23:59"} {
		if err := CheckTimeOfDay(ok); err != nil {
			t.Errorf("CheckTimeOfDay(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"24:00", "12:5", "noon", "", "+1:00"} {
		if err := CheckTimeOfDay(bad); err == nil || !strings.Contains(err.Error(), "HH:MM") {
			t.Errorf("CheckTimeOfDay(%q) = %v, want an error naming HH:MM", bad, err)
		}
	}
	for _, ok := range []string{"UTC", "Europe/Berlin", "America/New_York"} {
		if err := CheckTimeZone(ok); err != nil {
			t.Errorf("CheckTimeZone(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Local", "Europe/Atlantis", "../etc/passwd"} {
		if err := CheckTimeZone(bad); err == nil || !strings.Contains(err.Error(), "IANA") {
			t.Errorf("CheckTimeZone(%q) = %v, want an error naming IANA zones", bad, err)
		}
	}
}
