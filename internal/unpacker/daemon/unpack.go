package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/patch"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/volume"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// unpackJob is one unpack of a stream to a revision.
type unpackJob struct {
	revision    string
	manifestURL string
	queue       *urlQueue
	// cancel stops the job; the cause (errCancelledByRequest,
	// errShuttingDown) ends up in its error.
	cancel   context.CancelCauseFunc
	finished chan struct{} // closed when the job's goroutine ends

	mu         sync.Mutex
	phase      wire.StreamState
	started    time.Time
	finishedAt time.Time
	missing    int64 // objects the volume lacked at the scan
	err        error
	result     patch.Result
}

func (j *unpackJob) progress() wire.Progress {
	c := j.queue.counters()
	j.mu.Lock()
	defer j.mu.Unlock()
	p := wire.Progress{
		Revision:            j.revision,
		Phase:               j.phase,
		ObjectsTotal:        c.objectsTotal,
		ObjectsDone:         c.objectsDone,
		BytesTotal:          c.bytesTotal,
		BytesDone:           c.bytesDone,
		ObjectsAwaitingURLs: j.queue.awaiting(),
		ETASeconds:          -1,
		StartedAt:           j.started,
		FinishedAt:          j.finishedAt,
	}
	if !c.firstFetch.IsZero() {
		end := time.Now()
		if !j.finishedAt.IsZero() {
			end = j.finishedAt
		}
		if secs := end.Sub(c.firstFetch).Seconds(); secs > 0 {
			p.BytesPerSecond = float64(c.bytesDone) / secs
		}
		if p.BytesPerSecond > 0 && j.finishedAt.IsZero() {
			p.ETASeconds = float64(c.bytesTotal-c.bytesDone) / p.BytesPerSecond
		}
	}
	if !j.finishedAt.IsZero() {
		p.ETASeconds = 0
	}
	return p
}

func (j *unpackJob) running() bool {
	select {
	case <-j.finished:
		return false
	default:
		return true
	}
}

func validRevision(field, r string) error {
	if err := wire.ValidateObjectHash(r); err != nil {
		return wire.Errorf(wire.CodeBadRequest, "%s %q is not a revision digest (64 lower-case hex digits)", field, r)
	}
	return nil
}

func (d *daemon) unpack(ctx context.Context, req wire.UnpackRequest) (wire.UnpackStatus, error) {
	s, err := d.streamByName(req.Stream)
	if err != nil {
		return wire.UnpackStatus{}, err
	}
	if err := validRevision("revision", req.Revision); err != nil {
		return wire.UnpackStatus{}, err
	}
	if !strings.HasPrefix(req.ManifestURL, "https://") && !strings.HasPrefix(req.ManifestURL, "http://") {
		return wire.UnpackStatus{}, wire.Errorf(wire.CodeBadRequest, "manifest_url of revision %s is not an http(s) URL", req.Revision)
	}
	s.touch()
	err = s.do(ctx, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch st := s.state; {
		case (st == wire.StateClean || st == wire.StateFrozen || st == wire.StateUnmountedForSnapshot) && s.revision == req.Revision:
			return nil // done already
		case st.Busy() && s.job != nil && s.job.revision == req.Revision:
			return nil // running already
		case st == wire.StateFrozen || st == wire.StateUnmountedForSnapshot || st.Busy() ||
			st == wire.StateNoDevice || st == wire.StateUnmounted && s.layout == nil:
			return s.conflictWithLock("unpack revision " + req.Revision + " on")
		}
		// StateMounted, StateClean (another revision), StateDirty, or
		// StateUnmounted with a known layout: start.
		return s.startJobWithLock(req)
	})
	if err != nil {
		return wire.UnpackStatus{}, err
	}
	if len(req.ObjectURLs) > 0 {
		return d.supplyObjectURLs(ctx, wire.ObjectURLsRequest{Stream: req.Stream, Revision: req.Revision, URLs: req.ObjectURLs})
	}
	return s.unpackStatus(req.Revision), nil
}

// Causes of a cancelled unpack.
var (
	errCancelledByRequest = errors.New("cancelled by request (cancel-unpack)")
	errShuttingDown       = errors.New("stopped: the daemon is shutting down")
)

