package policy

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Policy durations count days and weeks as fixed 24 h and 7×24 h spans, not
// calendar days: a deadline is an instant, and a DST change must not move it.
const (
	day  = 24 * time.Hour
	week = 7 * day
)

// durationUnits lists the accepted units, largest first; a compound duration
// such as "1d12h" must use them in this order, each at most once.
var durationUnits = []struct {
	suffix byte
	size   time.Duration
}{
	{'w', week},
	{'d', day},
	{'h', time.Hour},
	{'m', time.Minute},
}

// maxDurationCount bounds each number so the sum cannot overflow time.Duration
// (about 292 years); ten thousand weeks is already absurd for a policy.
const maxDurationCount = 10000

const acceptedDurationForms = "a positive whole number of minutes (m), hours (h), days (d) or weeks (w) such as 30m, 4h, 7d or 2w, or a combination in that order such as 1d12h"

func parseDuration(s string) (time.Duration, error) {
	text := strings.TrimSpace(s)
	if text == "" {
		return 0, fmt.Errorf("empty duration: want %s", acceptedDurationForms)
	}
	var total time.Duration
	nextUnit := 0 // index into durationUnits of the largest unit still allowed
	rest := strings.ToLower(text)
	for rest != "" {
		digits := 0
		for digits < len(rest) && rest[digits] >= '0' && rest[digits] <= '9' {
			digits++
		}
		if digits == 0 || digits == len(rest) {
			return 0, fmt.Errorf("invalid duration %q: want %s", s, acceptedDurationForms)
		}
		count, err := strconv.Atoi(rest[:digits])
		if err != nil || count > maxDurationCount {
			return 0, fmt.Errorf("invalid duration %q: number %s too large", s, rest[:digits])
		}
		unit := -1
		for i := nextUnit; i < len(durationUnits); i++ {
			if durationUnits[i].suffix == rest[digits] {
				unit = i
				break
			}
		}
		if unit < 0 {
			return 0, fmt.Errorf("invalid duration %q: unit %q unknown or out of order: want %s",
				s, rest[digits:digits+1], acceptedDurationForms)
		}
		total += time.Duration(count) * durationUnits[unit].size
		nextUnit = unit + 1
		rest = rest[digits+1:]
	}
	if total <= 0 {
		return 0, fmt.Errorf("invalid duration %q: must be longer than zero: want %s", s, acceptedDurationForms)
	}
	return total, nil
}

// formatDuration renders d the way people write policy durations: whole
// days from two days up ("7d"), otherwise hours ("4h", "24h", "36h"), with
// minutes when needed ("1h30m", "2d1h30m"). Weeks are not used, so the
// default medium rebuild delay reads "7d" as the seed writes it; seconds are dropped.
func formatDuration(d time.Duration) string {
	d = d.Truncate(time.Minute)
	if d <= 0 {
		return "0m"
	}
	var b strings.Builder
	if d >= 2*day {
		b.WriteString(strconv.FormatInt(int64(d/day), 10) + "d")
		d %= day
	}
	if h := d / time.Hour; h > 0 {
		b.WriteString(strconv.FormatInt(int64(h), 10) + "h")
		d %= time.Hour
	}
	if m := d / time.Minute; m > 0 {
		b.WriteString(strconv.FormatInt(int64(m), 10) + "m")
	}
	return b.String()
}
