// Package securitylevel is autoami's one vocabulary for how urgent a base
// image update is. The base image lookup reads levels from image tags and
// advisory feeds, the image stream reports them, and the policy maps each
// level to a rebuild delay; all of them parse with Parse, so a word one
// accepts the others accept too.
//
// Vendors use their own words: Amazon Linux and Red Hat advisories say
// "important", Red Hat's "moderate", Ubuntu's "negligible". Parse maps them to
// the canonical levels, and only canonical levels are ever stored or
// reported.
package securitylevel

import (
	"fmt"
	"strings"
)

// Level is the severity of a base image update, always one of the five
// canonical levels once parsed.
type Level string

// The levels, most severe first. Unknown is for updates that no tag or
// advisory describes.
const (
	Critical Level = "critical"
	High     Level = "high"
	Medium   Level = "medium"
	Low      Level = "low"
	Unknown  Level = "unknown"
)

// Accepted lists the words Parse accepts, for error messages and docs.
const Accepted = "critical, high (or important), medium (or moderate), low (or negligible) or unknown"

// vendorWords maps the vendors' words to the canonical levels: "important"
// (Amazon Linux, Red Hat) is high, "moderate" (Red Hat) is medium,
// "negligible" (Ubuntu) is low.
var vendorWords = map[string]Level{
	"important":  High,
	"moderate":   Medium,
	"negligible": Low,
}

// All returns the canonical levels, most severe first.
func All() []Level { return []Level{Critical, High, Medium, Low, Unknown} }

// Parse reads a level, case-insensitively and ignoring surrounding space:
// a canonical level or a vendor word that means one. An empty string is
// Unknown. The error lists the accepted words.
func Parse(s string) (Level, error) {
	word := strings.ToLower(strings.TrimSpace(s))
	if word == "" {
		return Unknown, nil
	}
	for _, l := range All() {
		if word == string(l) {
			return l, nil
		}
	}
	if l, ok := vendorWords[word]; ok {
		return l, nil
	}
	return "", fmt.Errorf("unknown security level %q: want %s", s, Accepted)
}

// String returns the level's canonical word.
func (l Level) String() string { return string(l) }
