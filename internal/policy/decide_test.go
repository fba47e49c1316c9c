package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/securitylevel"
)

// policyWith returns the default policy with a build window (nil for none)
// and optional overrides.
func policyWith(bw *BuildWindow, adjust func(*Policy)) Policy {
	p := Policy{Name: "test", BuildWindow: bw}
	if adjust != nil {
		adjust(&p)
	}
	return p
}

func TestDecideBaseImageUpdate(t *testing.T) {
	utc0206 := func(t *testing.T) *BuildWindow { return mustWindow(t, "02:00", "06:00", "UTC") }
	tests := []struct {
		name        string
		buildWindow func(t *testing.T) *BuildWindow // nil: no build window
		adjust      func(*Policy)
		level       securitylevel.Level
		created     string
		now         string

		action        Action
		level2        securitylevel.Level // expected Decision.Level ("" = same as level)
		deadline      string              // "" = zero
		inBuildWindow bool
		nextStart     string // "" = zero
		reasonParts   []string
	}{
		{
			name: "immediate delay rebuilds at once even outside the build window", buildWindow: utc0206,
			adjust: func(p *Policy) { p.RebuildDelays.Critical = Immediate() },
			level:  securitylevel.Critical, created: "2025-01-10 10:00", now: "2025-01-10 10:05",
			action: RebuildNow, deadline: "2025-01-10 10:00", nextStart: "2025-01-11 02:00",
			reasonParts: []string{"security level critical", "rebuild now because the critical rebuild delay is immediate"},
		},
		{
			name: "manual delay waits for approval", buildWindow: utc0206,
			level: securitylevel.Low, created: "2025-01-01 10:00", now: "2025-03-01 03:00",
			action: AwaitingApproval, inBuildWindow: true, nextStart: "2025-03-01 02:00",
			reasonParts: []string{"security level low", "awaiting manual approval because the low rebuild delay is manual",
				`to approve, set approved_base_image = "ami-new" on the stream.`},
		},
		{
			name:  "no build buildWindow: always inside, rebuild now",
			level: securitylevel.Medium, created: "2025-01-10 10:00", now: "2025-01-10 11:00",
			action: RebuildNow, deadline: "2025-01-17 10:00", inBuildWindow: true,
			reasonParts: []string{"rebuild now, due by 2025-01-17 10:00 UTC (medium rebuild delay 7d), no build window set."},
		},
		{
			name: "inside the build buildWindow: rebuild now", buildWindow: utc0206,
			level: securitylevel.High, created: "2025-01-10 01:00", now: "2025-01-10 03:00",
			action: RebuildNow, deadline: "2025-01-11 01:00", inBuildWindow: true, nextStart: "2025-01-10 02:00",
			reasonParts: []string{"rebuild now inside the build window (open until 2025-01-10 06:00 UTC), due by 2025-01-11 01:00 UTC (high rebuild delay 24h)."},
		},
		{
			name: "outside, next window before the deadline: deferred", buildWindow: utc0206,
			level: securitylevel.High, created: "2025-01-10 10:00", now: "2025-01-10 12:00",
			action: Deferred, deadline: "2025-01-11 10:00", nextStart: "2025-01-11 02:00",
			reasonParts: []string{
				"Base image ami-new (al2023-ami-2023.6.20250110) replaces ami-old (al2023-ami-2023.6.20250101): security update, security level high, created 2025-01-10 10:00 UTC",
				"rebuild deferred until the build window opens at 2025-01-11 02:00 UTC (until 2025-01-11 06:00 UTC), due by 2025-01-11 10:00 UTC (high rebuild delay 24h).",
			},
		},
		{
			name: "outside, next window after the deadline: rebuild now", buildWindow: utc0206,
			level: securitylevel.Critical, created: "2025-01-10 10:00", now: "2025-01-10 11:00",
			action: RebuildNow, deadline: "2025-01-10 14:00", nextStart: "2025-01-11 02:00",
			reasonParts: []string{"rebuild now: due by 2025-01-10 14:00 UTC (critical rebuild delay 4h), and the next build window only opens at 2025-01-11 02:00 UTC."},
		},
		{
			name: "deadline exactly at the next window start counts as missed", buildWindow: utc0206,
			level: securitylevel.High, created: "2025-01-10 02:00", now: "2025-01-10 07:00",
			action: RebuildNow, deadline: "2025-01-11 02:00", nextStart: "2025-01-11 02:00",
			reasonParts: []string{"next build window only opens at 2025-01-11 02:00 UTC"},
		},
		{
			name: "deadline a minute after the next window start: deferred", buildWindow: utc0206,
			level: securitylevel.High, created: "2025-01-10 02:01", now: "2025-01-10 07:00",
			action: Deferred, deadline: "2025-01-11 02:01", nextStart: "2025-01-11 02:00",
		},
		{
			name: "now exactly at the window start is inside", buildWindow: utc0206,
			level: securitylevel.Medium, created: "2025-01-10 10:00", now: "2025-01-11 02:00",
			action: RebuildNow, deadline: "2025-01-17 10:00", inBuildWindow: true, nextStart: "2025-01-11 02:00",
		},
		{
			name: "now exactly at the window end is outside", buildWindow: utc0206,
			level: securitylevel.Medium, created: "2025-01-10 10:00", now: "2025-01-11 06:00",
			action: Deferred, deadline: "2025-01-17 10:00", nextStart: "2025-01-12 02:00",
		},
		{
			name: "now exactly at the deadline: overdue", buildWindow: utc0206,
			level: securitylevel.High, created: "2025-01-10 10:00", now: "2025-01-11 10:00",
			action: RebuildNow, deadline: "2025-01-11 10:00", nextStart: "2025-01-12 02:00",
			reasonParts: []string{"rebuild now: overdue, it was due by 2025-01-11 10:00 UTC (high rebuild delay 24h)."},
		},
		{
			name: "created at the very moment of now", buildWindow: utc0206,
			level: securitylevel.High, created: "2025-01-10 12:00", now: "2025-01-10 12:00",
			action: Deferred, deadline: "2025-01-11 12:00", nextStart: "2025-01-11 02:00",
		},
		{
			name: "overdue long ago", buildWindow: utc0206,
			level: securitylevel.High, created: "2025-01-01 10:00", now: "2025-01-10 12:00",
			action: RebuildNow, deadline: "2025-01-02 10:00", nextStart: "2025-01-11 02:00",
			reasonParts: []string{"overdue"},
		},
		{
			name: "created in the future counts as now (deferred)", buildWindow: utc0206,
			level: securitylevel.High, created: "2025-01-10 14:00", now: "2025-01-10 12:00",
			action: Deferred, deadline: "2025-01-11 12:00", nextStart: "2025-01-11 02:00",
			reasonParts: []string{"created 2025-01-10 14:00 UTC (in the future by this clock; counted as now)"},
		},
		{
			name: "created in the future counts as now (critical misses window)", buildWindow: utc0206,
			level: securitylevel.Critical, created: "2025-01-11 09:00", now: "2025-01-10 12:00",
			action: RebuildNow, deadline: "2025-01-10 16:00", nextStart: "2025-01-11 02:00",
		},
		{
			name: "unlabelled update uses the unknown delay, which follows high", buildWindow: utc0206,
			adjust: func(p *Policy) { p.RebuildDelays.High = Within(2 * time.Hour) },
			level:  "", created: "2025-01-10 10:00", now: "2025-01-10 11:00",
			action: RebuildNow, level2: securitylevel.Unknown, deadline: "2025-01-10 12:00", nextStart: "2025-01-11 02:00",
			reasonParts: []string{"security level unknown", "(unknown rebuild delay 2h)"},
		},
		{
			name: "an explicit unknown delay wins over high's", buildWindow: utc0206,
			adjust: func(p *Policy) { p.RebuildDelays.Unknown = Within(7 * day) },
			level:  securitylevel.Unknown, created: "2025-01-10 10:00", now: "2025-01-10 11:00",
			action: Deferred, deadline: "2025-01-17 10:00", nextStart: "2025-01-11 02:00",
		},
		{
			name: "unknown may be manual", buildWindow: utc0206,
			adjust: func(p *Policy) { p.RebuildDelays.Unknown = Manual() },
			level:  "", created: "2025-01-10 10:00", now: "2025-01-10 11:00",
			action: AwaitingApproval, level2: securitylevel.Unknown, nextStart: "2025-01-11 02:00",
		},
		{
			name: "an unrecognised level falls back to unknown", buildWindow: utc0206,
			level: "urgent-ish", created: "2025-01-10 10:00", now: "2025-01-10 12:00",
			action: Deferred, level2: securitylevel.Unknown, deadline: "2025-01-11 10:00", nextStart: "2025-01-11 02:00",
		},
		{
			name: "vendor word important means high", buildWindow: utc0206,
			level: "Important", created: "2025-01-10 10:00", now: "2025-01-10 12:00",
			action: Deferred, level2: securitylevel.High, deadline: "2025-01-11 10:00", nextStart: "2025-01-11 02:00",
		},
		{
			name:        "midnight-crossing buildWindow: inside after midnight",
			buildWindow: func(t *testing.T) *BuildWindow { return mustWindow(t, "22:00", "04:00", "UTC") },
			level:       securitylevel.Medium, created: "2025-01-09 10:00", now: "2025-01-10 03:30",
			action: RebuildNow, deadline: "2025-01-16 10:00", inBuildWindow: true, nextStart: "2025-01-09 22:00",
			reasonParts: []string{"open until 2025-01-10 04:00 UTC"},
		},
		{
			name:        "midnight-crossing buildWindow: deferred to tonight",
			buildWindow: func(t *testing.T) *BuildWindow { return mustWindow(t, "22:00", "04:00", "UTC") },
			level:       securitylevel.High, created: "2025-01-10 09:00", now: "2025-01-10 12:00",
			action: Deferred, deadline: "2025-01-11 09:00", nextStart: "2025-01-10 22:00",
		},
		{
			name:        "Berlin spring-forward: window opens at the jump, deferred",
			buildWindow: func(t *testing.T) *BuildWindow { return mustWindow(t, "02:00", "06:00", "Europe/Berlin") },
			level:       securitylevel.High, created: "2025-03-29 12:00", now: "2025-03-30 00:30",
			action: Deferred, deadline: "2025-03-30 12:00", nextStart: "2025-03-30 01:00",
			reasonParts: []string{"created 2025-03-29 13:00 CET", "opens at 2025-03-30 03:00 CEST (until 2025-03-30 06:00 CEST)", "due by 2025-03-30 14:00 CEST"},
		},
		{
			name:        "Berlin spring-forward: inside at the jump",
			buildWindow: func(t *testing.T) *BuildWindow { return mustWindow(t, "02:00", "06:00", "Europe/Berlin") },
			level:       securitylevel.High, created: "2025-03-29 12:00", now: "2025-03-30 01:00",
			action: RebuildNow, deadline: "2025-03-30 12:00", inBuildWindow: true, nextStart: "2025-03-30 01:00",
		},
		{
			name:        "Berlin fall-back: the long night keeps the window open an extra hour",
			buildWindow: func(t *testing.T) *BuildWindow { return mustWindow(t, "02:00", "06:00", "Europe/Berlin") },
			level:       securitylevel.Medium, created: "2025-10-25 12:00", now: "2025-10-26 04:30",
			action: RebuildNow, deadline: "2025-11-01 12:00", inBuildWindow: true, nextStart: "2025-10-26 00:00",
			reasonParts: []string{"open until 2025-10-26 06:00 CET"},
		},
		{
			name:        "New York fall-back: the next window starts exactly at the deadline",
			buildWindow: func(t *testing.T) *BuildWindow { return mustWindow(t, "01:00", "03:00", "America/New_York") },
			adjust:      func(p *Policy) { p.RebuildDelays.Critical = Within(time.Hour) },
			level:       securitylevel.Critical, created: "2025-11-02 04:00", now: "2025-11-02 04:30",
			action: RebuildNow, deadline: "2025-11-02 05:00", nextStart: "2025-11-02 05:00",
			reasonParts: []string{"due by 2025-11-02 01:00 EDT", "only opens at 2025-11-02 01:00 EDT"},
		},
		{
			name:        "New York fall-back: deferred into the doubled hour",
			buildWindow: func(t *testing.T) *BuildWindow { return mustWindow(t, "01:00", "03:00", "America/New_York") },
			level:       securitylevel.Critical, created: "2025-11-02 04:00", now: "2025-11-02 04:30",
			action: Deferred, deadline: "2025-11-02 08:00", nextStart: "2025-11-02 05:00",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var bw *BuildWindow
			if tc.buildWindow != nil {
				bw = tc.buildWindow(t)
			}
			p := policyWith(bw, tc.adjust)
			c := Change{Update: &BaseImageUpdate{
				OldImageID: "ami-old", OldImageName: "al2023-ami-2023.6.20250101",
				NewImageID: "ami-new", NewImageName: "al2023-ami-2023.6.20250110",
				NewImageCreationDate: at(t, tc.created), Level: tc.level, UpdateType: "security",
				ApprovalHint: `set approved_base_image = "ami-new" on the stream`,
			}}
			d, err := Decide(c, p, at(t, tc.now))
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			checkDecision(t, d, tc.action, tc.deadline, tc.inBuildWindow, tc.nextStart, tc.reasonParts)
			wantLevel := tc.level2
			if wantLevel == "" {
				wantLevel = tc.level
			}
			if d.Level != wantLevel || d.Trigger != TriggerBaseImageUpdate {
				t.Errorf("Level, Trigger = %q, %q; want %q, %q", d.Level, d.Trigger, wantLevel, TriggerBaseImageUpdate)
			}
			if !strings.Contains(d.Reason, "ami-old") || !strings.Contains(d.Reason, "ami-new") {
				t.Errorf("Reason %q does not name both images", d.Reason)
			}
		})
	}
}

