package patch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// rawBlock says where the content of one changed block comes from.
type rawBlock struct {
	index int
	zero  bool // the all-zero block: written without fetching
	from  int  // a block of the device that keeps this content, or -1
}

func blockLen(img *manifest.RawImage, i int) int64 {
	return min(int64(manifest.BlockSize), img.Size-int64(i)*manifest.BlockSize)
}

func applyRaw(ctx context.Context, path string, m *manifest.Manifest, src objects.Source, opts Options) (res Result, err error) {
	start := time.Now()
	defer func() { res.Duration = time.Since(start) }()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := m.Validate(); err != nil {
		return res, fmt.Errorf("patch raw %s: %w", path, err)
	}
	if m.Kind != manifest.KindRawImage {
		return res, fmt.Errorf("patch raw %s: manifest is a file tree, not a raw image (use Apply)", path)
	}
	img := m.Image
	var hookMu sync.Mutex
	hook := func(p Point, what string) error {
		if opts.Hook == nil {
			return nil
		}
		hookMu.Lock()
		defer hookMu.Unlock()
		if err := opts.Hook(p, what); err != nil {
			return fmt.Errorf("patch raw %s at %s %q: %w: %w", path, p, what, ErrInterrupted, err)
		}
		return nil
	}
	prog := newProgress(opts.Progress)
	prog.phase(PhaseScanning, len(img.Blocks), img.Size)

	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return res, fmt.Errorf("patch raw %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return res, fmt.Errorf("patch raw %s: %w", path, err)
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return res, fmt.Errorf("patch raw %s: size: %w", path, err)
	}
	isFile := fi.Mode().IsRegular()
	if size < img.Size {
		if !isFile {
			return res, fmt.Errorf("patch raw %s: device holds %d bytes, the image needs %d", path, size, img.Size)
		}
		if err := f.Truncate(img.Size); err != nil {
			return res, fmt.Errorf("patch raw %s: grow to %d bytes: %w", path, img.Size, err)
		}
	}

	cur, err := hashBlocks(ctx, f, img, opts.Parallel, prog)
	if err != nil {
		return res, fmt.Errorf("patch raw %s: %w", path, err)
	}
	if err := hook(PointScanned, ""); err != nil {
		return res, err
	}

	// Plan: for each changed block, its source.
	stable := map[objects.Digest]int{} // content of blocks that do not change
	moving := map[objects.Digest]int{} // content of blocks about to be overwritten
	for i, d := range cur {
		if d == img.Blocks[i] {
			stable[d] = i
		} else if _, ok := moving[d]; !ok {
			moving[d] = i
		}
	}
	var blocks []rawBlock
	var stash []rawBlock
	var missing []objects.Want
	wanted := map[objects.Digest]bool{}
	for i, d := range img.Blocks {
		if cur[i] == d {
			continue
		}
		b := rawBlock{index: i, from: -1}
		n := blockLen(img, i)
		switch {
		case d == sha256.Sum256(make([]byte, n)):
			b.zero = true
		case hasKey(stable, d):
			b.from = stable[d]
		case wanted[d]:
		case hasKey(moving, d) && blockLen(img, moving[d]) == n:
			wanted[d] = true
			stash = append(stash, rawBlock{index: moving[d], from: moving[d]})
		default:
			wanted[d] = true
			missing = append(missing, objects.Want{Digest: d, Size: n})
		}
		blocks = append(blocks, b)
	}

	var store *objects.LocalStore
	if len(stash) > 0 || len(missing) > 0 {
		dir, err := os.MkdirTemp(opts.RawStagingDir, "autoami-raw-*")
		if err != nil {
			return res, fmt.Errorf("patch raw %s: staging directory: %w", path, err)
		}
		defer os.RemoveAll(dir)
		if store, err = objects.OpenLocalStore(dir); err != nil {
			return res, fmt.Errorf("patch raw %s: %w", path, err)
		}
	}
	buf := make([]byte, manifest.BlockSize)
	for _, s := range stash {
		n := blockLen(img, s.from)
		if _, err := f.ReadAt(buf[:n], int64(s.from)*manifest.BlockSize); err != nil {
			return res, fmt.Errorf("patch raw %s: read block %d: %w", path, s.from, err)
		}
		if err := store.Put(ctx, objects.Want{Digest: cur[s.from], Size: n}, bytes.NewReader(buf[:n])); err != nil {
			return res, fmt.Errorf("patch raw %s: keep block %d: %w", path, s.from, err)
		}
		res.ObjectsReused++
	}
	if len(missing) > 0 {
		if src == nil {
			return res, fmt.Errorf("patch raw %s: %d blocks are missing and no source was given", path, len(missing))
		}
		var total int64
		for _, w := range missing {
			total += w.Size
		}
		prog.phase(PhaseFetching, len(missing), total)
		sink := &rawSink{store: store, prog: prog, hook: hook}
		if err := src.Fetch(ctx, missing, sink); err != nil {
			if herr := sink.firstHookErr(); herr != nil {
				return res, herr
			}
			return res, fmt.Errorf("patch raw %s: fetch %d missing blocks: %w", path, len(missing), err)
		}
		for _, w := range missing {
			if ok, _ := store.Has(ctx, w.Digest); !ok {
				return res, fmt.Errorf("patch raw %s: the source did not deliver block %s", path, w.Digest)
			}
			res.ObjectsFetched++
			res.BytesFetched += w.Size
		}
	}
	if err := hook(PointFetched, ""); err != nil {
		return res, err
	}

	prog.phase(PhaseUpdating, len(blocks), int64(len(blocks))*manifest.BlockSize)
	for _, b := range blocks {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		off := int64(b.index) * manifest.BlockSize
		n := blockLen(img, b.index)
		data := buf[:n]
		switch {
		case b.zero && isFile:
			// A hole reads as zeros and costs no space.
			if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n); err != nil {
				return res, fmt.Errorf("patch raw %s: zero block %d: %w", path, b.index, err)
			}
			res.BlocksWritten++
			prog.add(1, n)
			if err := hook(PointCreated, fmt.Sprintf("block %d", b.index)); err != nil {
				return res, err
			}
			continue
		case b.zero:
			clear(data)
		case b.from >= 0:
			if _, err := f.ReadAt(data, int64(b.from)*manifest.BlockSize); err != nil {
				return res, fmt.Errorf("patch raw %s: read block %d: %w", path, b.from, err)
			}
		default:
			if err := readObject(ctx, store, objects.Want{Digest: img.Blocks[b.index], Size: n}, data); err != nil {
				return res, fmt.Errorf("patch raw %s: block %d: %w", path, b.index, err)
			}
		}
		if _, err := f.WriteAt(data, off); err != nil {
			return res, fmt.Errorf("patch raw %s: write block %d: %w", path, b.index, err)
		}
		res.BlocksWritten++
		res.BytesWritten += n
		prog.add(1, n)
		if err := hook(PointCreated, fmt.Sprintf("block %d", b.index)); err != nil {
			return res, err
		}
	}
	prog.phase(PhaseSyncing, 0, 0)
	if err := f.Sync(); err != nil {
		return res, fmt.Errorf("patch raw %s: sync: %w", path, err)
	}
	if err := hook(PointSynced, ""); err != nil {
		return res, err
	}
	prog.phase(PhaseDone, 0, 0)
	log.Info("patched raw image", "device", path, "blocks", len(img.Blocks), "blocks_written", res.BlocksWritten,
		"objects_fetched", res.ObjectsFetched, "objects_reused", res.ObjectsReused, "elapsed", time.Since(start))
	return res, nil
}

