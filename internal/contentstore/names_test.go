package contentstore

import (
	"strings"
	"testing"
)

func TestValidateStreamName(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  string // "" when valid
	}{
		{"web", ""},
		{"web/al2023", ""},
		{"base/bookworm-2024.06_x86-64", ""},
		{"a", ""},
		{"a/b/c/d", ""},
		{"...a", ""},
		{strings.Repeat("a", 128), ""},
		{"", "empty"},
		{strings.Repeat("a", 129), "129 characters"},
		{"Web", `character 'W'`},
		{"web al2023", `character ' '`},
		{"web\\al", `character '\\'`},
		{"web:al", `character ':'`},
		{"wéb", "not allowed"},
		{"/web", "empty segment"},
		{"web/", "empty segment"},
		{"web//al", "empty segment"},
		{".", `"." segment`},
		{"web/./al", `"." segment`},
		{"..", `".." segment`},
		{"web/..", `".." segment`},
		{"web\x00", "not allowed"},
	} {
		err := ValidateStreamName(tc.name)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("ValidateStreamName(%q): %v", tc.name, err)
		case tc.err != "" && err == nil:
			t.Errorf("ValidateStreamName(%q) accepted it; want an error containing %q", tc.name, tc.err)
		case tc.err != "" && !strings.Contains(err.Error(), tc.err):
			t.Errorf("ValidateStreamName(%q) = %q; want it to contain %q", tc.name, err, tc.err)
		}
	}
}

func TestValidateRevision(t *testing.T) {
	for rev, ok := range map[string]bool{
		"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08": true,
		"v1.2_beta-3":            true,
		"":                       false,
		".hidden":                false,
		"a/b":                    false,
		"a b":                    false,
		strings.Repeat("f", 129): false,
	} {
		if err := validateRevision(rev); (err == nil) != ok {
			t.Errorf("validateRevision(%q) = %v, want ok=%v", rev, err, ok)
		}
	}
}

func TestLocationPrefixIsNormalized(t *testing.T) {
	for in, want := range map[string]string{"": "", "/": "", "a": "a/", "a/": "a/", "/a/b//": "a/b/"} {
		s := New(nil, Location{Bucket: "b", Prefix: in}, Options{})
		if got := s.Location().Prefix; got != want {
			t.Errorf("prefix %q became %q, want %q", in, got, want)
		}
	}
	s := New(nil, Location{Bucket: "bkt", Prefix: "p"}, Options{})
	var d [32]byte
	d[0] = 0xab
	if got, want := s.ObjectKey(d), "p/objects/ab/ab"+strings.Repeat("0", 62); got != want {
		t.Errorf("ObjectKey = %q, want %q", got, want)
	}
	if got, want := s.ManifestURI("web/al2023", "r1"), "s3://bkt/p/streams/web/al2023/revisions/r1.manifest"; got != want {
		t.Errorf("ManifestURI = %q, want %q", got, want)
	}
}
