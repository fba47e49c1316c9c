package publisher

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/client"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// daemonCallTimeout bounds the calls made on the way out (release, cancel)
// with a context that outlives the caller's.
const daemonCallTimeout = 2 * time.Minute

// associate makes the daemon find the attached volume's device and bind the
// stream to it, then settles what an interrupted run left: a stream held
// ready for a snapshot of this revision goes straight to the snapshot, one
// of another revision is released, an unpack of another revision is
// cancelled.
func (a *actor) associate(ctx context.Context) (Step, error) {
	c := a.unpacker
	volumeID := a.rec.VolumeID
	st, err := c.Status(ctx)
	if err != nil {
		return "", fmt.Errorf("unpacker status: %w", err)
	}
	for _, s := range st.Streams {
		if s.Name == a.pub.Stream && s.VolumeID != volumeID {
			if err := a.forgetStale(ctx, s); err != nil {
				return "", err
			}
		}
	}
	if _, err := c.AttachDevice(ctx, wire.AttachDeviceRequest{
		VolumeID: volumeID, DeviceName: a.device, SizeBytes: int64(aws.ToInt32(a.volume.Size)) * gib,
	}); err != nil {
		return "", fmt.Errorf("unpacker: find the device of volume %s (%s): %w", volumeID, a.device, err)
	}
	s, err := c.AssociateStream(ctx, wire.AssociateStreamRequest{Stream: a.pub.Stream, VolumeID: volumeID, Origin: wire.OriginEmpty})
	if err != nil {
		return "", fmt.Errorf("unpacker: associate stream %q with volume %s: %w", a.pub.Stream, volumeID, err)
	}
	a.info(StepAssociate, "stream %q on volume %s is %s%s", s.Name, volumeID, s.State, atRevision(s))
	switch {
	case (s.State == wire.StateFrozen || s.State == wire.StateUnmountedForSnapshot) && s.Revision == a.pub.Revision:
		a.prepared = true
		return StepCreateSnapshot, nil
	case s.State == wire.StateFrozen || s.State == wire.StateUnmountedForSnapshot:
		if _, err := c.Release(ctx, wire.ReleaseRequest{Stream: s.Name}); err != nil {
			return "", fmt.Errorf("unpacker: release stream %q left ready for a snapshot of %s: %w", s.Name, s.Revision, err)
		}
	case s.State.Busy() && s.TargetRevision != a.pub.Revision:
		a.info(StepAssociate, "cancelling the unpack of revision %s left running", s.TargetRevision)
		if _, err := c.CancelUnpack(ctx, wire.CancelUnpackRequest{Stream: s.Name, Revision: s.TargetRevision}); err != nil {
			return "", fmt.Errorf("unpacker: cancel the unpack of revision %s: %w", s.TargetRevision, err)
		}
	}
	return StepUnpack, nil
}

// forgetStale makes the daemon forget the stream it holds on another
// volume: one this run replaced, or one that is gone or no longer attached
// here (deleted while the unpacker was stopped). A volume of another
// publication attached here is a conflict: one publication per stream and
// target.
func (a *actor) forgetStale(ctx context.Context, s wire.Stream) error {
	if !a.retired[s.VolumeID] {
		out, err := a.aws.EC2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{{Name: aws.String("volume-id"), Values: []string{s.VolumeID}}}})
		if err != nil {
			return fmt.Errorf("DescribeVolumes %s (the volume the unpacker holds stream %q on): %w", s.VolumeID, s.Name, err)
		}
		for _, v := range out.Volumes {
			if a.attachedHere(v) && tagValue(v.Tags, TagPublication) != a.pub.ID {
				return fmt.Errorf("the unpacker holds stream %q on volume %s of publication %q: one publication per stream and target",
					s.Name, s.VolumeID, tagValue(v.Tags, TagPublication))
			}
		}
	}
	a.info(StepAssociate, "the unpacker forgets stream %q on volume %s, which is not the stream volume any more", s.Name, s.VolumeID)
	if err := a.unpacker.ForgetStream(ctx, wire.ForgetStreamRequest{Stream: s.Name}); err != nil && !isWireCode(err, wire.CodeNotFound) {
		return fmt.Errorf("unpacker: forget stream %q on volume %s: %w", s.Name, s.VolumeID, err)
	}
	if err := a.unpacker.DetachDevice(ctx, wire.DetachDeviceRequest{VolumeID: s.VolumeID}); err != nil && !isWireCode(err, wire.CodeNotFound) {
		a.info(StepAssociate, "the unpacker keeps the device of volume %s: %v", s.VolumeID, err)
	}
	return nil
}

func atRevision(s wire.Stream) string {
	switch {
	case s.Revision != "":
		return " at revision " + s.Revision
	case s.TargetRevision != "":
		return " (unpacking revision " + s.TargetRevision + ")"
	}
	return ""
}

