package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/volume"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// rootLabelPrefix starts the label of every root file system the daemon
// creates; the rest is derived from the stream (see rootLabelFor).
const rootLabelPrefix = "autoami-"

// rootLabelFor is the root label of a new volume of stream: the prefix and
// 8 hex digits of a hash of the stream name. The label is in the boot
// loaders' menus and on the kernel command line, so it must be the same in
// every target for the volumes to be identical; it differs between streams
// (so that a volume attached to an unpacker booted from another stream's
// image is never taken for its root).
func rootLabelFor(stream string) string {
	sum := sha256.Sum256([]byte("autoami root label\x00" + stream))
	return rootLabelPrefix + hex.EncodeToString(sum[:4])
}

func (d *daemon) associateStream(ctx context.Context, req wire.AssociateStreamRequest) (wire.Stream, error) {
	if err := wire.ValidateStreamName(req.Stream); err != nil {
		return wire.Stream{}, err
	}
	if err := wire.ValidateVolumeID(req.VolumeID); err != nil {
		return wire.Stream{}, err
	}
	if req.Origin != wire.OriginEmpty && req.Origin != wire.OriginSnapshot {
		return wire.Stream{}, wire.Errorf(wire.CodeBadRequest, "origin %q of stream %q is not %q or %q", req.Origin, req.Stream, wire.OriginEmpty, wire.OriginSnapshot)
	}
	d.structMu.Lock()
	defer d.structMu.Unlock()

	d.mu.Lock()
	e, attached := d.devices[req.VolumeID]
	existing := d.streams[req.Stream]
	var other string
	for _, s := range d.streams {
		if s.volumeID == req.VolumeID && s.name != req.Stream {
			other = s.name
		}
	}
	d.mu.Unlock()
	switch {
	case !attached:
		return wire.Stream{}, wire.Errorf(wire.CodeNotFound, "volume %s is not attached: call attach-device first", req.VolumeID)
	case existing != nil && (existing.volumeID != req.VolumeID || existing.origin != req.Origin):
		return wire.Stream{}, wire.Errorf(wire.CodeConflict, "stream %q is associated with volume %s (origin %s); forget it before associating it with volume %s (origin %s)",
			req.Stream, existing.volumeID, existing.origin, req.VolumeID, req.Origin)
	case other != "":
		return wire.Stream{}, wire.Errorf(wire.CodeConflict, "volume %s is used by stream %q", req.VolumeID, other)
	case e.path == "":
		return wire.Stream{}, wire.Errorf(wire.CodeUnavailable, "volume %s is attached but its device is not visible: attach it again", req.VolumeID)
	}
	if existing != nil {
		// Same association again: make sure it is set up (it may have
		// failed half-way, or lost its device), else a no-op.
		err := existing.do(ctx, func() error {
			switch existing.currentState() {
			case wire.StateNoDevice, wire.StateUnmounted:
				return existing.restore(ctx)
			}
			// The volume may have grown since (the provider grows a
			// volume the content outgrew): fill it.
			return existing.growMounted(ctx)
		})
		return existing.view(), err
	}

	rec := persistedStream{Name: req.Stream, VolumeID: req.VolumeID, Origin: req.Origin}
	if err := d.store.updateStream(req.Stream, func(p *persistedStream) { *p = rec }); err != nil {
		return wire.Stream{}, err
	}
	s := newStream(d, rec)
	d.mu.Lock()
	d.streams[req.Stream] = s
	d.mu.Unlock()
	err := s.do(ctx, func() error { return s.restore(ctx) })
	if err != nil {
		if p, ok := d.store.stream(req.Stream); ok && !p.PreparingVolume {
			// Nothing of ours is on the volume: drop the association so that
			// the caller may try again (e.g. with another origin).
			d.dropStream(s)
		}
		return wire.Stream{}, fmt.Errorf("associate stream %q with volume %s: %w", req.Stream, req.VolumeID, err)
	}
	d.log.Info("stream associated", "stream", req.Stream, "volume_id", req.VolumeID, "origin", req.Origin)
	return s.view(), nil
}

