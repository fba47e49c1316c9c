package policy

import (
	"fmt"
	"strings"
)

const (
	immediateKeyword = "immediate"
	manualKeyword    = "manual"
)

const acceptedWindowForms = "`immediate`, `manual`, or " + acceptedDurationForms

func parseWindow(s string) (Window, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case immediateKeyword:
		return Immediate(), nil
	case manualKeyword:
		return Manual(), nil
	}
	d, err := parseDuration(s)
	if err != nil {
		return Window{}, fmt.Errorf("invalid window %q: want %s", s, acceptedWindowForms)
	}
	return Within(d), nil
}

func (w Window) string() string {
	switch w.kind {
	case windowImmediate:
		return immediateKeyword
	case windowManual:
		return manualKeyword
	case windowWithin:
		return formatDuration(w.within)
	}
	return ""
}

// phrase renders the window for sentences: "immediately", "within 24h",
// "only after manual approval".
func (w Window) phrase() string {
	switch w.kind {
	case windowImmediate:
		return "immediately"
	case windowManual:
		return "only after manual approval"
	case windowWithin:
		return "within " + formatDuration(w.within)
	}
	return "by default"
}
