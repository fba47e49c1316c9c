package policy

import (
	"fmt"
	"strings"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/securitylevel"
)

// reasonTimeLayout is how decisions print times: minutes and the zone
// abbreviation, in the build window's zone (UTC without one).
const reasonTimeLayout = "2006-01-02 15:04 MST"

// reasoner words decision sentences for one policy.
type reasoner struct {
	loc *time.Location
}

func newReasoner(p Policy) reasoner {
	if p.BuildWindow != nil {
		return reasoner{loc: p.BuildWindow.location()}
	}
	return reasoner{loc: time.UTC}
}

func (r reasoner) time(t time.Time) string {
	return t.In(r.loc).Format(reasonTimeLayout)
}

// image renders "ami-0123 (al2023-ami-2023.6)", or just the ID.
func image(id, name string) string {
	if id == "" {
		id = "(unknown image)"
	}
	if name == "" || name == id {
		return id
	}
	return id + " (" + name + ")"
}

func (r reasoner) updateSubject(u BaseImageUpdate, level securitylevel.Level, skewed bool) string {
	kind := strings.TrimSpace(u.UpdateType)
	if kind == "" {
		kind = "base image"
	}
	created := "created " + r.time(u.NewImageCreationDate)
	if skewed {
		created += " (in the future by this clock; counted as now)"
	}
	old := image(u.OldImageID, u.OldImageName)
	if u.OldImageID == "" && u.OldImageName == "" {
		old = "the previous base image"
	}
	return fmt.Sprintf("Base image %s replaces %s: %s update, security level %s, %s",
		image(u.NewImageID, u.NewImageName), old, kind, level, created)
}

func (r reasoner) awaitingApproval(level securitylevel.Level, hint string) string {
	s := fmt.Sprintf("; not rebuilt: awaiting manual approval because the %s rebuild delay is manual", level)
	if hint = strings.TrimSpace(hint); hint != "" {
		s += "; to approve, " + strings.TrimSuffix(hint, ".")
	}
	return s + "."
}

func (r reasoner) ageSubject(a ImageAge, skewed bool, maxAge time.Duration, deadline time.Time, passed bool) string {
	created := "created " + r.time(a.CreationDate)
	if skewed {
		created += " (in the future by this clock; counted as now)"
	}
	verb := "reaches"
	if passed {
		verb = "passed"
	}
	return fmt.Sprintf("AMI %s, %s, %s its maximum age of %s at %s",
		image(a.ImageID, a.ImageName), created, verb, formatDuration(maxAge), r.time(deadline))
}

func formatUSD(v float64) string {
	return fmt.Sprintf("$%.2f", v)
}

func (d Decision) headline() string {
	r := reasoner{loc: d.loc}
	if r.loc == nil {
		r.loc = time.UTC
	}
	what := "AMI at its maximum age"
	if d.Trigger == TriggerBaseImageUpdate {
		what = string(d.Level) + " base image update"
	}
	switch d.Action {
	case RebuildNow:
		return "Rebuild due now: " + what
	case Deferred:
		return fmt.Sprintf("Rebuild deferred until %s, due by %s", r.time(d.NextBuildWindowStart), r.time(d.Deadline))
	case AwaitingApproval:
		return strings.ToUpper(what[:1]) + what[1:] + " awaits manual approval"
	}
	return "No rebuild due"
}