func checkDecision(t *testing.T, d Decision, action Action, deadline string, inBuildWindow bool, nextStart string, reasonParts []string) {
	t.Helper()
	if d.Action != action {
		t.Errorf("Action = %v, want %v (reason: %s)", d.Action, action, d.Reason)
	}
	wantDeadline := time.Time{}
	if deadline != "" {
		wantDeadline = at(t, deadline)
	}
	if !sameInstant(d.Deadline, wantDeadline) {
		t.Errorf("Deadline = %v, want %v", d.Deadline, wantDeadline)
	}
	if d.InBuildWindow != inBuildWindow {
		t.Errorf("InBuildWindow = %v, want %v", d.InBuildWindow, inBuildWindow)
	}
	wantStart := time.Time{}
	if nextStart != "" {
		wantStart = at(t, nextStart)
	}
	if !sameInstant(d.NextBuildWindowStart, wantStart) {
		t.Errorf("NextBuildWindowStart = %v, want %v", d.NextBuildWindowStart, wantStart)
	}
	if nextStart != "" && !d.NextBuildWindowEnd.After(d.NextBuildWindowStart) {
		t.Errorf("NextBuildWindowEnd %v not after NextBuildWindowStart %v", d.NextBuildWindowEnd, d.NextBuildWindowStart)
	}
	for _, part := range reasonParts {
		if !strings.Contains(d.Reason, part) {
			t.Errorf("Reason %q\n does not contain %q", d.Reason, part)
		}
	}
	if strings.Count(d.Reason, ". ") > 0 || !strings.HasSuffix(d.Reason, ".") {
		t.Errorf("Reason %q is not one sentence", d.Reason)
	}
}

