package daemon

import (
	"os"
	"path/filepath"
	"testing"
)

func TestStateStoreSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := openStateStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.update(func(st *persistedState) {
		st.Devices["vol-1"] = &persistedDevice{VolumeID: "vol-1", DeviceName: "/dev/sdf"}
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.updateStream("web/a", func(p *persistedStream) {
		p.VolumeID, p.Dirty, p.TargetRevision = "vol-1", true, "abc"
	}); err != nil {
		t.Fatal(err)
	}
	again, err := openStateStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	rec, ok := again.stream("web/a")
	if !ok || rec.Name != "web/a" || !rec.Dirty || rec.TargetRevision != "abc" || again.snapshot().Devices["vol-1"].DeviceName != "/dev/sdf" {
		t.Fatalf("reopened state: %+v %+v", rec, again.snapshot())
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "state.json" {
		t.Errorf("state directory holds %v, want state.json only", entries)
	}
}

func TestStateStoreKeepsMemoryOnFailedWrite(t *testing.T) {
	dir := t.TempDir()
	s, err := openStateStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.updateStream("a", func(p *persistedStream) { p.Revision = "r1" }); err != nil {
		t.Fatal(err)
	}
	// Point the store into a directory that does not exist: writing fails.
	s.path = filepath.Join(dir, "missing-dir", "state.json")
	if err := s.updateStream("a", func(p *persistedStream) { p.Revision = "r2" }); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
	if rec, _ := s.stream("a"); rec.Revision != "r1" {
		t.Errorf("after a failed write the state says %q, want the durable r1", rec.Revision)
	}
}

func TestStateStoreRejectsOtherVersionsAndGarbage(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":       "not json",
		"other version": `{"version": 99}`,
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := openStateStore(dir); err == nil {
			t.Errorf("%s: state file accepted", name)
		}
	}
}
