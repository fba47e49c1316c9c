package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-cleanhttp"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

type daemon struct {
	cfg     Config
	log     *slog.Logger
	store   *stateStore
	volumes Volumes
	fetcher *objects.HTTPFetcher
	metrics *metrics
	started time.Time

	// structMu serialises the requests that add or remove devices and
	// streams, so that checks and changes of the maps do not interleave.
	structMu sync.Mutex

	mu      sync.Mutex
	devices map[string]*deviceEntry // by volume ID
	streams map[string]*stream      // by name

	idle *idleTimer
}

// deviceEntry is an attached volume's device as found now.
type deviceEntry struct {
	volumeID    string
	deviceName  string
	path        string // "" when not visible
	size        int64
	backingFile string
}

func newDaemon(ctx context.Context, cfg Config) (*Daemon, error) {
	if cfg.StateDir == "" {
		return nil, fmt.Errorf("start unpacker daemon: no state directory given")
	}
	if cfg.Devices == nil {
		return nil, fmt.Errorf("start unpacker daemon: no device finder given")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Volumes == nil {
		cfg.Volumes = volumePackage{}
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = cleanhttp.DefaultPooledClient()
	}
	if cfg.FetchParallel <= 0 {
		cfg.FetchParallel = 8
	}
	if cfg.URLWait <= 0 {
		cfg.URLWait = DefaultURLWait
	}
	for _, dir := range []string{cfg.StateDir, filepath.Join(cfg.StateDir, "mnt"), filepath.Join(cfg.StateDir, "scan-cache"),
		filepath.Join(cfg.StateDir, currentManifestDir)} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("start unpacker daemon: create %s: %w", dir, err)
		}
	}
	store, err := openStateStore(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("start unpacker daemon: %w", err)
	}
	d := &daemon{
		cfg:     cfg,
		log:     cfg.Logger,
		store:   store,
		volumes: cfg.Volumes,
		fetcher: objects.NewHTTPFetcher(objects.FetcherOptions{HTTPClient: cfg.HTTPClient, Logger: cfg.Logger}),
		started: time.Now(),
		devices: map[string]*deviceEntry{},
		streams: map[string]*stream{},
	}
	d.metrics = newMetrics(d)
	st := store.snapshot()
	// Devices first: streams find their volumes among them.
	for id, rec := range st.Devices {
		e := &deviceEntry{volumeID: id, deviceName: rec.DeviceName}
		if dev, err := cfg.Devices.Lookup(ctx, id); err != nil {
			d.log.Warn("attached volume not visible", "volume_id", id, "err", err)
		} else {
			e.path, e.size, e.backingFile = dev.Path, dev.SizeBytes, dev.BackingFile
		}
		d.devices[id] = e
	}
	names := make([]string, 0, len(st.Streams))
	for name := range st.Streams {
		names = append(names, name)
	}
	sort.Strings(names)
	// Restore the streams in parallel and before serving, so that the first
	// status after a restart already tells the truth.
	var wg sync.WaitGroup
	for _, name := range names {
		s := newStream(d, *st.Streams[name])
		d.streams[name] = s
		wg.Go(func() {
			if err := s.do(ctx, func() error { return s.restore(ctx) }); err != nil {
				d.log.Error("restore stream", "stream", name, "err", err)
			}
		})
	}
	wg.Wait()
	d.idle = newIdleTimer(d, cfg.IdlePoweroff, cfg.Poweroff)
	d.log.Info("unpacker daemon started", "state_dir", cfg.StateDir, "local_devices", cfg.Devices.Local(),
		"devices", len(d.devices), "streams", len(d.streams), "idle_poweroff", cfg.IdlePoweroff)
	return &Daemon{impl: d}, nil
}

func (d *daemon) close() error {
	d.idle.stop()
	d.mu.Lock()
	streams := make([]*stream, 0, len(d.streams))
	for _, s := range d.streams {
		streams = append(streams, s)
	}
	d.mu.Unlock()
	for _, s := range streams {
		s.cancelJob(errShuttingDown)
	}
	for _, s := range streams {
		s.waitJob()
		s.stop()
	}
	return nil
}

func (d *daemon) touch() { d.idle.touch() }

func (d *daemon) mountDir(volumeID string) string {
	return filepath.Join(d.cfg.StateDir, "mnt", volumeID)
}

func (d *daemon) scanCachePath(volumeID string) string {
	return filepath.Join(d.cfg.StateDir, "scan-cache", volumeID)
}

// hook calls the test hook, if any.
func (d *daemon) hook(point string) error {
	if d.cfg.Hook == nil {
		return nil
	}
	if err := d.cfg.Hook(point); err != nil {
		return fmt.Errorf("test hook at %s: %w", point, err)
	}
	return nil
}

func (d *daemon) health() wire.Health {
	return wire.Health{Status: "ok", Version: d.cfg.Version, StartedAt: d.started, LocalDevices: d.cfg.Devices.Local()}
}

func (d *daemon) status() wire.Status {
	st := wire.Status{
		Version:        d.cfg.Version,
		StartedAt:      d.started,
		LastRequestAt:  d.idle.lastRequest(),
		IdlePoweroffAt: d.idle.deadline(),
		Devices:        []wire.Device{},
		Streams:        []wire.Stream{},
	}
	d.mu.Lock()
	streams := make([]*stream, 0, len(d.streams))
	for _, s := range d.streams {
		streams = append(streams, s)
	}
	for _, e := range d.devices {
		st.Devices = append(st.Devices, d.deviceViewWithLock(e))
	}
	d.mu.Unlock()
	for _, s := range streams {
		st.Streams = append(st.Streams, s.view())
	}
	sort.Slice(st.Devices, func(i, j int) bool { return st.Devices[i].VolumeID < st.Devices[j].VolumeID })
	sort.Slice(st.Streams, func(i, j int) bool { return st.Streams[i].Name < st.Streams[j].Name })
	return st
}

func (d *daemon) deviceViewWithLock(e *deviceEntry) wire.Device {
	v := wire.Device{VolumeID: e.volumeID, Path: e.path, SizeBytes: e.size, BackingFile: e.backingFile}
	for _, s := range d.streams {
		if s.volumeID == e.volumeID {
			v.Stream = s.name
		}
	}
	return v
}

// streamByName returns the stream or a not-found error.
func (d *daemon) streamByName(name string) (*stream, error) {
	if err := wire.ValidateStreamName(name); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.streams[name]
	if !ok {
		return nil, wire.Errorf(wire.CodeNotFound, "no stream %q: associate it with a volume first", name)
	}
	return s, nil
}

// devicePath returns the device of an attached volume, or "".
func (d *daemon) devicePath(volumeID string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.devices[volumeID]; ok {
		return e.path
	}
	return ""
}