func TestDecideMaxAge(t *testing.T) {
	utc0206 := func(t *testing.T) *BuildWindow { return mustWindow(t, "02:00", "06:00", "UTC") }
	tests := []struct {
		name          string
		buildWindow   func(t *testing.T) *BuildWindow
		maxAge        time.Duration
		created       string
		now           string
		action        Action
		deadline      string
		inBuildWindow bool
		nextStart     string
		reasonParts   []string
	}{
		{
			name: "young AMI: nothing to do, names the planned window", buildWindow: utc0206, maxAge: 7 * day,
			created: "2025-01-01 12:00", now: "2025-01-05 12:00",
			action: NothingToDo, deadline: "2025-01-08 12:00", nextStart: "2025-01-06 02:00",
			reasonParts: []string{"AMI ami-web (web-42), created 2025-01-01 12:00 UTC, reaches its maximum age of 7d at 2025-01-08 12:00 UTC",
				"it is rebuilt in the build window opening at 2025-01-08 02:00 UTC."},
		},
		{
			name: "inside an earlier buildWindow: still nothing to do", buildWindow: utc0206, maxAge: 7 * day,
			created: "2025-01-01 12:00", now: "2025-01-07 03:00",
			action: NothingToDo, deadline: "2025-01-08 12:00", inBuildWindow: true, nextStart: "2025-01-07 02:00",
		},
		{
			name: "the next window is the last before best-before: deferred", buildWindow: utc0206, maxAge: 7 * day,
			created: "2025-01-01 12:00", now: "2025-01-07 10:00",
			action: Deferred, deadline: "2025-01-08 12:00", nextStart: "2025-01-08 02:00",
			reasonParts: []string{"rebuild deferred until the build window opens at 2025-01-08 02:00 UTC (until 2025-01-08 06:00 UTC), the last before then."},
		},
		{
			name: "exactly at the last window's start: rebuild now", buildWindow: utc0206, maxAge: 7 * day,
			created: "2025-01-01 12:00", now: "2025-01-08 02:00",
			action: RebuildNow, deadline: "2025-01-08 12:00", inBuildWindow: true, nextStart: "2025-01-08 02:00",
			reasonParts: []string{"rebuild now in the last build window before then (open until 2025-01-08 06:00 UTC)."},
		},
		{
			name: "the last window closed before best-before: rebuild now", buildWindow: utc0206, maxAge: 7 * day,
			created: "2025-01-01 12:00", now: "2025-01-08 06:00",
			action: RebuildNow, deadline: "2025-01-08 12:00", nextStart: "2025-01-09 02:00",
			reasonParts: []string{"the last build window before then closed at 2025-01-08 06:00 UTC"},
		},
		{
			name: "exactly at best-before: overdue", buildWindow: utc0206, maxAge: 7 * day,
			created: "2025-01-01 12:00", now: "2025-01-08 12:00",
			action: RebuildNow, deadline: "2025-01-08 12:00", nextStart: "2025-01-09 02:00",
			reasonParts: []string{"passed its maximum age of 7d at 2025-01-08 12:00 UTC; rebuild now."},
		},
		{
			name: "best-before exactly at a window start aims at the day before", buildWindow: utc0206, maxAge: 6*day + 14*time.Hour,
			created: "2025-01-01 12:00", now: "2025-01-07 02:00",
			action: RebuildNow, deadline: "2025-01-08 02:00", inBuildWindow: true, nextStart: "2025-01-07 02:00",
		},
		{
			name: "no build window, young: nothing to do", maxAge: 30 * day,
			created: "2025-01-01 12:00", now: "2025-01-31 11:59",
			action: NothingToDo, deadline: "2025-01-31 12:00", inBuildWindow: true,
			reasonParts: []string{"maximum age of 30d", "it is rebuilt then (no build window set)."},
		},
		{
			name: "no build window, at best-before: rebuild now", maxAge: 30 * day,
			created: "2025-01-01 12:00", now: "2025-01-31 12:00",
			action: RebuildNow, deadline: "2025-01-31 12:00", inBuildWindow: true,
		},
		{
			name: "max age shorter than the gap between windows: due at the deadline only", buildWindow: utc0206, maxAge: 2 * time.Hour,
			created: "2025-01-01 03:00", now: "2025-01-01 04:00",
			action: NothingToDo, deadline: "2025-01-01 05:00", inBuildWindow: true, nextStart: "2025-01-01 02:00",
			reasonParts: []string{"no build window opens between its creation and then"},
		},
		{
			name: "built at a window's start: no immediate second rebuild", buildWindow: utc0206, maxAge: day,
			created: "2025-01-01 02:00", now: "2025-01-01 02:10",
			action: NothingToDo, deadline: "2025-01-02 02:00", inBuildWindow: true, nextStart: "2025-01-01 02:00",
		},
		{
			name: "built just after a window's start: next day's window is the last", buildWindow: utc0206, maxAge: day,
			created: "2025-01-01 02:10", now: "2025-01-02 02:00",
			action: RebuildNow, deadline: "2025-01-02 02:10", inBuildWindow: true, nextStart: "2025-01-02 02:00",
		},
		{
			name: "creation in the future counts as now", buildWindow: utc0206, maxAge: 7 * day,
			created: "2025-01-06 00:00", now: "2025-01-05 12:00",
			action: NothingToDo, deadline: "2025-01-12 12:00", nextStart: "2025-01-06 02:00",
			reasonParts: []string{"created 2025-01-06 00:00 UTC (in the future by this clock; counted as now)"},
		},
		{
			name:        "DST: Berlin last window before best-before on the spring-forward day",
			buildWindow: func(t *testing.T) *BuildWindow { return mustWindow(t, "02:00", "06:00", "Europe/Berlin") },
			maxAge:      7 * day, created: "2025-03-23 12:00", now: "2025-03-30 00:00",
			action: Deferred, deadline: "2025-03-30 12:00", nextStart: "2025-03-30 01:00",
			reasonParts: []string{"opens at 2025-03-30 03:00 CEST (until 2025-03-30 06:00 CEST)"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var bw *BuildWindow
			if tc.buildWindow != nil {
				bw = tc.buildWindow(t)
			}
			p := policyWith(bw, func(p *Policy) { p.MaxAge = tc.maxAge })
			d, err := Decide(Change{Age: &ImageAge{ImageID: "ami-web", ImageName: "web-42", CreationDate: at(t, tc.created)}}, p, at(t, tc.now))
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			checkDecision(t, d, tc.action, tc.deadline, tc.inBuildWindow, tc.nextStart, tc.reasonParts)
			if d.Trigger != TriggerMaxAge || d.Level != "" {
				t.Errorf("Trigger, Level = %q, %q; want %q, \"\"", d.Trigger, d.Level, TriggerMaxAge)
			}
			if !strings.Contains(d.Reason, "ami-web (web-42)") {
				t.Errorf("Reason %q does not name the AMI", d.Reason)
			}
		})
	}
}

