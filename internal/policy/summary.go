package policy

import (
	"fmt"
	"strings"
)

func (p Policy) summary() string {
	p = p.withDefaults()
	w := p.RebuildDelays
	parts := []string{
		fmt.Sprintf("critical %s, high %s, medium %s, low %s, unknown %s",
			w.Critical.phrase(), w.High.phrase(), w.Medium.phrase(), w.Low.phrase(), w.Unknown.phrase()),
		"best before " + formatDuration(p.MaxAge),
	}
	if p.BuildWindow != nil {
		parts = append(parts, "builds "+p.BuildWindow.String())
	} else {
		parts = append(parts, "builds at any time")
	}
	parts = append(parts, p.retentionSummary())
	if b := p.Budget; b != nil {
		s := fmt.Sprintf("budget %s/month", formatUSD(b.MonthlyUSD))
		if b.UrgentUSD > 0 {
			s += fmt.Sprintf(" (+%s for critical rebuilds)", formatUSD(b.UrgentUSD))
		}
		parts = append(parts, s)
	} else {
		parts = append(parts, "no budget")
	}
	if n := len(p.Prices); n > 0 {
		parts = append(parts, fmt.Sprintf("custom prices for %d %s", n, plural(n, "region", "regions")))
	}
	return strings.Join(parts, "; ")
}

func (p Policy) retentionSummary() string {
	r := p.Retention
	s := fmt.Sprintf("keeps %d %s", r.KeepRevisions, plural(r.KeepRevisions, "revision", "revisions"))
	switch {
	case r.DeregisterAfter.IsManual():
		return s + ", never deregisters older ones"
	case r.DeregisterAfter.IsImmediate():
		s += ", deregisters older ones at once"
	default:
		s += ", deregisters older ones after " + r.DeregisterAfter.String()
	}
	if r.DeleteSnapshots {
		return s + " and deletes their snapshots"
	}
	return s + " and keeps their snapshots"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
