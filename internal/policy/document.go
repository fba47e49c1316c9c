package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
)

// document is the stored JSON form of a Policy: every rule resolved (defaults
// written out), durations in ParseDuration's notation, plus the summary line
// so a person reading the parameter sees the rules at a glance.
type document struct {
	Version         int                     `json:"version"`
	Name            string                  `json:"name"`
	Summary         string                  `json:"summary,omitempty"`
	SecurityWindows documentWindows         `json:"security_windows"`
	MaxAge          string                  `json:"max_age"`
	BuildWindow     *documentBuildWindow    `json:"build_window,omitempty"`
	Retention       documentRetention       `json:"retention"`
	Budget          *documentBudget         `json:"budget,omitempty"`
	Prices          map[string]RegionPrices `json:"prices,omitempty"`
}

type documentWindows struct {
	Critical string `json:"critical"`
	High     string `json:"high"`
	Medium   string `json:"medium"`
	Low      string `json:"low"`
	Unknown  string `json:"unknown"`
}

type documentBuildWindow struct {
	Start    string `json:"start"`
	End      string `json:"end"`
	Timezone string `json:"timezone"`
}

type documentRetention struct {
	KeepRevisions   int    `json:"keep_revisions"`
	DeregisterAfter string `json:"deregister_after"`
	DeleteSnapshots bool   `json:"delete_snapshots"`
}

type documentBudget struct {
	MonthlyUSD float64 `json:"monthly_usd"`
	UrgentUSD  float64 `json:"urgent_usd"`
}

func (p Policy) document() ([]byte, error) {
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("policy %q: %w", p.Name, err)
	}
	p = p.withDefaults()
	doc := document{
		Version: DocumentVersion,
		Name:    p.Name,
		Summary: p.summary(),
		SecurityWindows: documentWindows{
			Critical: p.SecurityWindows.Critical.String(),
			High:     p.SecurityWindows.High.String(),
			Medium:   p.SecurityWindows.Medium.String(),
			Low:      p.SecurityWindows.Low.String(),
			Unknown:  p.SecurityWindows.Unknown.String(),
		},
		MaxAge: formatDuration(p.MaxAge),
		Retention: documentRetention{
			KeepRevisions:   p.Retention.KeepRevisions,
			DeregisterAfter: p.Retention.DeregisterAfter.String(),
			DeleteSnapshots: p.Retention.DeleteSnapshots,
		},
		Prices: p.Prices,
	}
	if bw := p.BuildWindow; bw != nil {
		doc.BuildWindow = &documentBuildWindow{Start: bw.Start(), End: bw.End(), Timezone: bw.Zone()}
	}
	if b := p.Budget; b != nil {
		doc.Budget = &documentBudget{MonthlyUSD: b.MonthlyUSD, UrgentUSD: b.UrgentUSD}
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode policy %q: %w", p.Name, err)
	}
	return out, nil
}

func parseDocument(data []byte) (Policy, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var doc document
	if err := dec.Decode(&doc); err != nil {
		return Policy{}, fmt.Errorf("policy document: %w", err)
	}
	if dec.More() {
		return Policy{}, fmt.Errorf("policy document: trailing data after the JSON object")
	}
	if doc.Version != DocumentVersion {
		return Policy{}, fmt.Errorf("policy document: version %d, want %d", doc.Version, DocumentVersion)
	}
	p := Policy{Name: doc.Name}
	windows := []struct {
		field string
		text  string
		into  *Window
	}{
		{"security_windows.critical", doc.SecurityWindows.Critical, &p.SecurityWindows.Critical},
		{"security_windows.high", doc.SecurityWindows.High, &p.SecurityWindows.High},
		{"security_windows.medium", doc.SecurityWindows.Medium, &p.SecurityWindows.Medium},
		{"security_windows.low", doc.SecurityWindows.Low, &p.SecurityWindows.Low},
		{"security_windows.unknown", doc.SecurityWindows.Unknown, &p.SecurityWindows.Unknown},
		{"retention.deregister_after", doc.Retention.DeregisterAfter, &p.Retention.DeregisterAfter},
	}
	for _, w := range windows {
		if strings.TrimSpace(w.text) == "" {
			continue // unset: default
		}
		parsed, err := parseWindow(w.text)
		if err != nil {
			return Policy{}, fmt.Errorf("policy document %s: %w", w.field, err)
		}
		*w.into = parsed
	}
	if doc.MaxAge != "" {
		d, err := parseDuration(doc.MaxAge)
		if err != nil {
			return Policy{}, fmt.Errorf("policy document max_age: %w", err)
		}
		p.MaxAge = d
	}
	if bw := doc.BuildWindow; bw != nil {
		w, err := parseBuildWindow(bw.Start, bw.End, bw.Timezone)
		if err != nil {
			return Policy{}, fmt.Errorf("policy document build_window: %w", err)
		}
		p.BuildWindow = &w
	}
	if doc.Retention.KeepRevisions < 0 {
		return Policy{}, fmt.Errorf("policy document retention.keep_revisions: %d is negative", doc.Retention.KeepRevisions)
	}
	p.Retention.KeepRevisions = doc.Retention.KeepRevisions
	p.Retention.DeleteSnapshots = doc.Retention.DeleteSnapshots
	if b := doc.Budget; b != nil {
		p.Budget = &Budget{MonthlyUSD: b.MonthlyUSD, UrgentUSD: b.UrgentUSD}
	}
	if len(doc.Prices) > 0 {
		p.Prices = maps.Clone(doc.Prices)
	}
	if err := p.validate(); err != nil {
		return Policy{}, fmt.Errorf("policy document: %w", err)
	}
	return p.withDefaults(), nil
}

// Equal reports whether p and q state the same rules once defaults are
// applied (names included), however their durations were written.
func (p Policy) Equal(q Policy) bool {
	a, errA := p.document()
	b, errB := q.document()
	return errA == nil && errB == nil && bytes.Equal(a, b)
}
