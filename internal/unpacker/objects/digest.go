package objects

import (
	"encoding/hex"
	"fmt"
)

func (d Digest) hex() string { return hex.EncodeToString(d[:]) }

func parseDigest(s string) (Digest, error) {
	var d Digest
	if len(s) != 2*len(d) {
		return d, fmt.Errorf("parse digest %q: want %d hex characters, have %d", s, 2*len(d), len(s))
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return d, fmt.Errorf("parse digest %q: %q is not a lower-case hex digit", s, c)
		}
	}
	if _, err := hex.Decode(d[:], []byte(s)); err != nil {
		return d, fmt.Errorf("parse digest %q: %w", s, err)
	}
	return d, nil
}