// unpack has the daemon bring the stream volume to the revision, handing it
// presigned URLs of the objects it asks for. Interrupted, it cancels the
// daemon's unpack, leaving the stream dirty for the next run to resume.
func (a *actor) unpack(ctx context.Context) error {
	store, presigner, expiry := a.p.cfg.Store, a.p.cfg.Presigner, a.p.cfg.URLExpiry
	manifestURL, err := store.PresignManifest(ctx, presigner, a.pub.Stream, a.pub.Revision, expiry)
	if err != nil {
		return err
	}
	sign := func(ctx context.Context, hashes []string) (map[string]string, error) {
		digests, err := objectDigests(hashes)
		if err != nil {
			return nil, err
		}
		urls := make(map[string]string, len(digests))
		for i, d := range digests {
			u, err := store.PresignObject(ctx, presigner, d, expiry)
			if err != nil {
				return nil, err
			}
			urls[hashes[i]] = u
		}
		return urls, nil
	}
	var last wire.StreamState
	progress := func(st wire.UnpackStatus) {
		phase := st.Stream.State
		if p := st.Stream.Progress; p != nil && p.Phase != "" {
			phase = p.Phase
		}
		if phase == last {
			return
		}
		last = phase
		msg := string(phase)
		if p := st.Stream.Progress; p != nil && p.ObjectsTotal > 0 {
			msg += fmt.Sprintf(" (%d of %d objects, %d of %d bytes)", p.ObjectsDone, p.ObjectsTotal, p.BytesDone, p.BytesTotal)
		}
		a.info(StepUnpack, "stream %q: %s", a.pub.Stream, msg)
	}
	timeout := a.p.cfg.Timeouts.Unpack
	a.announceWait(StepUnpack, fmt.Sprintf("the unpacker to bring stream %q to revision %s", a.pub.Stream, a.pub.Revision), timeout)
	uctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	st, err := a.unpacker.Unpack(uctx, wire.UnpackRequest{Stream: a.pub.Stream, Revision: a.pub.Revision, ManifestURL: manifestURL},
		sign, client.UnpackOptions{Progress: progress})
	if err != nil {
		if uctx.Err() != nil {
			a.cancelUnpack(context.WithoutCancel(ctx))
			if ctx.Err() == nil {
				return fmt.Errorf("unpack did not finish within %s: %w", timeout, err)
			}
		}
		return err
	}
	if !st.Done || st.Stream.State != wire.StateClean || st.Stream.Revision != a.pub.Revision {
		return fmt.Errorf("the unpacker reports stream %q %s%s, not clean at revision %s", a.pub.Stream, st.Stream.State, atRevision(st.Stream), a.pub.Revision)
	}
	var fetched, bytes int64
	if p := st.Stream.Progress; p != nil {
		fetched, bytes = p.ObjectsTotal, p.BytesTotal
	}
	a.info(StepUnpack, "stream %q clean at revision %s in %s (%d objects, %d bytes fetched)", a.pub.Stream, a.pub.Revision,
		time.Since(start).Round(time.Millisecond), fetched, bytes)
	return nil
}

// cancelUnpack stops the daemon's unpack of the revision (best effort: an
// unpack whose caller is gone also fails by itself after the daemon's URL
// wait).
func (a *actor) cancelUnpack(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, daemonCallTimeout)
	defer cancel()
	if _, err := a.unpacker.CancelUnpack(ctx, wire.CancelUnpackRequest{Stream: a.pub.Stream, Revision: a.pub.Revision}); err != nil {
		a.info(StepUnpack, "could not cancel the unpack (the daemon stops it after its URL wait): %v", err)
		return
	}
	a.info(StepUnpack, "cancelled the unpack; the next run resumes it")
}

// prepareSnapshot has the daemon sync and unmount the clean stream; it
// refuses unless the stream is clean at the revision.
func (a *actor) prepareSnapshot(ctx context.Context) error {
	s, err := a.unpacker.PrepareForSnapshot(ctx, wire.PrepareForSnapshotRequest{
		Stream: a.pub.Stream, Revision: a.pub.Revision, Mode: wire.SnapshotUnmount,
	})
	if err != nil {
		return fmt.Errorf("unpacker: prepare stream %q for a snapshot: %w", a.pub.Stream, err)
	}
	if s.State != wire.StateUnmountedForSnapshot || s.Revision != a.pub.Revision {
		// Never snapshot a volume the daemon does not vouch for.
		return fmt.Errorf("the unpacker reports stream %q %s%s after preparing, not unmounted at revision %s", s.Name, s.State, atRevision(s), a.pub.Revision)
	}
	a.prepared = true
	return nil
}

// release has the daemon re-mount the stream after its snapshot started.
// On the way out of a failed or interrupted run it is called with a context
// that outlives the caller's.
func (a *actor) release(ctx context.Context) error {
	if !a.prepared {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, daemonCallTimeout)
	defer cancel()
	if _, err := a.unpacker.Release(ctx, wire.ReleaseRequest{Stream: a.pub.Stream}); err != nil {
		a.info(StepRelease, "could not release stream %q (the next run does): %v", a.pub.Stream, err)
		return fmt.Errorf("unpacker: release stream %q: %w", a.pub.Stream, err)
	}
	a.prepared = false
	return nil
}
