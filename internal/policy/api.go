// Package policy holds autoami's rebuild rules and the engine that applies
// them: given what changed (a newer base image, or an AMI reaching its maximum
// age), a Policy and the current time, Decide says whether to rebuild now,
// defer to the next build window, wait for manual approval, or do nothing, and
// explains why in one sentence fit for a Terraform plan diagnostic.
//
// The package also estimates the monthly cost of keeping revisions published
// (EstimateMonthlyCost) from a per-region price table (DefaultPrices) that a
// policy can override, and defines the JSON document a policy is stored as
// (Policy.Document, ParseDocument).
//
// It knows nothing of Terraform or AWS: callers translate their types in and
// out, so the stream, published-AMI and policy resources all share one set of
// rules and one wording.
package policy

import (
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/securitylevel"

	// Embed the IANA zone database so build windows resolve the same way on
	// any machine terraform runs on, with or without /usr/share/zoneinfo.
	_ "time/tzdata"
)

// Delay is how long something may wait: Immediate, Within a duration, or
// Manual (never automatically; a person approves). The zero Delay is
// "unset", which a Policy replaces with the default.
//
// A level's rebuild delay (RebuildDelays) is how long after the new base
// image's creation date an update of that level may wait before the stream
// is rebuilt; that instant is the update's deadline. Retention.DeregisterAfter
// is a Delay too: Immediate deregisters a revision as soon as it falls out of
// the kept set, Manual never does. (The build window, a daily time of day, is
// a different thing: BuildWindow.)
type Delay struct {
	kind   delayKind
	within time.Duration
}

type delayKind uint8

const (
	delayUnset delayKind = iota
	delayImmediate
	delayWithin
	delayManual
)

// Immediate returns the delay that acts as soon as possible (a rebuild as
// soon as an update appears).
func Immediate() Delay { return Delay{kind: delayImmediate} }

// Manual returns the delay that never acts without a person's approval.
func Manual() Delay { return Delay{kind: delayManual} }

// Within returns the delay that allows d; d ≤ 0 is Immediate.
func Within(d time.Duration) Delay {
	if d <= 0 {
		return Immediate()
	}
	return Delay{kind: delayWithin, within: d}
}

// ParseDelay reads "immediate", "manual" or a duration as ParseDuration
// accepts it. The error lists the accepted forms.
func ParseDelay(s string) (Delay, error) { return parseDelay(s) }

// String renders the delay the way ParseDelay reads it ("immediate",
// "manual", "4h", "7d"); the unset delay renders as "".
func (d Delay) String() string { return d.string() }

// IsSet reports whether the delay is not the zero (unset) Delay.
func (d Delay) IsSet() bool { return d.kind != delayUnset }

// IsImmediate reports whether the delay is Immediate.
func (d Delay) IsImmediate() bool { return d.kind == delayImmediate }

// IsManual reports whether the delay is Manual.
func (d Delay) IsManual() bool { return d.kind == delayManual }

// Duration returns the allowed time and true for a Within delay, and 0 and
// false otherwise.
func (d Delay) Duration() (time.Duration, bool) { return d.within, d.kind == delayWithin }

// ParseDuration reads a policy duration: a positive whole number of minutes,
// hours, days or weeks ("30m", "4h", "7d", "2w"), or several of them largest
// unit first ("1d12h"). A day is 24 h and a week 7 days, whatever the clocks
// do. The error names the accepted forms.
func ParseDuration(s string) (time.Duration, error) { return parseDuration(s) }

// FormatDuration renders d as people write policy durations: whole days from
// two days up ("7d"), else hours and minutes ("4h", "24h", "1h30m"); a form
// ParseDuration reads back; seconds are dropped.
func FormatDuration(d time.Duration) string { return formatDuration(d) }

// BuildWindow is the daily off-peak period in which deferred rebuilds run:
// from Start to End wall-clock time in an IANA time zone. An End earlier than
// the Start crosses midnight. On DST days a start or end the clocks skip is
// taken at the moment they jump, and one they pass twice is taken at its
// first reading for the start and its second for the end, so the window
// covers every instant at which the local clock reads inside it (and, that
// day, the repeated stretch between). The zero BuildWindow is open all day;
// use ParseBuildWindow to make a real one.
type BuildWindow struct {
	start, end int // minutes after local midnight
	zone       *time.Location
}

