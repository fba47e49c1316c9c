package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// How far occurrence searches look, in local days. Real zones never skip or
// repeat more than a day, so a week either way always finds an occurrence.
const occurrenceSearchDays = 7

const acceptedClockForms = "a time of day HH:MM between 00:00 and 23:59, such as 02:00"

func parseBuildWindow(start, end, zone string) (BuildWindow, error) {
	startMin, err := parseClock(start)
	if err != nil {
		return BuildWindow{}, fmt.Errorf("build window start: %w", err)
	}
	endMin, err := parseClock(end)
	if err != nil {
		return BuildWindow{}, fmt.Errorf("build window end: %w", err)
	}
	if startMin == endMin {
		return BuildWindow{}, fmt.Errorf("build window start and end are both %s: a window needs start ≠ end (an end earlier than the start crosses midnight; leave the build window out to build at any time)",
			formatClock(startMin))
	}
	loc, err := loadZone(zone)
	if err != nil {
		return BuildWindow{}, fmt.Errorf("build window timezone: %w", err)
	}
	return BuildWindow{start: startMin, end: endMin, zone: loc}, nil
}

func parseClock(s string) (int, error) {
	text := strings.TrimSpace(s)
	hh, mm, ok := strings.Cut(text, ":")
	if !ok || len(hh) < 1 || len(hh) > 2 || len(mm) != 2 {
		return 0, fmt.Errorf("invalid time of day %q: want %s", s, acceptedClockForms)
	}
	h, errH := strconv.Atoi(hh)
	m, errM := strconv.Atoi(mm)
	if errH != nil || errM != nil || h < 0 || h > 23 || m < 0 || m > 59 ||
		strings.ContainsAny(hh+mm, "+-") {
		return 0, fmt.Errorf("invalid time of day %q: want %s", s, acceptedClockForms)
	}
	return h*60 + m, nil
}

func formatClock(minutes int) string {
	return fmt.Sprintf("%02d:%02d", minutes/60, minutes%60)
}

func loadZone(name string) (*time.Location, error) {
	text := strings.TrimSpace(name)
	switch text {
	case "":
		return nil, fmt.Errorf("empty time zone: want an IANA time zone name such as UTC, Europe/Berlin or America/New_York")
	case "Local":
		// "Local" means whatever machine runs terraform; a policy must not.
		return nil, fmt.Errorf("time zone %q depends on the machine: want an IANA time zone name such as UTC or Europe/Berlin", name)
	}
	loc, err := time.LoadLocation(text)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q: want an IANA time zone name such as UTC, Europe/Berlin or America/New_York", name)
	}
	return loc, nil
}

// occurrence is one concrete opening of a daily build window.
type occurrence struct {
	start, end time.Time
}

func (o occurrence) contains(t time.Time) bool {
	return !t.Before(o.start) && t.Before(o.end)
}

// occurrenceOn returns the window opening on the local date y-m-d (it may end
// on the next date when the window crosses midnight). ok is false when DST
// squeezes the opening to nothing, e.g. 02:00–02:30 on a spring-forward day.
func (w BuildWindow) occurrenceOn(y int, m time.Month, d int) (occurrence, bool) {
	start := resolveWallClock(y, m, d, w.start, w.location(), false)
	ey, em, ed := y, m, d
	if w.end <= w.start {
		ey, em, ed = time.Date(y, m, d+1, 12, 0, 0, 0, time.UTC).Date()
	}
	end := resolveWallClock(ey, em, ed, w.end, w.location(), true)
	if !end.After(start) {
		return occurrence{}, false
	}
	return occurrence{start: start, end: end}, true
}

// localDate returns the date t falls on in the window's zone, shifted by
// offset days.
func (w BuildWindow) localDate(t time.Time, offset int) (int, time.Month, int) {
	y, m, d := t.In(w.location()).Date()
	return time.Date(y, m, d+offset, 12, 0, 0, 0, time.UTC).Date()
}

// current returns the opening that contains t or, when t is outside every
// opening, the next one to start after t.
func (w BuildWindow) current(t time.Time) occurrence {
	// Start a day early: yesterday's opening may cross midnight into today.
	for offset := -1; offset <= occurrenceSearchDays; offset++ {
		o, ok := w.occurrenceOn(w.localDate(t, offset))
		if ok && o.end.After(t) {
			return o
		}
	}
	return occurrence{}
}

// lastStartingBefore returns the latest opening that starts strictly before t.
func (w BuildWindow) lastStartingBefore(t time.Time) (occurrence, bool) {
	for offset := 1; offset >= -occurrenceSearchDays; offset-- {
		o, ok := w.occurrenceOn(w.localDate(t, offset))
		if ok && o.start.Before(t) {
			return o, true
		}
	}
	return occurrence{}, false
}

// resolveWallClock returns the instant at which clocks in loc read the given
// date and minute of day. DST makes that reading missing or doubled:
//   - missing (clocks jump forward over it): the instant of the jump, i.e. the
//     first reading after it, so a window never opens or closes inside a gap;
//   - doubled (clocks fall back over it): the earlier instant when latest is
//     false (window starts) and the later one when it is true (window ends),
//     so a window covers every instant whose reading falls inside it.
func resolveWallClock(y int, m time.Month, d, minutes int, loc *time.Location, latest bool) time.Time {
	wall := time.Date(y, m, d, minutes/60, minutes%60, 0, 0, time.UTC)
	// The offsets in force within a day either side of the wall time are the
	// only candidates (offsets are within ±14 h of UTC).
	var offsets []int
	for _, probe := range []time.Duration{-26 * time.Hour, -13 * time.Hour, 0, 13 * time.Hour, 26 * time.Hour} {
		_, off := wall.Add(probe).In(loc).Zone()
		if !slices.Contains(offsets, off) {
			offsets = append(offsets, off)
		}
	}
	var found, jumps []time.Time
	for _, off := range offsets {
		t := wall.Add(-time.Duration(off) * time.Second)
		reading := wallReading(t.In(loc))
		switch {
		case reading.Equal(wall):
			found = append(found, t)
		case reading.After(wall):
			// t lies after a forward jump over wall; the jump is where the
			// zone period containing t began.
			if begin, _ := t.In(loc).ZoneBounds(); !begin.IsZero() && !wallReading(begin.In(loc)).Before(wall) {
				jumps = append(jumps, begin)
			}
		}
	}
	if len(found) == 0 {
		if len(jumps) == 0 {
			return time.Date(y, m, d, minutes/60, minutes%60, 0, 0, loc) // not reached for real zones
		}
		return slices.MinFunc(jumps, time.Time.Compare)
	}
	if latest {
		return slices.MaxFunc(found, time.Time.Compare)
	}
	return slices.MinFunc(found, time.Time.Compare)
}

// wallReading returns t's local clock reading as a UTC time, so readings can
// be compared without zone arithmetic.
func wallReading(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// location returns the window's zone; the zero BuildWindow (00:00-00:00)
// uses UTC, where it is open all day.
func (w BuildWindow) location() *time.Location {
	if w.zone == nil {
		return time.UTC
	}
	return w.zone
}

func (w BuildWindow) string() string {
	return formatClock(w.start) + "-" + formatClock(w.end) + " " + w.location().String()
}
