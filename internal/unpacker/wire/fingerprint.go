package wire

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Fingerprint is the SHA-256 fingerprint of a DER certificate in the form
// the daemon prints and the client pins: "sha256:" and 64 lower-case hex digits.
func Fingerprint(certDER []byte) string {
	sum := sha256.Sum256(certDER)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ParseFingerprint accepts a fingerprint as Fingerprint prints it, or as
// OpenSSL does (upper case, colons, with or without a "sha256:" or
// "SHA256 Fingerprint=" prefix), and returns it in Fingerprint's form.
func ParseFingerprint(s string) (string, error) {
	t := strings.TrimSpace(s)
	for _, p := range []string{"sha256:", "SHA256:", "sha256 Fingerprint=", "SHA256 Fingerprint="} {
		t = strings.TrimPrefix(t, p)
	}
	t = strings.ToLower(strings.ReplaceAll(t, ":", ""))
	if b, err := hex.DecodeString(t); err != nil || len(b) != sha256.Size {
		return "", Errorf(CodeBadRequest, "certificate fingerprint %q is not a SHA-256 fingerprint (64 hex digits)", s)
	}
	return "sha256:" + t, nil
}
