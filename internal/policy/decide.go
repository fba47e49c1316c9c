package policy

import (
	"errors"
	"fmt"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/securitylevel"
)

func decide(c Change, p Policy, now time.Time) (Decision, error) {
	if (c.Update == nil) == (c.Age == nil) {
		return Decision{}, errors.New("decide: a change must describe exactly one of a base image update and an image age")
	}
	if err := p.validate(); err != nil {
		return Decision{}, fmt.Errorf("decide with policy %q: %w", p.Name, err)
	}
	p = p.withDefaults()
	var d Decision
	if c.Update != nil {
		d = decideUpdate(*c.Update, p, now)
	} else {
		d = decideAge(*c.Age, p, now)
	}
	if c.Cost != nil && p.Budget != nil {
		if err := checkBudget(&d, *c.Cost, p); err != nil {
			return Decision{}, fmt.Errorf("decide with policy %q: %w", p.Name, err)
		}
	}
	return d, nil
}

// buildWindowState returns whether now is inside a build window opening and the
// opening that contains now or comes next; without a build window the answer
// is always "inside" and the opening is zero.
func buildWindowState(p Policy, now time.Time) (bool, occurrence) {
	if p.BuildWindow == nil {
		return true, occurrence{}
	}
	o := p.BuildWindow.current(now)
	return o.contains(now), o
}

func decideUpdate(u BaseImageUpdate, p Policy, now time.Time) Decision {
	level, err := securitylevel.Parse(string(u.Level))
	if err != nil {
		level = securitylevel.Unknown // the brief: unknown updates fall back to the unknown level's delay
	}
	delay := p.rebuildDelayFor(level)
	created, skewed := u.NewImageCreationDate, u.NewImageCreationDate.After(now)
	if skewed {
		created = now // the image exists, so it was created by now
	}
	r := newReasoner(p)
	d := Decision{Trigger: TriggerBaseImageUpdate, Level: level, loc: r.loc}
	var o occurrence
	d.InBuildWindow, o = buildWindowState(p, now)
	d.NextBuildWindowStart, d.NextBuildWindowEnd = o.start, o.end
	subject := r.updateSubject(u, level, skewed)

	if delay.IsManual() {
		d.Action = AwaitingApproval
		d.Reason = subject + r.awaitingApproval(level, u.ApprovalHint)
		return d
	}
	if delay.IsImmediate() {
		d.Action, d.Deadline = RebuildNow, created
		d.Reason = subject + fmt.Sprintf("; rebuild now because the %s rebuild delay is immediate.", level)
		return d
	}
	span, _ := delay.Duration()
	d.Deadline = created.Add(span)
	due := fmt.Sprintf("due by %s (%s rebuild delay %s)", r.time(d.Deadline), level, formatDuration(span))
	switch {
	case !now.Before(d.Deadline):
		d.Action = RebuildNow
		d.Reason = subject + "; rebuild now: overdue, it was " + due + "."
	case p.BuildWindow == nil:
		d.Action = RebuildNow
		d.Reason = subject + "; rebuild now, " + due + ", no build window set."
	case d.InBuildWindow:
		d.Action = RebuildNow
		d.Reason = subject + fmt.Sprintf("; rebuild now inside the build window (open until %s), %s.", r.time(o.end), due)
	case o.start.Before(d.Deadline):
		d.Action = Deferred
		d.Reason = subject + fmt.Sprintf("; rebuild deferred until the build window opens at %s (until %s), %s.",
			r.time(o.start), r.time(o.end), due)
	default:
		d.Action = RebuildNow
		d.Reason = subject + fmt.Sprintf("; rebuild now: %s, and the next build window only opens at %s.",
			due, r.time(o.start))
	}
	return d
}

func decideAge(a ImageAge, p Policy, now time.Time) Decision {
	created, skewed := a.CreationDate, a.CreationDate.After(now)
	if skewed {
		created = now
	}
	r := newReasoner(p)
	d := Decision{Trigger: TriggerMaxAge, Deadline: created.Add(p.MaxAge), loc: r.loc}
	var o occurrence
	d.InBuildWindow, o = buildWindowState(p, now)
	d.NextBuildWindowStart, d.NextBuildWindowEnd = o.start, o.end
	subject := r.ageSubject(a, skewed, p.MaxAge, d.Deadline, !now.Before(d.Deadline))

	if !now.Before(d.Deadline) {
		d.Action = RebuildNow
		d.Reason = subject + "; rebuild now."
		return d
	}
	if p.BuildWindow == nil {
		d.Action = NothingToDo
		d.Reason = subject + "; it is rebuilt then (no build window set)."
		return d
	}
	// Aim for the last opening before the deadline, so the AMI lives as long
	// as it may yet never outlives its best-before.
	last, ok := p.BuildWindow.lastStartingBefore(d.Deadline)
	if !ok || !last.start.After(created) {
		// No opening falls in the AMI's life: waiting for one would rebuild
		// it right after every build, so the deadline itself is the trigger.
		d.Action = NothingToDo
		d.Reason = subject + "; no build window opens between its creation and then, so it is rebuilt then."
		return d
	}
	switch {
	case last.contains(now):
		d.Action = RebuildNow
		d.Reason = subject + fmt.Sprintf("; rebuild now in the last build window before then (open until %s).", r.time(last.end))
	case !now.Before(last.end):
		d.Action = RebuildNow
		d.Reason = subject + fmt.Sprintf("; rebuild now: the last build window before then closed at %s.", r.time(last.end))
	case o.start.Equal(last.start):
		d.Action = Deferred
		d.Reason = subject + fmt.Sprintf("; rebuild deferred until the build window opens at %s (until %s), the last before then.",
			r.time(last.start), r.time(last.end))
	default:
		d.Action = NothingToDo
		d.Reason = subject + fmt.Sprintf("; it is rebuilt in the build window opening at %s.", r.time(last.start))
	}
	return d
}

func checkBudget(d *Decision, in CostInput, p Policy) error {
	est, err := estimate(in, p)
	if err != nil {
		return fmt.Errorf("budget check: %w", err)
	}
	limit, urgent := p.Budget.MonthlyUSD, d.Trigger == TriggerBaseImageUpdate && d.Level == securitylevel.Critical
	if urgent {
		limit += p.Budget.UrgentUSD
	}
	d.BudgetChecked = true
	d.EstimatedMonthlyUSD = est.TotalUSD
	d.BudgetLimitUSD = limit
	d.OverBudget = est.TotalUSD > limit
	verdict := "within"
	if d.OverBudget {
		verdict = "over"
	}
	kind := "monthly budget"
	if urgent {
		kind = "monthly plus urgent budget for critical rebuilds"
	}
	d.BudgetReason = fmt.Sprintf("Estimated cost %s/month is %s the %s of %s/month.",
		formatUSD(est.TotalUSD), verdict, kind, formatUSD(limit))
	return nil
}

func mostUrgent(ds []Decision) Decision {
	if len(ds) == 0 {
		return Decision{Action: NothingToDo, InBuildWindow: true, Reason: "Nothing changed."}
	}
	best := ds[0]
	for _, d := range ds[1:] {
		switch {
		case d.Action > best.Action:
			best = d
		case d.Action == best.Action && !d.Deadline.IsZero() &&
			(best.Deadline.IsZero() || d.Deadline.Before(best.Deadline)):
			best = d
		}
	}
	return best
}