// dropStream stops a stream's actor and removes it from memory and the state file.
func (d *daemon) dropStream(s *stream) {
	s.stop()
	d.mu.Lock()
	if d.streams[s.name] == s {
		delete(d.streams, s.name)
	}
	d.mu.Unlock()
	if err := d.store.update(func(st *persistedState) { delete(st.Streams, s.name) }); err != nil {
		d.log.Error("drop stream from state", "stream", s.name, "err", err)
	}
}

// restore brings a stream to the state its record and its volume say, after
// a start of the daemon or an association: find the device and the root
// partition (preparing an empty volume), mount it unless it is unmounted for
// a snapshot, and take the recorded revision or dirt. Runs on the actor.
func (s *stream) restore(ctx context.Context) error {
	rec, ok := s.d.store.stream(s.name)
	if !ok {
		return fmt.Errorf("stream %q has no record in the state file", s.name)
	}
	dev := s.d.devicePath(s.volumeID)
	if dev == "" {
		s.mu.Lock()
		s.device = ""
		terr := s.setStateWithLock(wire.StateNoDevice)
		s.mu.Unlock()
		return errors.Join(wire.Errorf(wire.CodeUnavailable, "stream %q: volume %s has no device: attach it", s.name, s.volumeID), terr)
	}
	s.mu.Lock()
	s.device = dev
	s.mu.Unlock()

	layout, err := s.findLayout(ctx, dev, rec)
	if err != nil {
		return s.fail(wire.StateUnmounted, err)
	}
	rec, _ = s.d.store.stream(s.name) // findLayout may have changed it
	s.mu.Lock()
	s.layout = layout
	s.rootLabel = rec.RootLabel
	s.mu.Unlock()

	mounted, err := isMountPoint(s.mountDir)
	if err != nil {
		return s.fail(wire.StateUnmounted, err)
	}
	next := wire.StateMounted
	switch {
	case rec.Dirty:
		next = wire.StateDirty
	case rec.Revision != "":
		next = wire.StateClean
	}
	switch {
	case rec.Snapshot == wire.SnapshotUnmount && !mounted && !rec.Dirty:
		next = wire.StateUnmountedForSnapshot
		// The daemon may have stopped half-way through normalizing;
		// normalizing again finishes it (and changes nothing otherwise).
		if err := s.normalize(ctx); err != nil {
			return s.fail(wire.StateUnmounted, err)
		}
	case rec.Snapshot == wire.SnapshotFreeze && mounted && !rec.Dirty:
		// The daemon stopped while the file system was frozen; it still is.
		next = wire.StateFrozen
	default:
		if rec.Snapshot != "" {
			// Frozen before a reboot (which thawed it by unmounting), or
			// mounted again by someone: no longer prepared for a snapshot.
			if err := s.d.store.updateStream(s.name, func(p *persistedStream) { p.Snapshot = "" }); err != nil {
				return s.fail(wire.StateUnmounted, err)
			}
		}
		if !mounted {
			if rec.Dirty {
				// Re-verify before use: the machine may have died mid-write.
				if err := checkFS(ctx, layout.Root.Device, layout.Root.Filesystem); err != nil {
					return s.fail(wire.StateDirty, err)
				}
			}
			// A volume that grew is grown before it is mounted.
			grown, err := s.growRoot(ctx, layout)
			if err != nil {
				return s.fail(wire.StateUnmounted, err)
			}
			if grown != layout {
				layout = grown
				s.mu.Lock()
				s.layout = layout
				s.mu.Unlock()
			}
			if err := mountRoot(layout.Root.Device, layout.Root.Filesystem, s.mountDir); err != nil {
				return s.fail(wire.StateUnmounted, err)
			}
		}
	}
	s.mu.Lock()
	if err := s.setStateWithLock(next); err != nil {
		s.lastErr = err.Error()
		s.mu.Unlock()
		return err
	}
	s.revision = rec.Revision
	s.target = rec.TargetRevision
	s.lastErr = ""
	s.mu.Unlock()
	s.d.log.Info("stream ready", "stream", s.name, "state", next, "revision", rec.Revision, "device", dev, "root", layout.Root.Device)
	return nil
}