func TestDecideDefaultMaxAge(t *testing.T) {
	d, err := Decide(Change{Age: &ImageAge{ImageID: "ami-1", CreationDate: at(t, "2025-01-01 00:00")}}, Policy{}, at(t, "2025-01-31 00:00"))
	if err != nil {
		t.Fatal(err)
	}
	if d.Action != RebuildNow || !d.Deadline.Equal(at(t, "2025-01-31 00:00")) {
		t.Errorf("default max age 30d: got %v by %v", d.Action, d.Deadline)
	}
}

func TestDecideErrors(t *testing.T) {
	now := at(t, "2025-01-10 12:00")
	update := &BaseImageUpdate{NewImageID: "ami-new", NewImageCreationDate: now}
	age := &ImageAge{ImageID: "ami-1", CreationDate: now}
	if _, err := Decide(Change{}, Policy{}, now); err == nil || !strings.Contains(err.Error(), "exactly one") {
		t.Errorf("empty change: error = %v", err)
	}
	if _, err := Decide(Change{Update: update, Age: age}, Policy{}, now); err == nil || !strings.Contains(err.Error(), "exactly one") {
		t.Errorf("double change: error = %v", err)
	}
	bad := Policy{Name: "bad", BuildWindow: &BuildWindow{}}
	if _, err := Decide(Change{Update: update}, bad, now); err == nil || !strings.Contains(err.Error(), `policy "bad"`) {
		t.Errorf("invalid build buildWindow: error = %v", err)
	}
	negative := Policy{Budget: &Budget{MonthlyUSD: -1}}
	if _, err := Decide(Change{Update: update}, negative, now); err == nil || !strings.Contains(err.Error(), "budget.monthly_usd") {
		t.Errorf("negative budget: error = %v", err)
	}
	withCost := Change{Update: update, Cost: &CostInput{Regions: []string{"us-east-1"}, RevisionGiB: -1}}
	if _, err := Decide(withCost, Policy{Budget: &Budget{MonthlyUSD: 1}}, now); err == nil || !strings.Contains(err.Error(), "revision size") {
		t.Errorf("bad cost input: error = %v", err)
	}
}