func (s *stream) startJobWithLock(req wire.UnpackRequest) error {
	prev := struct {
		state    wire.StreamState
		revision string
	}{s.state, s.revision}
	if err := s.setStateWithLock(wire.StateFetchingManifest); err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	job := &unpackJob{
		revision:    req.Revision,
		manifestURL: req.ManifestURL,
		queue: newURLQueue(s.d.fetcher, s.d.cfg.FetchParallel, s.d.cfg.URLWait, func() {
			s.mu.Lock()
			s.notifyWithLock()
			s.mu.Unlock()
		}),
		cancel:   cancel,
		finished: make(chan struct{}),
		phase:    wire.StateFetchingManifest,
		started:  time.Now(),
	}
	s.job = job
	s.lastErr = ""
	s.d.metrics.unpacksStarted.Inc()
	go func() {
		defer close(job.finished)
		defer cancel(nil)
		err := s.runUnpack(ctx, job)
		if cause := context.Cause(ctx); err != nil && cause != nil && !errors.Is(err, cause) {
			err = fmt.Errorf("unpack of revision %s %w: %w", job.revision, cause, err)
		}
		s.finishJob(job, err, prev.state, prev.revision)
	}()
	return nil
}

// runUnpack does the work of an unpack; see HookManifest … HookClean.
func (s *stream) runUnpack(ctx context.Context, job *unpackJob) error {
	log := s.d.log.With("stream", s.name, "revision", job.revision)
	m, rawManifest, err := s.d.fetchManifest(ctx, job.manifestURL, job.revision)
	if err != nil {
		return err
	}
	if m.Kind != manifest.KindTree {
		return wire.Errorf(wire.CodeBadRequest, "revision %s is a raw image manifest: the daemon patches file trees only", job.revision)
	}
	if s.origin == wire.OriginEmpty {
		// The daemon makes such volumes bootable after patching: find out now
		// whether it can, before the volume is marked dirty.
		if err := s.d.volumes.CheckBootable(m); err != nil {
			return wire.Errorf(wire.CodeBadRequest, "revision %s cannot be made bootable (stream %q has a volume of origin %q): %v", job.revision, s.name, wire.OriginEmpty, err)
		}
	}
	if err := s.d.hook(HookManifest); err != nil {
		return err
	}
	// Refuse before the volume is marked dirty: a mount inside the volume is
	// an operator's doing that the unpacker must not patch through.
	if mounted, err := isMountPoint(s.mountDir); err != nil {
		return err
	} else if mounted {
		if err := checkNoNestedMounts(s.mountDir); err != nil {
			return fmt.Errorf("unpack revision %s: %w", job.revision, err)
		}
	}

	// The dirty marker is durable before anything on the volume changes.
	rec, _ := s.d.store.stream(s.name)
	wasDirty := rec.Dirty || rec.Revision == ""
	// A stream recorded clean at R holds exactly R's manifest, which the
	// engine may then trust instead of scanning the whole volume (it checks
	// every entry it touches and scans after all on any difference). Never
	// for a dirty stream: its content is not known.
	var current *manifest.Manifest
	if !wasDirty {
		var why string
		if current, why = s.d.loadCurrentManifest(s.volumeID, rec.Revision); current == nil {
			log.Info("the volume will be scanned in full", "reason", why)
		}
	}
	if err := s.d.store.updateStream(s.name, func(p *persistedStream) {
		p.Dirty, p.TargetRevision, p.Revision, p.Snapshot = true, job.revision, "", ""
	}); err != nil {
		return err
	}
	s.mu.Lock()
	s.revision, s.target = "", job.revision
	layout, mountDir := s.layout, s.mountDir
	s.mu.Unlock()
	if err := s.d.hook(HookDirty); err != nil {
		return err
	}

	mounted, err := isMountPoint(mountDir)
	if err != nil {
		return err
	}
	if !mounted {
		if rec.Dirty {
			if err := checkFS(ctx, layout.Root.Device, layout.Root.Filesystem); err != nil {
				return err
			}
		}
		if err := mountRoot(layout.Root.Device, layout.Root.Filesystem, mountDir); err != nil {
			return err
		}
	}
	cache := s.d.scanCachePath(s.volumeID)
	if wasDirty {
		// Re-verify every file: trust no cached scan of a volume whose
		// content is not known to be a complete revision.
		if err := os.Remove(cache); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("drop scan cache %s: %w", cache, err)
		}
	}

	if err := s.setJobPhase(job, wire.StateScanning); err != nil {
		return err
	}
	opts := patch.Options{
		AllowDevices:  true, // manifests come from the authenticated provider, root file systems have /dev nodes
		StatCachePath: cache,
		// A fetch that breaks off keeps what it verified (in the staging
		// directory on the volume, which is dirty anyway): the next unpack
		// fetches only the rest, as the client promises.
		KeepStaged: true,
		Parallel:   s.d.cfg.FetchParallel,
		Progress:   func(p patch.Progress) { s.onPatchProgress(job, p) },
		Hook: func(p patch.Point, _ string) error {
			return s.d.hook("patch:" + string(p))
		},
		Logger:  log,
		Current: current,
	}
	plan, err := patch.Prepare(ctx, mountDir, m, opts)
	if err != nil {
		return fmt.Errorf("scan volume for revision %s: %w", job.revision, err)
	}
	missing := plan.Missing()
	job.mu.Lock()
	job.missing = int64(len(missing))
	job.mu.Unlock()
	log.Info("volume scanned", "missing_objects", len(missing))
	if err := s.setJobPhase(job, wire.StateFetching); err != nil {
		return err
	}
	res, err := plan.Apply(ctx, job.queue)
	if err != nil {
		return fmt.Errorf("patch volume to revision %s: %w", job.revision, err)
	}
	job.mu.Lock()
	job.result = res
	job.mu.Unlock()

	if s.origin == wire.OriginEmpty {
		if err := s.setJobPhase(job, wire.StateMakingBootable); err != nil {
			return err
		}
		report, err := s.d.volumes.MakeBootable(ctx, layout, mountDir, volume.BootOptions{RootLabel: layout.Root.Label, Logger: log})
		if err != nil {
			return fmt.Errorf("make volume of revision %s bootable: %w", job.revision, err)
		}
		log.Info("volume made bootable", "written", report.Written, "entries", len(report.Entries))
	}
	if err := s.setJobPhase(job, wire.StateSyncing); err != nil {
		return err
	}
	// The manifest of the revision is stored (durably, while the volume
	// syncs) before the stream is recorded clean at it.
	stored := make(chan error, 1)
	go func() { stored <- s.d.storeCurrentManifest(s.volumeID, rawManifest) }()
	if err := syncFS(mountDir); err != nil {
		<-stored
		return err
	}
	if err := syncDevice(layout.Disk); err != nil {
		<-stored
		return err
	}
	if err := <-stored; err != nil {
		// Only the next unpack's speed depends on it: it scans in full.
		log.Warn("the next unpack will scan the whole volume", "err", err)
	}
	if err := s.d.hook(HookBootable); err != nil {
		return err
	}
	if err := s.d.hook(HookClean); err != nil {
		return err
	}
	if err := s.d.store.updateStream(s.name, func(p *persistedStream) {
		p.Dirty, p.TargetRevision, p.Revision = false, "", job.revision
	}); err != nil {
		return err
	}
	log.Info("unpacked", "created", res.Created, "updated", res.Updated, "deleted", res.Deleted, "unchanged", res.Unchanged,
		"objects_fetched", res.ObjectsFetched, "bytes_fetched", res.BytesFetched, "objects_missing", len(missing),
		"bytes_written", res.BytesWritten, "trusted_current", res.TrustedCurrent, "duration", time.Since(job.started))
	return nil
}

