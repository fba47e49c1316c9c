package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// stateFileVersion is bumped when persistedState changes incompatibly.
const stateFileVersion = 1

// persistedState is what survives a restart: which volumes are attached and
// which stream uses which volume at which revision. Everything else (device
// paths, mounts, progress) is found again at start.
type persistedState struct {
	Version int                         `json:"version"`
	Devices map[string]*persistedDevice `json:"devices"` // by volume ID
	Streams map[string]*persistedStream `json:"streams"` // by stream name
}

type persistedDevice struct {
	VolumeID   string `json:"volume_id"`
	DeviceName string `json:"device_name,omitempty"`
}

type persistedStream struct {
	Name     string      `json:"name"`
	VolumeID string      `json:"volume_id"`
	Origin   wire.Origin `json:"origin"`
	// Revision is the revision the volume is clean at; meaningful only
	// while Dirty is false.
	Revision string `json:"revision,omitempty"`
	// Dirty is set, and made durable, before anything on the volume changes;
	// it is cleared only with a complete, synced unpack.
	Dirty bool `json:"dirty"`
	// TargetRevision is the revision of the unpack that set Dirty.
	TargetRevision string `json:"target_revision,omitempty"`
	// PreparingVolume is set before an empty volume is partitioned and
	// formatted and cleared after: a crash in between means the volume is
	// ours to format again.
	PreparingVolume bool `json:"preparing_volume,omitempty"`
	// RootLabel is the label of the root file system the daemon created on
	// an empty volume. New volumes get one derived from the stream name
	// (rootLabelFor): the same in every target, so that the volumes are
	// identical, and another for every stream, so that a volume attached to
	// an unpacker booted from another stream's image is never taken for its
	// root. Volumes made before kept their time-based label.
	RootLabel string `json:"root_label,omitempty"`
	// Snapshot is the SnapshotMode the volume was prepared with, or "".
	Snapshot wire.SnapshotMode `json:"snapshot,omitempty"`
}

// stateStore keeps persistedState in a file, writing it durably: a temporary
// file, fsync, rename over the old one, fsync of the directory. A crash at
// any instant leaves either the old or the new state.
type stateStore struct {
	path string

	mu    sync.Mutex
	state persistedState
}

func openStateStore(dir string) (*stateStore, error) {
	s := &stateStore{path: filepath.Join(dir, "state.json")}
	b, err := os.ReadFile(s.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		s.state = persistedState{Version: stateFileVersion}
	case err != nil:
		return nil, fmt.Errorf("read state: %w", err)
	default:
		if err := json.Unmarshal(b, &s.state); err != nil {
			return nil, fmt.Errorf("parse state file %s: %w", s.path, err)
		}
		if s.state.Version != stateFileVersion {
			return nil, fmt.Errorf("state file %s has version %d, this unpacker understands %d", s.path, s.state.Version, stateFileVersion)
		}
	}
	if s.state.Devices == nil {
		s.state.Devices = map[string]*persistedDevice{}
	}
	if s.state.Streams == nil {
		s.state.Streams = map[string]*persistedStream{}
	}
	return s, nil
}

// update changes the state with fn and writes it durably before returning;
// when writing fails the in-memory state is left as it was.
func (s *stateStore) update(fn func(*persistedState)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.cloneWithLock()
	fn(&next)
	if err := writeDurably(s.path, next); err != nil {
		return err
	}
	s.state = next
	return nil
}

// snapshot returns a deep copy of the state.
func (s *stateStore) snapshot() persistedState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cloneWithLock()
}

func (s *stateStore) cloneWithLock() persistedState {
	c := persistedState{
		Version: s.state.Version,
		Devices: make(map[string]*persistedDevice, len(s.state.Devices)),
		Streams: make(map[string]*persistedStream, len(s.state.Streams)),
	}
	for k, v := range s.state.Devices {
		d := *v
		c.Devices[k] = &d
	}
	for k, v := range s.state.Streams {
		st := *v
		c.Streams[k] = &st
	}
	return c
}

// stream returns a copy of one stream's record.
func (s *stateStore) stream(name string) (persistedStream, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.state.Streams[name]
	if !ok {
		return persistedStream{}, false
	}
	return *st, true
}

// updateStream changes one stream's record durably.
func (s *stateStore) updateStream(name string, fn func(*persistedStream)) error {
	return s.update(func(st *persistedState) {
		rec, ok := st.Streams[name]
		if !ok {
			rec = &persistedStream{Name: name}
			st.Streams[name] = rec
		}
		fn(rec)
	})
}

func writeDurably(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	return writeFileDurably(path, append(b, '\n'))
}

// writeFileDurably replaces the file at path with b: a temporary file,
// fsync, rename over the old one, fsync of the directory. A crash at any
// instant leaves either the old or the new content.
func writeFileDurably(path string, b []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*.tmp")
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write state %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("fsync state %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close state %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace state %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open state directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync state directory %s: %w", dir, err)
	}
	return nil
}
