package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/devices"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

const (
	defaultAttachWait = wire.DefaultAttachWaitSeconds * time.Second
	maxAttachWait     = wire.MaxAttachWaitSeconds * time.Second
)

func (d *daemon) attachDevice(ctx context.Context, req wire.AttachDeviceRequest) (wire.Device, error) {
	if err := wire.ValidateVolumeID(req.VolumeID); err != nil {
		return wire.Device{}, err
	}
	if req.SizeBytes < 0 {
		return wire.Device{}, wire.Errorf(wire.CodeBadRequest, "size_bytes %d of volume %s is negative", req.SizeBytes, req.VolumeID)
	}
	wait := defaultAttachWait
	if req.WaitSeconds > 0 {
		wait = min(time.Duration(req.WaitSeconds*float64(time.Second)), maxAttachWait)
	}
	waitCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	dev, err := d.cfg.Devices.Attach(waitCtx, devices.AttachRequest{VolumeID: req.VolumeID, DeviceName: req.DeviceName, SizeBytes: req.SizeBytes})
	if err != nil {
		if errors.Is(err, devices.ErrNotFound) {
			return wire.Device{}, wire.Errorf(wire.CodeUnavailable, "attach device: %v", err)
		}
		return wire.Device{}, wire.Errorf(wire.CodeInternal, "attach device: %v", err)
	}
	d.structMu.Lock()
	defer d.structMu.Unlock()
	// Durable before we answer: a restart must know the volume is ours.
	if err := d.store.update(func(st *persistedState) {
		st.Devices[req.VolumeID] = &persistedDevice{VolumeID: req.VolumeID, DeviceName: req.DeviceName}
	}); err != nil {
		return wire.Device{}, err
	}
	d.mu.Lock()
	d.devices[req.VolumeID] = &deviceEntry{volumeID: req.VolumeID, deviceName: req.DeviceName,
		path: dev.Path, size: dev.SizeBytes, backingFile: dev.BackingFile}
	view := d.deviceViewWithLock(d.devices[req.VolumeID])
	var waiting *stream
	for _, s := range d.streams {
		if s.volumeID == req.VolumeID && s.currentState() == wire.StateNoDevice {
			waiting = s
		}
	}
	d.mu.Unlock()
	d.log.Info("device attached", "volume_id", req.VolumeID, "device", dev.Path, "size", dev.SizeBytes)
	if waiting != nil {
		// The volume of a known stream came back (re-attached after a
		// restart of the machine, say): restore the stream now.
		if err := waiting.do(ctx, func() error { return waiting.restore(ctx) }); err != nil {
			d.log.Warn("restore stream after attach", "stream", waiting.name, "err", err)
		}
	}
	return view, nil
}

func (d *daemon) detachDevice(ctx context.Context, req wire.DetachDeviceRequest) error {
	if err := wire.ValidateVolumeID(req.VolumeID); err != nil {
		return err
	}
	d.structMu.Lock()
	defer d.structMu.Unlock()
	d.mu.Lock()
	_, ok := d.devices[req.VolumeID]
	var user string
	for _, s := range d.streams {
		if s.volumeID == req.VolumeID {
			user = s.name
		}
	}
	d.mu.Unlock()
	if !ok {
		return nil // detached already: idempotent
	}
	if user != "" {
		return wire.Errorf(wire.CodeConflict, "cannot detach volume %s: stream %q uses it (forget the stream first)", req.VolumeID, user)
	}
	if err := d.cfg.Devices.Detach(ctx, req.VolumeID); err != nil {
		return err
	}
	if err := d.store.update(func(st *persistedState) { delete(st.Devices, req.VolumeID) }); err != nil {
		return err
	}
	d.mu.Lock()
	delete(d.devices, req.VolumeID)
	d.mu.Unlock()
	d.log.Info("device detached", "volume_id", req.VolumeID)
	return nil
}