// finishJob records the end of an unpack: clean at the revision, or dirty
// when the volume was touched, or back where it was when it was not.
func (s *stream) finishJob(job *unpackJob, err error, prevState wire.StreamState, prevRevision string) {
	rec, _ := s.d.store.stream(s.name)
	c := job.queue.counters()
	s.d.metrics.objectsFetched.Add(float64(c.objectsDone))
	s.d.metrics.bytesFetched.Add(float64(c.bytesDone))
	s.d.metrics.urlsRejected.Add(float64(c.urlsRejected))

	// The job's end and the stream's new state change together, under the
	// stream's lock (readers take it first, then the job's): a status never
	// shows the unpack's error while the stream is still in its phase.
	s.mu.Lock()
	defer s.mu.Unlock()
	job.mu.Lock()
	job.err = err
	job.finishedAt = time.Now()
	job.phase = wire.StateClean
	if err != nil {
		job.phase = wire.StateDirty
	}
	res := job.result
	job.mu.Unlock()
	if err == nil {
		if terr := s.setStateWithLock(wire.StateClean); terr != nil {
			// Not clean, then: the safe state, reachable from every
			// phase of an unpack; the content is verified by the next.
			err = fmt.Errorf("unpack of revision %s completed, but: %w", job.revision, terr)
			job.mu.Lock()
			job.err, job.phase = err, wire.StateDirty
			job.mu.Unlock()
			rec.Dirty = true
		}
	}
	switch {
	case err == nil:
		s.revision, s.target = job.revision, ""
		s.d.metrics.unpacksDone.WithLabelValues("ok").Inc()
		s.d.metrics.bytesWritten.Add(float64(res.BytesWritten))
		s.d.metrics.unpackSeconds.Observe(time.Since(job.started).Seconds())
		scan := "full"
		if res.TrustedCurrent {
			scan = "trusted"
		}
		s.d.metrics.unpackScans.WithLabelValues(scan).Inc()
	case rec.Dirty:
		s.lastErr = err.Error()
		if terr := s.setStateWithLock(wire.StateDirty); terr != nil {
			s.lastErr = errors.Join(err, terr).Error()
		}
		s.d.metrics.unpacksDone.WithLabelValues("error").Inc()
		s.d.log.Error("unpack failed; stream is dirty", "stream", s.name, "revision", job.revision, "err", err)
	default:
		// Failed before touching the volume (manifest): nothing changed.
		s.lastErr = err.Error()
		if terr := s.setStateWithLock(prevState); terr != nil {
			// Dirty is reachable from every phase of an unpack and safe.
			s.lastErr = errors.Join(err, terr).Error()
			s.setStateWithLock(wire.StateDirty)
		} else {
			s.revision = prevRevision
		}
		s.d.metrics.unpacksDone.WithLabelValues("error").Inc()
		s.d.log.Error("unpack failed before changing the volume", "stream", s.name, "revision", job.revision, "err", err)
	}
}