func TestDecideBudget(t *testing.T) {
	now := at(t, "2025-01-10 12:00")
	// 1 target in us-east-1, 3 revisions of 10 GiB: snapshots 30×0.05 = 1.50,
	// volume 10×0.08 = 0.80, unpacker 100 h × 0.0208 = 2.08; total 4.38.
	cost := &CostInput{Regions: []string{"us-east-1"}, Revisions: 3, RevisionGiB: 10, UnpackerHoursPerMonth: 100}
	tests := []struct {
		name    string
		level   securitylevel.Level
		budget  *Budget
		checked bool
		over    bool
		limit   float64
		reason  string
	}{
		{name: "no budget: not checked", level: securitylevel.High},
		{name: "under the monthly budget", level: securitylevel.High, budget: &Budget{MonthlyUSD: 10}, checked: true, limit: 10,
			reason: "Estimated cost $4.38/month is within the monthly budget of $10.00/month."},
		{name: "exactly at the monthly budget is within", level: securitylevel.High, budget: &Budget{MonthlyUSD: 4.38}, checked: true, limit: 4.38},
		{name: "over the monthly budget", level: securitylevel.High, budget: &Budget{MonthlyUSD: 4, UrgentUSD: 100}, checked: true, over: true, limit: 4,
			reason: "Estimated cost $4.38/month is over the monthly budget of $4.00/month."},
		{name: "critical may use the urgent budget", level: securitylevel.Critical, budget: &Budget{MonthlyUSD: 4, UrgentUSD: 1}, checked: true, limit: 5,
			reason: "within the monthly plus urgent budget for critical rebuilds of $5.00/month"},
		{name: "critical over even with the urgent budget", level: securitylevel.Critical, budget: &Budget{MonthlyUSD: 4, UrgentUSD: 0.2}, checked: true, over: true, limit: 4.2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Change{Update: &BaseImageUpdate{NewImageID: "ami-new", NewImageCreationDate: now, Level: tc.level}, Cost: cost}
			d, err := Decide(c, Policy{Budget: tc.budget}, now)
			if err != nil {
				t.Fatal(err)
			}
			if d.BudgetChecked != tc.checked || d.OverBudget != tc.over {
				t.Errorf("checked, over = %v, %v; want %v, %v (%s)", d.BudgetChecked, d.OverBudget, tc.checked, tc.over, d.BudgetReason)
			}
			if tc.checked && (d.EstimatedMonthlyUSD != 4.38 || d.BudgetLimitUSD != tc.limit) {
				t.Errorf("estimate, limit = %v, %v; want 4.38, %v", d.EstimatedMonthlyUSD, d.BudgetLimitUSD, tc.limit)
			}
			if !strings.Contains(d.BudgetReason, tc.reason) || (!tc.checked && d.BudgetReason != "") {
				t.Errorf("BudgetReason = %q, want it to contain %q", d.BudgetReason, tc.reason)
			}
		})
	}
	// An age rebuild never gets the urgent allowance.
	d, err := Decide(Change{Age: &ImageAge{ImageID: "ami-1", CreationDate: now.Add(-40 * day)}, Cost: cost},
		Policy{Budget: &Budget{MonthlyUSD: 4, UrgentUSD: 100}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !d.OverBudget || d.BudgetLimitUSD != 4 {
		t.Errorf("age rebuild: over=%v limit=%v, want over at 4", d.OverBudget, d.BudgetLimitUSD)
	}
}

func TestMostUrgent(t *testing.T) {
	t1, t2 := at(t, "2025-01-10 12:00"), at(t, "2025-01-11 12:00")
	nothing := Decision{Action: NothingToDo, Deadline: t1, Reason: "nothing"}
	approval := Decision{Action: AwaitingApproval, Reason: "approval"}
	deferredLate := Decision{Action: Deferred, Deadline: t2, Reason: "deferred late"}
	deferredEarly := Decision{Action: Deferred, Deadline: t1, Reason: "deferred early"}
	rebuild := Decision{Action: RebuildNow, Deadline: t2, Reason: "rebuild"}
	tests := []struct {
		in   []Decision
		want string
	}{
		{[]Decision{nothing, approval}, "approval"},
		{[]Decision{approval, deferredLate}, "deferred late"},
		{[]Decision{deferredLate, deferredEarly}, "deferred early"},
		{[]Decision{deferredEarly, deferredLate}, "deferred early"},
		{[]Decision{deferredEarly, rebuild, nothing}, "rebuild"},
		{[]Decision{nothing}, "nothing"},
	}
	for _, tc := range tests {
		if got := MostUrgent(tc.in...); got.Reason != tc.want {
			t.Errorf("MostUrgent(%v) = %q, want %q", tc.in, got.Reason, tc.want)
		}
	}
	if got := MostUrgent(); got.Action != NothingToDo || got.Reason == "" {
		t.Errorf("MostUrgent() = %+v, want a NothingToDo with a reason", got)
	}
}

func TestActionString(t *testing.T) {
	want := map[Action]string{NothingToDo: "nothing to do", AwaitingApproval: "awaiting approval",
		Deferred: "deferred", RebuildNow: "rebuild now", Action(9): "Action(9)"}
	for a, s := range want {
		if a.String() != s {
			t.Errorf("%d.String() = %q, want %q", int(a), a.String(), s)
		}
	}
}

func TestDecisionHeadline(t *testing.T) {
	berlin := mustWindow(t, "02:00", "06:00", "Europe/Berlin")
	utc := mustWindow(t, "02:00", "06:00", "UTC")
	update := func(level securitylevel.Level, created string) Change {
		return Change{Update: &BaseImageUpdate{OldImageID: "ami-old", NewImageID: "ami-new", NewImageCreationDate: at(t, created), Level: level}}
	}
	tests := []struct {
		name string
		c    Change
		p    Policy
		now  string
		want string
	}{
		{"rebuild now", update(securitylevel.Critical, "2025-01-10 10:00"), Policy{}, "2025-01-10 11:00", "Rebuild due now: critical base image update"},
		{"deferred, in the window's zone", update(securitylevel.High, "2025-01-10 10:00"), Policy{BuildWindow: berlin}, "2025-01-10 12:00",
			"Rebuild deferred until 2025-01-11 02:00 CET, due by 2025-01-11 11:00 CET"},
		{"deferred, UTC", update(securitylevel.High, "2025-01-10 10:00"), Policy{BuildWindow: utc}, "2025-01-10 12:00",
			"Rebuild deferred until 2025-01-11 02:00 UTC, due by 2025-01-11 10:00 UTC"},
		{"approval", update(securitylevel.Low, "2025-01-10 10:00"), Policy{}, "2025-01-10 12:00", "Low base image update awaits manual approval"},
		{"age due", Change{Age: &ImageAge{ImageID: "ami-1", CreationDate: at(t, "2024-01-01 00:00")}}, Policy{}, "2025-01-10 12:00",
			"Rebuild due now: AMI at its maximum age"},
		{"nothing", Change{Age: &ImageAge{ImageID: "ami-1", CreationDate: at(t, "2025-01-01 00:00")}}, Policy{}, "2025-01-10 12:00",
			"No rebuild due"},
	}
	for _, tc := range tests {
		d, err := Decide(tc.c, tc.p, at(t, tc.now))
		if err != nil {
			t.Fatal(err)
		}
		if got := d.Headline(); got != tc.want {
			t.Errorf("%s: Headline() = %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := (Decision{}).Headline(); got != "No rebuild due" {
		t.Errorf("zero Decision headline = %q", got)
	}
}
