package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/volume"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// Growing a stream's root. The provider grows a stream volume that the
// content outgrew (EC2 ModifyVolume) instead of replacing it, so that the
// volume keeps its content (no full unpack) and its snapshots stay
// incremental. The device then is larger than the volume's partition
// table. Only volumes of origin empty are grown: their layout is the
// daemon's own (GPT, the ext4 root last); a volume made from a base
// image's snapshot keeps the layout it came with, whatever the device's
// size (the booted machine grows it, as it grows any root volume).
//
// The root is grown unmounted (resize2fs offline: an online resize needs
// CAP_SYS_RESOURCE and leaves the new block groups' inode tables to the
// kernel's background thread; see volume.Grow), right before it is
// mounted: in restore
// (association, attach of a missing device, daemon start) and in release
// (after a snapshot). A mounted, idle stream whose volume grew is
// unmounted first (growMounted), so that associating it again grows it.

// growRoot grows the unmounted root of a from-scratch stream volume to
// fill the device, when the device grew, and returns the new layout (the
// old one when nothing changed). Runs on the actor.
func (s *stream) growRoot(ctx context.Context, layout *volume.Layout) (*volume.Layout, error) {
	if s.origin != wire.OriginEmpty || layout == nil {
		return layout, nil
	}
	log := s.d.log.With("stream", s.name, "volume_id", s.volumeID)
	needed, why, err := s.d.volumes.GrowthNeeded(ctx, layout, volume.GrowOptions{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("stream %q: did volume %s grow: %w", s.name, s.volumeID, err)
	}
	if !needed {
		return layout, nil
	}
	log.Info("growing the stream's root to fill its volume", "why", why)
	start := time.Now()
	grown, rep, err := s.d.volumes.Grow(ctx, layout, volume.GrowOptions{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("stream %q: grow the root of volume %s to fill it: %w", s.name, s.volumeID, err)
	}
	log.Info("stream volume grown", "device", layout.Disk, "volume_bytes", rep.DiskBytes,
		"root_bytes_before", rep.RootBefore, "root_bytes", rep.RootAfter,
		"filesystem_bytes_before", rep.FilesystemBefore, "filesystem_bytes", rep.FilesystemAfter,
		"duration", time.Since(start))
	return grown, nil
}

// growMounted grows the root of an idle, mounted stream (mounted, clean or
// dirty) whose volume grew: it unmounts the root (the stream is unmounted
// meanwhile, and stays so, with the error, when growing fails; the next
// association tries again) and restores the stream, which grows the root
// before it mounts it again. Nothing happens when the volume did not grow.
// Runs on the actor.
func (s *stream) growMounted(ctx context.Context) error {
	s.mu.Lock()
	st, layout := s.state, s.layout
	s.mu.Unlock()
	if s.origin != wire.OriginEmpty || layout == nil {
		return nil
	}
	switch st {
	case wire.StateMounted, wire.StateClean, wire.StateDirty:
	default:
		return nil
	}
	needed, _, err := s.d.volumes.GrowthNeeded(ctx, layout, volume.GrowOptions{Logger: s.d.log.With("stream", s.name)})
	if err != nil {
		return fmt.Errorf("stream %q: did volume %s grow: %w", s.name, s.volumeID, err)
	}
	if !needed {
		return nil
	}
	s.d.log.Info("unmounting the stream's root to grow it", "stream", s.name, "volume_id", s.volumeID, "state", st)
	if err := unmountRoot(s.mountDir); err != nil {
		return fmt.Errorf("stream %q: unmount the root to grow it: %w", s.name, err)
	}
	if err := s.setState(wire.StateUnmounted); err != nil {
		return err
	}
	return s.restore(ctx)
}
