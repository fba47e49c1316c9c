package policy

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/autoami/terraform-provider-autoami/internal/securitylevel"
)

// Defaults for fields a policy leaves unset.
const (
	defaultMaxAge          = 30 * day
	defaultKeepRevisions   = 3
	defaultDeregisterAfter = 30 * day
)

func (p Policy) withDefaults() Policy {
	defaults := DefaultRebuildDelays()
	w := &p.RebuildDelays
	if !w.Critical.IsSet() {
		w.Critical = defaults.Critical
	}
	if !w.High.IsSet() {
		w.High = defaults.High
	}
	if !w.Medium.IsSet() {
		w.Medium = defaults.Medium
	}
	if !w.Low.IsSet() {
		w.Low = defaults.Low
	}
	if !w.Unknown.IsSet() {
		w.Unknown = w.High // the issue: unknown defaults to whatever high is
	}
	if p.MaxAge <= 0 {
		p.MaxAge = defaultMaxAge
	}
	if p.Retention.KeepRevisions <= 0 {
		p.Retention.KeepRevisions = defaultKeepRevisions
	}
	if !p.Retention.DeregisterAfter.IsSet() {
		p.Retention.DeregisterAfter = Within(defaultDeregisterAfter)
	}
	if p.BuildWindow != nil {
		bw := *p.BuildWindow
		p.BuildWindow = &bw
	}
	if p.Budget != nil {
		b := *p.Budget
		p.Budget = &b
	}
	if p.Prices != nil {
		prices := make(map[string]RegionPrices, len(p.Prices))
		for k, v := range p.Prices {
			prices[k] = v
		}
		p.Prices = prices
	}
	return p
}

func (p Policy) validate() error {
	p = p.withDefaults()
	if p.BuildWindow != nil && (p.BuildWindow.zone == nil || p.BuildWindow.start == p.BuildWindow.end) {
		return errors.New("build_window: not made by ParseBuildWindow (start equals end or zone missing)")
	}
	if p.Budget != nil {
		if err := checkUSD("budget.monthly_usd", p.Budget.MonthlyUSD); err != nil {
			return err
		}
		if err := checkUSD("budget.urgent_usd", p.Budget.UrgentUSD); err != nil {
			return err
		}
	}
	for region, prices := range p.Prices {
		if strings.TrimSpace(region) == "" {
			return errors.New("prices: empty region name")
		}
		for name, v := range map[string]float64{
			"snapshot_gib_month_usd": prices.SnapshotGiBMonthUSD,
			"volume_gib_month_usd":   prices.VolumeGiBMonthUSD,
			"unpacker_hour_usd":      prices.UnpackerHourUSD,
		} {
			if err := checkUSD(fmt.Sprintf("prices[%q].%s", region, name), v); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkUSD(field string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return fmt.Errorf("%s: %v is not an amount of dollars (want a number ≥ 0)", field, v)
	}
	return nil
}

func (p Policy) rebuildDelayFor(level securitylevel.Level) Delay {
	w := p.withDefaults().RebuildDelays
	switch level {
	case securitylevel.Critical:
		return w.Critical
	case securitylevel.High:
		return w.High
	case securitylevel.Medium:
		return w.Medium
	case securitylevel.Low:
		return w.Low
	}
	return w.Unknown
}

func (a Action) string() string {
	switch a {
	case NothingToDo:
		return "nothing to do"
	case AwaitingApproval:
		return "awaiting approval"
	case Deferred:
		return "deferred"
	case RebuildNow:
		return "rebuild now"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}