// findLayout finds the volume's root partition, laying out an empty volume
// first. A volume that is not blank and carries no layout of ours is never
// overwritten.
func (s *stream) findLayout(ctx context.Context, dev string, rec persistedStream) (*volume.Layout, error) {
	vols := s.d.volumes
	if s.origin == wire.OriginSnapshot {
		layout, err := vols.Find(ctx, dev, volume.FindOptions{Logger: s.d.log})
		if err != nil {
			return nil, fmt.Errorf("find the root partition of volume %s (%s): %w", s.volumeID, dev, err)
		}
		return layout, nil
	}
	if !rec.PreparingVolume {
		if layout, err := vols.Find(ctx, dev, volume.FindOptions{RootLabel: rec.RootLabel, Logger: s.d.log}); err == nil &&
			strings.HasPrefix(layout.Root.Label, rootLabelPrefix) && layout.ESP != nil && layout.BIOSBoot != nil {
			if rec.RootLabel != layout.Root.Label {
				if err := s.d.store.updateStream(s.name, func(p *persistedStream) { p.RootLabel = layout.Root.Label }); err != nil {
					return nil, err
				}
			}
			return layout, nil
		}
		blank, found, err := isBlank(ctx, dev)
		if err != nil {
			return nil, err
		}
		if !blank {
			return nil, wire.Errorf(wire.CodeConflict, "volume %s (%s) is not blank (%s) and carries no autoami layout: refusing to overwrite it; use origin %q for a volume made from a snapshot",
				s.volumeID, dev, found, wire.OriginSnapshot)
		}
	}
	label := rec.RootLabel
	if label == "" {
		label = rootLabelFor(s.name)
	}
	// From here on the volume is ours, even if we crash half-way.
	if err := s.d.store.updateStream(s.name, func(p *persistedStream) {
		p.PreparingVolume, p.RootLabel, p.Revision, p.Dirty = true, label, "", false
	}); err != nil {
		return nil, err
	}
	if err := s.setState(wire.StatePreparingVolume); err != nil {
		return nil, err
	}
	start := time.Now()
	layout, err := vols.Create(ctx, dev, volume.CreateOptions{
		RootLabel:    label,
		Seed:         s.name,
		AssumeZeroed: !rec.PreparingVolume, // a half-prepared volume holds our earlier writes
		Overwrite:    rec.PreparingVolume,
		Logger:       s.d.log,
	})
	if err != nil {
		return nil, fmt.Errorf("lay out empty volume %s (%s): %w", s.volumeID, dev, err)
	}
	if err := s.d.store.updateStream(s.name, func(p *persistedStream) { p.PreparingVolume = false }); err != nil {
		return nil, err
	}
	s.d.log.Info("empty volume laid out", "stream", s.name, "volume_id", s.volumeID, "device", dev,
		"root", layout.Root.Device, "label", label, "duration", time.Since(start))
	return layout, nil
}

// forgetStream unmounts a stream's volume (thawing it first) and drops it.
func (d *daemon) forgetStream(ctx context.Context, req wire.ForgetStreamRequest) error {
	d.structMu.Lock()
	defer d.structMu.Unlock()
	s, err := d.streamByName(req.Stream)
	var we *wire.Error
	if errors.As(err, &we) && we.Code == wire.CodeNotFound {
		return nil // forgotten already: idempotent
	}
	if err != nil {
		return err
	}
	err = s.do(ctx, func() error {
		s.mu.Lock()
		st := s.state
		if st.Busy() {
			defer s.mu.Unlock()
			return s.conflictWithLock("forget")
		}
		s.mu.Unlock()
		if st == wire.StateFrozen {
			if err := thawFS(s.mountDir); err != nil {
				return err
			}
		}
		if err := unmountRoot(s.mountDir); err != nil {
			return err
		}
		if err := os.Remove(s.mountDir); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove mount point: %w", err)
		}
		if err := os.Remove(d.scanCachePath(s.volumeID)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove scan cache: %w", err)
		}
		return d.dropCurrentManifest(s.volumeID)
	})
	if err != nil {
		return err
	}
	d.dropStream(s)
	d.log.Info("stream forgotten", "stream", req.Stream, "volume_id", s.volumeID)
	return nil
}