func (s *stream) setJobPhase(job *unpackJob, phase wire.StreamState) error {
	if err := s.setState(phase); err != nil {
		return err
	}
	job.mu.Lock()
	job.phase = phase
	job.mu.Unlock()
	return nil
}

func (s *stream) onPatchProgress(job *unpackJob, p patch.Progress) {
	var phase wire.StreamState
	switch p.Phase {
	case patch.PhaseScanning:
		phase = wire.StateScanning
	case patch.PhaseFetching:
		phase = wire.StateFetching
	case patch.PhaseUpdating:
		phase = wire.StateUpdating
	case patch.PhaseSyncing:
		phase = wire.StateSyncing
	default:
		return
	}
	job.mu.Lock()
	changed := job.phase != phase
	job.mu.Unlock()
	if !changed {
		s.mu.Lock()
		s.notifyWithLock()
		s.mu.Unlock()
		return
	}
	if err := s.setJobPhase(job, phase); err != nil {
		// The engine reports progress but cannot be told to stop here:
		// stop the unpack through its context, with the refusal as cause.
		job.cancel(err)
	}
}

// cancelJob stops a running unpack (the stream stays dirty) for cause.
func (s *stream) cancelJob(cause error) {
	s.mu.Lock()
	job := s.job
	s.mu.Unlock()
	if job != nil {
		job.cancel(cause)
	}
}

// maxCancelWait bounds how long a cancel request waits for the unpack to
// stop (it stops at its next check: between files, objects or phases).
const maxCancelWait = wire.MaxCancelWaitSeconds * time.Second