// ParseBuildWindow checks and builds a window from "HH:MM" start and end
// times and an IANA zone name ("UTC", "Europe/Berlin"). Start must differ from
// end; "Local" is refused because it depends on the machine.
func ParseBuildWindow(start, end, zone string) (BuildWindow, error) {
	return parseBuildWindow(start, end, zone)
}

// CheckTimeOfDay reports whether s is a time of day ParseBuildWindow accepts
// ("HH:MM", 00:00 to 23:59); the error lists the accepted form.
func CheckTimeOfDay(s string) error {
	_, err := parseClock(s)
	return err
}

// CheckTimeZone reports whether name is a time zone ParseBuildWindow accepts
// (an IANA name; not "Local"); the error gives examples.
func CheckTimeZone(name string) error {
	_, err := loadZone(name)
	return err
}

// Start returns the opening time as "HH:MM".
func (w BuildWindow) Start() string { return formatClock(w.start) }

// End returns the closing time as "HH:MM".
func (w BuildWindow) End() string { return formatClock(w.end) }

// Zone returns the IANA zone name.
func (w BuildWindow) Zone() string { return w.zone.String() }

// String renders the window as "02:00-06:00 Europe/Berlin".
func (w BuildWindow) String() string { return w.string() }

// Contains reports whether t is inside an opening of the window (start
// inclusive, end exclusive).
func (w BuildWindow) Contains(t time.Time) bool { return w.current(t).contains(t) }

// Next returns the opening that contains t, or else the next one to start
// after t.
func (w BuildWindow) Next(t time.Time) (start, end time.Time) {
	o := w.current(t)
	return o.start, o.end
}

// RebuildDelays holds the rebuild delay of each security level: how long
// after the new base image's creation date an update of that level may wait.
// Unset delays take the defaults (DefaultRebuildDelays); an unset Unknown
// takes High's.
type RebuildDelays struct {
	Critical, High, Medium, Low, Unknown Delay
}

// DefaultRebuildDelays returns the defaults: critical within 4h, high within
// 24h, medium within 7d, low manual, unknown like high.
func DefaultRebuildDelays() RebuildDelays {
	return RebuildDelays{
		Critical: Within(4 * time.Hour),
		High:     Within(24 * time.Hour),
		Medium:   Within(7 * day),
		Low:      Manual(),
		Unknown:  Within(24 * time.Hour),
	}
}

// Retention says which superseded revisions stay published.
type Retention struct {
	// KeepRevisions counts the revisions kept registered, the current one
	// included (at least 1; default 3). Older ones are deprecated at once.
	KeepRevisions int
	// DeregisterAfter is how long a revision that fell out of the kept set
	// stays registered (deprecated) before it is deregistered: Immediate,
	// Within a duration, or Manual for never. Unset means 30d.
	DeregisterAfter Delay
	// DeleteSnapshots deletes a deregistered revision's snapshots too.
	DeleteSnapshots bool
}

// Budget caps the estimated monthly cost of a stream's publications.
type Budget struct {
	// MonthlyUSD is the limit for every rebuild.
	MonthlyUSD float64
	// UrgentUSD is extra room for critical security rebuilds only: their
	// limit is MonthlyUSD + UrgentUSD.
	UrgentUSD float64
}

// RegionPrices are the unit prices the estimator uses for one region.
type RegionPrices struct {
	// SnapshotGiBMonthUSD is EBS snapshot storage (standard tier) per GiB-month.
	SnapshotGiBMonthUSD float64 `json:"snapshot_gib_month_usd"`
	// VolumeGiBMonthUSD is gp3 volume storage per GiB-month (the unpacker's
	// persistent volume).
	VolumeGiBMonthUSD float64 `json:"volume_gib_month_usd"`
	// UnpackerHourUSD is one hour of the unpacker instance (on-demand Linux).
	UnpackerHourUSD float64 `json:"unpacker_hour_usd"`
}

// DefaultPricesKey is the price-table key used for regions the table lacks.
const DefaultPricesKey = "default"

// DefaultPrices returns a copy of the built-in price table, keyed by region
// name plus DefaultPricesKey. See prices.go for sources and the date.
func DefaultPrices() map[string]RegionPrices { return defaultPrices() }