func hasKey[K comparable, V any](m map[K]V, k K) bool {
	_, ok := m[k]
	return ok
}

// readObject reads a staged block into data, verifying it again.
func readObject(ctx context.Context, store *objects.LocalStore, w objects.Want, data []byte) error {
	rc, err := store.Open(ctx, w.Digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	buf := bytes.NewBuffer(data[:0])
	return objects.Copy(buf, rc, w)
}

// hashBlocks hashes the first len(img.Blocks) blocks of f.
func hashBlocks(ctx context.Context, f *os.File, img *manifest.RawImage, parallel int, prog *progressReporter) ([]objects.Digest, error) {
	out := make([]objects.Digest, len(img.Blocks))
	workers := parallel
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	g, ctx := errgroup.WithContext(ctx)
	for w := range workers {
		g.Go(func() error {
			buf := make([]byte, manifest.BlockSize)
			for i := w; i < len(out); i += workers {
				if err := ctx.Err(); err != nil {
					return err
				}
				n := blockLen(img, i)
				if _, err := f.ReadAt(buf[:n], int64(i)*manifest.BlockSize); err != nil && err != io.EOF {
					return fmt.Errorf("read block %d: %w", i, err)
				}
				out[i] = sha256.Sum256(buf[:n])
				prog.add(1, n)
			}
			return nil
		})
	}
	return out, g.Wait()
}

// rawSink stores fetched blocks and calls the hook after each.
type rawSink struct {
	store   *objects.LocalStore
	prog    *progressReporter
	hook    func(Point, string) error
	mu      sync.Mutex
	hookErr error
}

func (s *rawSink) Put(ctx context.Context, w objects.Want, r io.Reader) error {
	if err := s.store.Put(ctx, w, r); err != nil {
		return err
	}
	s.prog.add(1, w.Size)
	if err := s.hook(PointStaged, w.Digest.String()); err != nil {
		s.mu.Lock()
		s.hookErr = err
		s.mu.Unlock()
		return err
	}
	return nil
}

func (s *rawSink) firstHookErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hookErr
}
