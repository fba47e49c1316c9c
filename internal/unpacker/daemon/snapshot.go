package daemon

import (
	"context"
	"errors"
	"fmt"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/volume"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

func (d *daemon) prepareForSnapshot(ctx context.Context, req wire.PrepareForSnapshotRequest) (wire.Stream, error) {
	s, err := d.streamByName(req.Stream)
	if err != nil {
		return wire.Stream{}, err
	}
	if err := validRevision("revision", req.Revision); err != nil {
		return wire.Stream{}, err
	}
	var want wire.StreamState
	switch req.Mode {
	case wire.SnapshotFreeze:
		want = wire.StateFrozen
	case wire.SnapshotUnmount:
		want = wire.StateUnmountedForSnapshot
	default:
		return wire.Stream{}, wire.Errorf(wire.CodeBadRequest, "snapshot mode %q of stream %q is not %q or %q", req.Mode, req.Stream, wire.SnapshotFreeze, wire.SnapshotUnmount)
	}
	s.touch()
	err = s.do(ctx, func() error {
		s.mu.Lock()
		st, rev := s.state, s.revision
		if st == want && rev == req.Revision {
			s.mu.Unlock()
			return nil // prepared already
		}
		if st != wire.StateClean || rev != req.Revision {
			defer s.mu.Unlock()
			return s.conflictWithLock("prepare a snapshot of revision " + req.Revision + " of")
		}
		s.mu.Unlock()
		// Record the mode first: a restart then knows a frozen file system
		// may need thawing. The content stays clean at the revision.
		if err := d.store.updateStream(s.name, func(p *persistedStream) { p.Snapshot = req.Mode }); err != nil {
			return err
		}
		if err := syncFS(s.mountDir); err != nil {
			return err
		}
		var err error
		if req.Mode == wire.SnapshotFreeze {
			err = freezeFS(s.mountDir)
		} else if err = unmountRoot(s.mountDir); err == nil {
			if err = s.normalize(ctx); err != nil {
				// Mounted again, the volume is clean as before.
				s.mu.Lock()
				layout := s.layout
				s.mu.Unlock()
				if merr := mountRoot(layout.Root.Device, layout.Root.Filesystem, s.mountDir); merr != nil {
					err = errors.Join(err, merr)
				}
			}
		}
		if err != nil {
			_ = d.store.updateStream(s.name, func(p *persistedStream) { p.Snapshot = "" })
			return err
		}
		if err := s.setState(want); err != nil {
			return err
		}
		d.log.Info("stream prepared for snapshot", "stream", s.name, "revision", rev, "mode", req.Mode)
		return nil
	})
	return s.view(), err
}

func (d *daemon) release(ctx context.Context, req wire.ReleaseRequest) (wire.Stream, error) {
	s, err := d.streamByName(req.Stream)
	if err != nil {
		return wire.Stream{}, err
	}
	s.touch()
	err = s.do(ctx, func() error {
		s.mu.Lock()
		st, layout := s.state, s.layout
		s.mu.Unlock()
		switch st {
		case wire.StateFrozen:
			if err := thawFS(s.mountDir); err != nil {
				return err
			}
		case wire.StateUnmountedForSnapshot:
			// The snapshot is taken: a volume that grew meanwhile is grown
			// now, while the root is unmounted. A failure is no reason to
			// keep the stream unmounted: the next association tries again.
			if grown, err := s.growRoot(ctx, layout); err != nil {
				d.log.Warn("release: the stream's volume grew but its root could not be grown", "stream", s.name, "err", err)
			} else if grown != layout {
				layout = grown
				s.mu.Lock()
				s.layout = layout
				s.mu.Unlock()
			}
			if err := mountRoot(layout.Root.Device, layout.Root.Filesystem, s.mountDir); err != nil {
				return err
			}
		default:
			return nil // nothing to release: idempotent
		}
		if err := d.store.updateStream(s.name, func(p *persistedStream) { p.Snapshot = "" }); err != nil {
			return err
		}
		if err := s.setState(wire.StateClean); err != nil {
			return err
		}
		d.log.Info("stream released", "stream", s.name)
		return nil
	})
	return s.view(), err
}

// normalize makes an unmounted from-scratch volume's root hold bytes that
// depend only on its content (volume.Normalize): the same stream's volumes
// in every target are then identical, which is the promise of one image
// everywhere. Volumes from a snapshot keep what their base left; a frozen
// file system cannot be normalized (it is mounted).
func (s *stream) normalize(ctx context.Context) error {
	s.mu.Lock()
	layout := s.layout
	s.mu.Unlock()
	if s.origin != wire.OriginEmpty || layout == nil {
		return nil
	}
	if err := s.d.volumes.Normalize(ctx, layout, volume.NormalizeOptions{Logger: s.d.log.With("stream", s.name)}); err != nil {
		return fmt.Errorf("prepare stream %q for a snapshot: %w", s.name, err)
	}
	return nil
}