// cancelUnpack stops the running unpack of req.Revision, if any, and waits
// (a while) for it to end. The stream is then dirty, with the cancellation
// as its last error; objects already fetched stay staged for the next unpack.
func (d *daemon) cancelUnpack(ctx context.Context, req wire.CancelUnpackRequest) (wire.Stream, error) {
	s, err := d.streamByName(req.Stream)
	if err != nil {
		return wire.Stream{}, err
	}
	if err := validRevision("revision", req.Revision); err != nil {
		return wire.Stream{}, err
	}
	s.touch()
	s.mu.Lock()
	job := s.job
	if job == nil || !job.running() {
		defer s.mu.Unlock()
		return s.viewWithLock(), nil // nothing runs: idempotent
	}
	if job.revision != req.Revision {
		defer s.mu.Unlock()
		return wire.Stream{}, wire.Errorf(wire.CodeConflict, "cannot cancel the unpack of revision %s on stream %q: it is %s", req.Revision, s.name, s.describeWithLock())
	}
	s.mu.Unlock()
	d.log.Info("cancelling unpack", "stream", s.name, "revision", req.Revision)
	job.cancel(errCancelledByRequest)
	wait := time.NewTimer(maxCancelWait)
	defer wait.Stop()
	select {
	case <-job.finished:
	case <-wait.C:
		return s.view(), wire.Errorf(wire.CodeUnavailable, "the unpack of revision %s on stream %q was asked to stop but is still %s after %s", req.Revision, s.name, s.currentState(), maxCancelWait)
	case <-ctx.Done():
		return s.view(), ctx.Err()
	}
	return s.view(), nil
}

func (s *stream) waitJob() {
	s.mu.Lock()
	job := s.job
	s.mu.Unlock()
	if job != nil {
		<-job.finished
	}
}

// unpackStatus reports the unpack of revision on s.
func (s *stream) unpackStatus(revision string) wire.UnpackStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := wire.UnpackStatus{Stream: s.viewWithLock()}
	clean := s.state == wire.StateClean || s.state == wire.StateFrozen || s.state == wire.StateUnmountedForSnapshot
	st.Done = clean && s.revision == revision
	if job := s.job; job != nil && job.revision == revision {
		job.mu.Lock()
		st.MissingObjects = job.missing
		if job.err != nil && !st.Done {
			st.Error = job.err.Error()
		}
		job.mu.Unlock()
		if job.running() {
			st.WantedObjects = job.queue.wanted()
		}
	} else if !st.Done {
		st.Error = fmt.Sprintf("no unpack of revision %s is running on stream %q (it is %s)", revision, s.name, s.describeWithLock())
	}
	return st
}

func (d *daemon) unpackStatus(ctx context.Context, req wire.UnpackStatusRequest) (wire.UnpackStatus, error) {
	s, err := d.streamByName(req.Stream)
	if err != nil {
		return wire.UnpackStatus{}, err
	}
	if err := validRevision("revision", req.Revision); err != nil {
		return wire.UnpackStatus{}, err
	}
	wait := min(time.Duration(req.WaitSeconds*float64(time.Second)), wire.MaxStatusWaitSeconds*time.Second)
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	first := s.unpackStatus(req.Revision)
	for {
		s.mu.Lock()
		changed := s.changed
		s.mu.Unlock()
		st := s.unpackStatus(req.Revision)
		if wait <= 0 || st.Done || st.Error != "" || len(st.WantedObjects) > 0 || st.Stream.State != first.Stream.State {
			return st, nil
		}
		select {
		case <-changed:
		case <-deadline.C:
			return s.unpackStatus(req.Revision), nil
		case <-ctx.Done():
			return s.unpackStatus(req.Revision), nil
		}
	}
}

func (d *daemon) supplyObjectURLs(ctx context.Context, req wire.ObjectURLsRequest) (wire.UnpackStatus, error) {
	s, err := d.streamByName(req.Stream)
	if err != nil {
		return wire.UnpackStatus{}, err
	}
	if err := validRevision("revision", req.Revision); err != nil {
		return wire.UnpackStatus{}, err
	}
	s.touch()
	s.mu.Lock()
	job := s.job
	s.mu.Unlock()
	if job == nil || job.revision != req.Revision || !job.running() {
		// Late URLs for an unpack that ended are harmless.
		return s.unpackStatus(req.Revision), nil
	}
	if _, err := job.queue.supply(req.URLs); err != nil {
		return wire.UnpackStatus{}, err
	}
	return s.unpackStatus(req.Revision), nil
}
