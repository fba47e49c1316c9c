package contentstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// abortTimeout bounds aborting a failed multipart upload after the caller's
// context is gone.
const abortTimeout = 30 * time.Second

// upload runs the source's Fetch into an uploadRun, which verifies each
// object as it arrives and hands it to a pool of upload workers. A Put
// returns once its object is verified and queued, so a sequential source (a
// tarball) keeps reading while earlier objects are on the wire; the
// unbuffered queue bounds what is held to one object per worker plus one
// per concurrent Put.
func (s *store) upload(ctx context.Context, src objects.Source, want []objects.Want) (UploadResult, error) {
	if err := s.valid(); err != nil {
		return UploadResult{}, err
	}
	want, err := dedupe(want)
	if err != nil {
		return UploadResult{}, err
	}
	if len(want) == 0 {
		return UploadResult{}, nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	run := &uploadRun{
		s:      s,
		ctx:    ctx,
		cancel: cancel,
		jobs:   make(chan *uploadJob),
		wanted: make(map[objects.Digest]*wantState, len(want)),
	}
	for _, w := range want {
		run.wanted[w.Digest] = &wantState{want: w}
		run.progress.ObjectsTotal++
		run.progress.BytesTotal += w.Size
	}
	var wg sync.WaitGroup
	for range min(s.opts.Uploads, len(want)) {
		wg.Go(run.work)
	}
	fetchErr := src.Fetch(ctx, want, run)
	run.closeMu.Lock()
	run.closed = true
	close(run.jobs)
	run.closeMu.Unlock()
	wg.Wait()

	run.mu.Lock()
	defer run.mu.Unlock()
	res := run.result
	dest := s.uri(s.objectsPrefix())
	switch {
	case run.failed != nil:
		if fetchErr != nil && !errors.Is(fetchErr, context.Canceled) {
			return res, fmt.Errorf("upload to %s: %w", dest, errors.Join(run.failed, fetchErr))
		}
		return res, fmt.Errorf("upload to %s: %w", dest, run.failed)
	case fetchErr != nil:
		return res, fmt.Errorf("upload to %s: %w", dest, fetchErr)
	}
	var lacking []objects.Want
	for _, w := range want {
		if run.wanted[w.Digest].status != stored {
			lacking = append(lacking, w)
		}
	}
	if len(lacking) > 0 {
		return res, fmt.Errorf("upload to %s: the source delivered %d of %d objects; %s (%d bytes) and %d more are missing: %w",
			dest, len(want)-len(lacking), len(want), lacking[0].Digest, lacking[0].Size, len(lacking)-1, objects.ErrNotFound)
	}
	return res, nil
}

type wantStatus int

const (
	pending wantStatus = iota
	claimed            // a Put is verifying it
	queued             // verified, waiting for or in an upload
	stored             // in S3 under its name
)

type wantState struct {
	want   objects.Want
	status wantStatus
}

// uploadRun is the objects.Sink of one Upload.
type uploadRun struct {
	s      *store
	ctx    context.Context
	cancel context.CancelCauseFunc
	jobs   chan *uploadJob

	// closeMu keeps a Put that arrives after Fetch returned (a misbehaving
	// source) from sending on the closed queue.
	closeMu sync.RWMutex
	closed  bool

	mu       sync.Mutex
	wanted   map[objects.Digest]*wantState
	progress UploadProgress
	result   UploadResult
	failed   error // the first upload failure
}

// uploadJob is one verified object, in memory or in an unlinked spool file.
type uploadJob struct {
	want objects.Want
	mem  []byte
	file *os.File
}

// body reads the verified bytes; it is seekable so the SDK can retry and
// needs no chunked encoding.
func (j *uploadJob) body() io.ReadSeeker {
	if j.file != nil {
		return io.NewSectionReader(j.file, 0, j.want.Size)
	}
	return bytes.NewReader(j.mem)
}

func (j *uploadJob) release() {
	if j.file != nil {
		j.file.Close()
	}
}

// Put implements objects.Sink: it verifies the object, then queues it.
func (r *uploadRun) Put(ctx context.Context, want objects.Want, rd io.Reader) error {
	if err := context.Cause(r.ctx); err != nil {
		return err
	}
	first, err := r.claim(want)
	if err != nil || !first {
		return err
	}
	job, err := r.verify(want, rd)
	if err != nil {
		r.setStatus(want.Digest, pending)
		return err
	}
	r.closeMu.RLock()
	defer r.closeMu.RUnlock()
	if r.closed {
		job.release()
		r.setStatus(want.Digest, pending)
		return fmt.Errorf("object %s arrived after the source's Fetch returned", want.Digest)
	}
	// Queued before the send: once a worker has the job it may mark it
	// stored at any moment.
	r.setStatus(want.Digest, queued)
	select {
	case r.jobs <- job:
		return nil
	case <-ctx.Done():
		job.release()
		r.setStatus(want.Digest, pending)
		return context.Cause(ctx)
	case <-r.ctx.Done():
		job.release()
		r.setStatus(want.Digest, pending)
		return context.Cause(r.ctx)
	}
}

// claim marks want as being verified; first is false when another Put
// already has it (Put is idempotent).
func (r *uploadRun) claim(want objects.Want) (first bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.wanted[want.Digest]
	switch {
	case !ok:
		return false, fmt.Errorf("object %s was not asked for", want.Digest)
	case st.want.Size != want.Size:
		return false, fmt.Errorf("object %s offered with size %d, wanted with %d: %w", want.Digest, want.Size, st.want.Size, objects.ErrMismatch)
	case st.status != pending:
		return false, nil
	}
	st.status = claimed
	return true, nil
}

func (r *uploadRun) setStatus(d objects.Digest, s wantStatus) {
	r.mu.Lock()
	r.wanted[d].status = s
	r.mu.Unlock()
}

// verify reads the object into memory or a spool file and checks its size
// and digest; on a mismatch nothing is kept.
func (r *uploadRun) verify(want objects.Want, rd io.Reader) (*uploadJob, error) {
	if want.Size <= memoryObjectLimit {
		buf := bytes.NewBuffer(make([]byte, 0, want.Size))
		if err := objects.Copy(buf, rd, want); err != nil {
			return nil, err
		}
		return &uploadJob{want: want, mem: buf.Bytes()}, nil
	}
	f, err := os.CreateTemp(r.s.opts.TempDir, "autoami-object-*")
	if err != nil {
		return nil, fmt.Errorf("spool object %s: %w", want.Digest, err)
	}
	// Unlinked at once: the open file is all there is, and it goes away
	// with the process whatever happens.
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool object %s: %w", want.Digest, err)
	}
	if err := objects.Copy(f, rd, want); err != nil {
		f.Close()
		return nil, err
	}
	return &uploadJob{want: want, file: f}, nil
}

// work uploads queued objects until the queue closes; after a failure it
// only drains the queue.
func (r *uploadRun) work() {
	for j := range r.jobs {
		if r.ctx.Err() != nil {
			j.release()
			r.setStatus(j.want.Digest, pending)
			continue
		}
		err := r.s.putObject(r.ctx, j)
		j.release()
		if err != nil {
			r.fail(err)
			continue
		}
		r.stored(j.want)
	}
}

func (r *uploadRun) fail(err error) {
	r.mu.Lock()
	if r.failed == nil {
		r.failed = err
	}
	r.mu.Unlock()
	r.cancel(err)
}

func (r *uploadRun) stored(w objects.Want) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.wanted[w.Digest].status = stored
	r.result.Objects++
	r.result.Bytes += w.Size
	r.progress.ObjectsDone++
	r.progress.BytesDone += w.Size
	if r.s.opts.Progress != nil {
		r.s.opts.Progress(r.progress)
	}
}
