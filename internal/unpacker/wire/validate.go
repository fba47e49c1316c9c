package wire

import (
	"regexp"
	"strings"
)

var (
	// Stream names look like "web/al2023": path-like, no "..", no empty parts.
	streamNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$`)
	// EBS volume IDs: "vol-" and hex digits; local mode accepts any letters
	// and digits so a demo may say "vol-demo1".
	volumeIDRE = regexp.MustCompile(`^vol-[A-Za-z0-9]{1,64}$`)
	// Content hashes are lower-case hex SHA-256 digests.
	objectHashRE = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ValidateStreamName returns a *Error naming the problem when name is not a
// stream name: 1 to 128 characters of letters, digits, '.', '_', '-' in
// '/'-separated parts, each starting with a letter or digit.
func ValidateStreamName(name string) error {
	if len(name) == 0 || len(name) > 128 || !streamNameRE.MatchString(name) || strings.Contains(name, "..") {
		return Errorf(CodeBadRequest, "stream name %q is not valid: want 1-128 characters of letters, digits, '.', '_', '-' in '/'-separated parts, each starting with a letter or digit", name)
	}
	return nil
}

// ValidateVolumeID returns a *Error naming the problem when id is not a volume ID.
func ValidateVolumeID(id string) error {
	if !volumeIDRE.MatchString(id) {
		return Errorf(CodeBadRequest, "volume ID %q is not valid: want \"vol-\" followed by letters and digits", id)
	}
	return nil
}

// ValidateObjectHash returns a *Error when h is not a lower-case hex SHA-256.
func ValidateObjectHash(h string) error {
	if !objectHashRE.MatchString(h) {
		return Errorf(CodeBadRequest, "object hash %q is not a lower-case hex SHA-256 digest", h)
	}
	return nil
}