// Policy is a complete set of rebuild rules. The zero value of each field
// means "default"; WithDefaults fills them in.
type Policy struct {
	// Name identifies the policy (e.g. "prod").
	Name string
	// RebuildDelays is how long each level may wait.
	RebuildDelays RebuildDelays
	// MaxAge is the best-before age of a published AMI (default 30d), also
	// its EC2 deprecation time.
	MaxAge time.Duration
	// BuildWindow is the off-peak window deferred rebuilds wait for; nil
	// means rebuilds may run at any time.
	BuildWindow *BuildWindow
	// Retention governs superseded revisions.
	Retention Retention
	// Budget caps the estimated monthly cost; nil means no cap.
	Budget *Budget
	// Prices overrides entries of DefaultPrices by region name (or
	// DefaultPricesKey); an override replaces the whole entry.
	Prices map[string]RegionPrices
}

// Default returns the policy with every default filled in.
func Default() Policy { return Policy{}.WithDefaults() }

// WithDefaults returns a copy of p with unset fields given their defaults.
func (p Policy) WithDefaults() Policy { return p.withDefaults() }

// Validate checks p (after defaults) and returns an error naming the first
// field that is wrong.
func (p Policy) Validate() error { return p.validate() }

// RebuildDelayFor returns the rebuild delay of an update of level, with
// defaults applied; an unrecognised level is treated as securitylevel.Unknown.
func (p Policy) RebuildDelayFor(level securitylevel.Level) Delay { return p.rebuildDelayFor(level) }

// PricesFor returns the unit prices for region: the policy's override, else
// the built-in entry, else the default entry (exact is then false).
func (p Policy) PricesFor(region string) (prices RegionPrices, exact bool) {
	return p.pricesFor(region)
}

// Summary renders the rules in one line, e.g. "critical within 4h, high within
// 24h, medium within 7d, low only after manual approval, unknown within 24h;
// best before 30d; builds 02:00-06:00 UTC; keeps 3 revisions, deregisters
// older ones after 30d and deletes their snapshots; budget $100.00/month
// (+$50.00 for critical rebuilds)". Without a build window it says "builds at
// any time", without a budget "no budget".
func (p Policy) Summary() string { return p.summary() }

// Document renders p (with defaults) as the JSON document autoami stores
// (DocumentVersion); ParseDocument reads it back.
func (p Policy) Document() ([]byte, error) { return p.document() }

// DocumentVersion is the version number written into policy documents.
const DocumentVersion = 2

// ParseDocument reads a policy document, checks it, and returns the policy
// with defaults filled in. Errors name the offending field.
func ParseDocument(data []byte) (Policy, error) { return parseDocument(data) }

// BaseImageUpdate describes a newer base image than the one an image was
// built from.
type BaseImageUpdate struct {
	OldImageID, OldImageName string
	NewImageID, NewImageName string
	// NewImageCreationDate is the new image's creation date (EC2's
	// CreationDate); its level's rebuild delay counts from it. A time after
	// now (clock skew) counts as now.
	NewImageCreationDate time.Time
	// Level is the update's severity; "" (and a word securitylevel.Parse
	// does not accept) means securitylevel.Unknown, whose delay applies.
	Level securitylevel.Level
	// UpdateType is informational ("security", "feature", "maintenance").
	UpdateType string
	// ApprovalHint, if set, completes the reason of an update waiting for
	// approval, e.g. `set approved_base_image = "ami-0123" on the stream`.
	ApprovalHint string
}

// ImageAge describes a published AMI to check against the policy's MaxAge.
type ImageAge struct {
	ImageID, ImageName string
	// CreationDate is the AMI's creation time; a time after now counts as now.
	CreationDate time.Time
}

// CostInput describes what a stream keeps published, for the estimator.
type CostInput struct {
	// Regions has one entry per target (account, region); repeats count.
	Regions []string
	// Revisions is how many revisions stay registered; 0 means the policy's
	// Retention.KeepRevisions.
	Revisions int
	// RevisionGiB is the snapshot size of one revision.
	RevisionGiB float64
	// ChangedGiB is the data one revision changes relative to the previous
	// one. Snapshots are incremental, so N revisions store RevisionGiB +
	// (N-1)×ChangedGiB; 0 means unknown, and then N×RevisionGiB is assumed.
	ChangedGiB float64
	// VolumeGiB is the size of the unpacker's persistent volume per target;
	// 0 means RevisionGiB.
	VolumeGiB float64
	// UnpackerHoursPerMonth is how long each target's unpacker runs a month.
	UnpackerHoursPerMonth float64
}

