package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
)

// currentManifestDir holds, per volume, the canonical serialization of the
// manifest of the revision its stream was last recorded clean at. An unpack
// of a clean stream hands it to the engine (patch.Options.Current), which
// then need not scan the whole volume.
const currentManifestDir = "current-manifest"

func (d *daemon) currentManifestPath(volumeID string) string {
	return filepath.Join(d.cfg.StateDir, currentManifestDir, volumeID)
}

// storeCurrentManifest writes the manifest of the revision being unpacked
// durably, before the stream is recorded clean at it. A crash before the
// clean record leaves the stream dirty, so the file is not used; a file that
// does not hash to the clean revision is never used.
func (d *daemon) storeCurrentManifest(volumeID string, raw []byte) error {
	path := d.currentManifestPath(volumeID)
	if err := writeFileDurably(path, raw); err != nil {
		os.Remove(path) // a stale file costs nothing (its digest is checked), but keep it tidy
		return fmt.Errorf("store the manifest of the unpacked revision: %w", err)
	}
	return nil
}

// loadCurrentManifest returns the stored manifest of volumeID when it is the
// one of revision, or nil and why not.
func (d *daemon) loadCurrentManifest(volumeID, revision string) (*manifest.Manifest, string) {
	path := d.currentManifestPath(volumeID)
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "no manifest of the clean revision is stored"
	}
	if err != nil {
		return nil, fmt.Sprintf("read stored manifest %s: %v", path, err)
	}
	m, err := manifest.Unmarshal(raw)
	if err != nil {
		return nil, fmt.Sprintf("stored manifest %s: %v", path, err)
	}
	got, err := m.Digest()
	if err != nil {
		return nil, fmt.Sprintf("digest of stored manifest %s: %v", path, err)
	}
	if got.String() != revision {
		return nil, fmt.Sprintf("stored manifest %s is of revision %s, the volume is clean at %s", path, got, revision)
	}
	return m, ""
}

// dropCurrentManifest removes the stored manifest of a volume.
func (d *daemon) dropCurrentManifest(volumeID string) error {
	if err := os.Remove(d.currentManifestPath(volumeID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stored manifest: %w", err)
	}
	return nil
}
