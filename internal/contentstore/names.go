package contentstore

import (
	"fmt"
	"strings"
)

const (
	maxStreamNameLen = 128
	maxRevisionLen   = 128
)

func validateStreamName(name string) error {
	if name == "" {
		return fmt.Errorf("stream name is empty")
	}
	if len(name) > maxStreamNameLen {
		return fmt.Errorf("stream name %q is %d characters long; at most %d are allowed", name, len(name), maxStreamNameLen)
	}
	for i, c := range []byte(name) {
		if !isNameChar(c) && c != '/' {
			return fmt.Errorf("stream name %q: character %q at offset %d is not allowed (use a-z, 0-9, '.', '_', '-' and '/' between segments)", name, c, i)
		}
	}
	for seg := range strings.SplitSeq(name, "/") {
		switch seg {
		case "":
			return fmt.Errorf("stream name %q has an empty segment (a leading, trailing or doubled '/')", name)
		case ".", "..":
			return fmt.Errorf("stream name %q has a %q segment", name, seg)
		}
	}
	return nil
}

func isNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// validateRevision checks that a revision is one safe key segment.
func validateRevision(rev string) error {
	if rev == "" {
		return fmt.Errorf("revision is empty")
	}
	if len(rev) > maxRevisionLen {
		return fmt.Errorf("revision %q is longer than %d characters", rev, maxRevisionLen)
	}
	if rev[0] == '.' {
		return fmt.Errorf("revision %q starts with '.'", rev)
	}
	for _, c := range []byte(rev) {
		if !isNameChar(c) && !(c >= 'A' && c <= 'Z') {
			return fmt.Errorf("revision %q: character %q is not allowed (use A-Z, a-z, 0-9, '.', '_', '-')", rev, c)
		}
	}
	return nil
}
