package policy

import (
	"fmt"
	"strings"
)

const (
	immediateKeyword = "immediate"
	manualKeyword    = "manual"
)

const acceptedDelayForms = "`immediate`, `manual`, or " + acceptedDurationForms

func parseDelay(s string) (Delay, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case immediateKeyword:
		return Immediate(), nil
	case manualKeyword:
		return Manual(), nil
	}
	d, err := parseDuration(s)
	if err != nil {
		return Delay{}, fmt.Errorf("invalid delay %q: want %s", s, acceptedDelayForms)
	}
	return Within(d), nil
}

func (d Delay) string() string {
	switch d.kind {
	case delayImmediate:
		return immediateKeyword
	case delayManual:
		return manualKeyword
	case delayWithin:
		return formatDuration(d.within)
	}
	return ""
}

// phrase renders the delay for sentences: "immediately", "within 24h",
// "only after manual approval".
func (d Delay) phrase() string {
	switch d.kind {
	case delayImmediate:
		return "immediately"
	case delayManual:
		return "only after manual approval"
	case delayWithin:
		return "within " + formatDuration(d.within)
	}
	return "by default"
}