// Estimate is a monthly cost estimate in US dollars.
type Estimate struct {
	SnapshotUSD, VolumeUSD, UnpackerUSD, TotalUSD float64
	// DefaultPricedRegions lists the regions priced with the default entry
	// because neither the policy nor the built-in table knows them.
	DefaultPricedRegions []string
}

// EstimateMonthlyCost estimates the monthly cost of in under p's prices:
// snapshot storage of the kept revisions, the unpackers' persistent volumes
// and their instance hours, summed over targets.
func EstimateMonthlyCost(in CostInput, p Policy) (Estimate, error) { return estimate(in, p) }

// Change is one reason an image might need a rebuild: exactly one of Update
// and Age is set.
type Change struct {
	Update *BaseImageUpdate
	Age    *ImageAge
	// Cost, if set and the policy has a Budget, is estimated and checked.
	Cost *CostInput
}

// Action is what Decide concludes.
type Action int

// The actions, least urgent first (MostUrgent relies on the order).
const (
	// NothingToDo: no rebuild is due.
	NothingToDo Action = iota
	// AwaitingApproval: the level's rebuild delay is manual; nothing happens
	// until a person approves.
	AwaitingApproval
	// Deferred: a rebuild is due and waits for the next build window, which
	// opens before the deadline.
	Deferred
	// RebuildNow: rebuild at the next apply.
	RebuildNow
)

// String renders the action as "nothing to do", "awaiting approval",
// "deferred" or "rebuild now".
func (a Action) String() string { return a.string() }

// Trigger says which kind of change a Decision is about.
type Trigger string

// The triggers.
const (
	TriggerBaseImageUpdate Trigger = "base image update"
	TriggerMaxAge          Trigger = "maximum age"
)

// Decision is Decide's answer.
type Decision struct {
	Action  Action
	Trigger Trigger
	// Level is the update's level, canonical (securitylevel.Unknown for an
	// unlabelled update); empty for TriggerMaxAge.
	Level securitylevel.Level
	// Deadline is when the rebuild is due: the new base image's creation
	// date + the level's rebuild delay, or the AMI's creation date + MaxAge.
	// Zero for AwaitingApproval.
	Deadline time.Time
	// NextBuildWindowStart and NextBuildWindowEnd bound the build window
	// opening that contains now, or else the next one; zero without a build
	// window.
	NextBuildWindowStart, NextBuildWindowEnd time.Time
	// InBuildWindow reports whether now is inside a build window opening
	// (always true without a build window).
	InBuildWindow bool
	// Reason is one sentence naming the images, the level and the times.
	Reason string
	// Budget check, when the Change carried a Cost and the policy a Budget.
	BudgetChecked       bool
	OverBudget          bool
	EstimatedMonthlyUSD float64
	BudgetLimitUSD      float64
	// BudgetReason is one sentence on the budget check ("" if not checked).
	BudgetReason string

	loc *time.Location // zone the times are worded in
}

// Headline is a short title for the decision, fit for a diagnostic's
// summary line: "Rebuild due now: high base image update", "Rebuild deferred
// until 2025-01-11 02:00 UTC, due by 2025-01-11 10:00 UTC", "Low base image
// update awaits manual approval", "No rebuild due". Reason is the detail.
func (d Decision) Headline() string { return d.headline() }

// Decide applies p to c at time now.
//
// For a base image update with deadline = the new image's creation date +
// the level's rebuild delay: manual → AwaitingApproval; immediate, past the
// deadline, no build window, or inside a build window → RebuildNow; otherwise
// Deferred to the next build window if it opens strictly before the
// deadline, else RebuildNow.
//
// For an AMI with deadline = its creation date + MaxAge the rebuild aims at
// the last build window opening that starts before the deadline, so the AMI is replaced
// before it expires: inside or past that opening → RebuildNow; when it is the
// next opening → Deferred; earlier → NothingToDo. Without a build window, or
// when that opening began before the AMI was created (max age shorter than
// the time between openings), the rebuild is due at the deadline itself.
func Decide(c Change, p Policy, now time.Time) (Decision, error) { return decide(c, p, now) }

// MostUrgent returns the most urgent of ds (RebuildNow over Deferred over
// AwaitingApproval over NothingToDo; among equals, the earliest deadline,
// then the first given). It returns a NothingToDo decision when ds is empty.
func MostUrgent(ds ...Decision) Decision { return mostUrgent(ds) }
