package contentstore

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// A current revision's time is its record's; an older one's is when its
// manifest was written; one the store lacks is ErrNotFound.
func TestRevisionTime(t *testing.T) {
	e := newEnv(t)
	s := e.store(Options{})
	root1, m1 := writeTree(t, map[string][]byte{"a": content(1, 100)})
	before := time.Now().Add(-time.Minute)
	rec1, _ := uploadRevision(t, e, s, "web", root1, m1)
	root2, m2 := writeTree(t, map[string][]byte{"a": content(2, 100)})
	rec2, _ := uploadRevision(t, e, s, "web", root2, m2)

	got, err := s.RevisionTime(e.ctx, "web", rec2.Revision)
	if err != nil || !got.Equal(rec2.CreatedAt) {
		t.Errorf("current revision: %v, %v; want the record's %v", got, err, rec2.CreatedAt)
	}
	old, err := s.RevisionTime(e.ctx, "web", rec1.Revision)
	if err != nil || old.Before(before) || old.After(time.Now().Add(time.Minute)) {
		t.Errorf("older revision: %v, %v; want its manifest's write time", old, err)
	}
	missing := strings.Repeat("ab", 32)
	if _, err := s.RevisionTime(e.ctx, "web", missing); !errors.Is(err, objects.ErrNotFound) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing revision: %v; want ErrNotFound naming it", err)
	}
}
