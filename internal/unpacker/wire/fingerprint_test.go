package wire

import (
	"strings"
	"testing"
)

func TestParseFingerprint(t *testing.T) {
	want := Fingerprint([]byte("certificate"))
	hexPart := strings.TrimPrefix(want, "sha256:")
	var colons []string
	for i := 0; i < len(hexPart); i += 2 {
		colons = append(colons, strings.ToUpper(hexPart[i:i+2]))
	}
	for _, in := range []string{want, hexPart, "SHA256 Fingerprint=" + strings.Join(colons, ":"), "  " + strings.ToUpper(want) + "\n"} {
		got, err := ParseFingerprint(in)
		if err != nil || got != want {
			t.Errorf("ParseFingerprint(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "sha256:", "sha256:abc", hexPart + "00", "sha256:" + strings.Repeat("g", 64)} {
		if got, err := ParseFingerprint(bad); err == nil {
			t.Errorf("ParseFingerprint(%q) = %q, want an error", bad, got)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, ok := range []string{"web", "web/al2023", "a.b_c-d/e1"} {
		if err := ValidateStreamName(ok); err != nil {
			t.Errorf("stream %q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "/web", "web/", "web//x", "../x", "a/../b", "a b", ".hidden", strings.Repeat("a", 129)} {
		if err := ValidateStreamName(bad); err == nil {
			t.Errorf("stream %q accepted", bad)
		}
	}
	for _, ok := range []string{"vol-0123456789abcdef0", "vol-demo1"} {
		if err := ValidateVolumeID(ok); err != nil {
			t.Errorf("volume %q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "vol-", "vol-../x", "snap-0123", "vol-a/b"} {
		if err := ValidateVolumeID(bad); err == nil {
			t.Errorf("volume %q accepted", bad)
		}
	}
}
