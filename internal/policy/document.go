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
//
// Version 1 called the rebuild delays "security_windows"; version 2 names
// them "rebuild_delays" (a window is the build window's word). Both are
// read; version 2 is written.
type document struct {
	Version       int                     `json:"version"`
	Name          string                  `json:"name"`
	Summary       string                  `json:"summary,omitempty"`
	RebuildDelays *documentDelays         `json:"rebuild_delays,omitempty"`
	V1Delays      *documentDelays         `json:"security_windows,omitempty"`
	MaxAge        string                  `json:"max_age"`
	BuildWindow   *documentBuildWindow    `json:"build_window,omitempty"`
	Retention     documentRetention       `json:"retention"`
	Budget        *documentBudget         `json:"budget,omitempty"`
	Prices        map[string]RegionPrices `json:"prices,omitempty"`
}

type documentDelays struct {
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
		RebuildDelays: &documentDelays{
			Critical: p.RebuildDelays.Critical.String(),
			High:     p.RebuildDelays.High.String(),
			Medium:   p.RebuildDelays.Medium.String(),
			Low:      p.RebuildDelays.Low.String(),
			Unknown:  p.RebuildDelays.Unknown.String(),
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
	delays, delaysField := doc.RebuildDelays, "rebuild_delays"
	switch doc.Version {
	case DocumentVersion:
		if doc.V1Delays != nil {
			return Policy{}, fmt.Errorf("policy document: security_windows is version 1's name; version %d calls them rebuild_delays", DocumentVersion)
		}
	case 1:
		if doc.RebuildDelays != nil {
			return Policy{}, fmt.Errorf("policy document: rebuild_delays needs version %d; version 1 calls them security_windows", DocumentVersion)
		}
		delays, delaysField = doc.V1Delays, "security_windows"
	default:
		return Policy{}, fmt.Errorf("policy document: version %d, want %d (or 1)", doc.Version, DocumentVersion)
	}
	if delays == nil {
		delays = &documentDelays{} // all unset: defaults
	}
	p := Policy{Name: doc.Name}
	fields := []struct {
		field string
		text  string
		into  *Delay
	}{
		{delaysField + ".critical", delays.Critical, &p.RebuildDelays.Critical},
		{delaysField + ".high", delays.High, &p.RebuildDelays.High},
		{delaysField + ".medium", delays.Medium, &p.RebuildDelays.Medium},
		{delaysField + ".low", delays.Low, &p.RebuildDelays.Low},
		{delaysField + ".unknown", delays.Unknown, &p.RebuildDelays.Unknown},
		{"retention.deregister_after", doc.Retention.DeregisterAfter, &p.Retention.DeregisterAfter},
	}
	for _, f := range fields {
		if strings.TrimSpace(f.text) == "" {
			continue // unset: default
		}
		parsed, err := parseDelay(f.text)
		if err != nil {
			return Policy{}, fmt.Errorf("policy document %s: %w", f.field, err)
		}
		*f.into = parsed
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
