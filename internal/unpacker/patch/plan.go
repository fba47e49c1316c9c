package patch

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// lostFound is kept at the root when the manifest does not mention it: it
// belongs to the file system (e2fsck), not to the content.
const lostFound = "lost+found"

// actionKind says what the patch does at one path of the manifest.
type actionKind uint8

const (
	actKeep   actionKind = iota // the inode in place stays (metadata may change)
	actSame                     // a hard link name that already names the right inode
	actMkdir                    // a new directory
	actCreate                   // a new inode, made in staging and renamed into place
	actLink                     // a hard link to the group's inode, linked in staging and renamed into place
)

// action is the plan for one manifest entry.
type action struct {
	kind actionKind
	// existed: the path held something that is not deleted first (so the
	// entry counts as updated, not created).
	existed bool
	// cur is the scanned entry of the inode at this path (a hard link
	// resolved to its primary) for actKeep; nil otherwise.
	cur *manifest.Entry
	// meta: actKeep needs ownership, mode, xattrs or mtime set.
	meta bool
	// anchor is, for actLink, the path naming the inode to link to.
	anchor string
	// source is, for actCreate of non-empty regular files, where the content
	// comes from: the staged object, or copyFrom (a path in the tree that
	// keeps this content).
	copyFrom string
}

// metaOp sets the metadata of a kept inode through one of its names.
type metaOp struct {
	path string
	want *manifest.Entry
	cur  *manifest.Entry
	// fill: allocate the file's holes first (see allocate).
	fill bool
}

// stashOp keeps the content of a file that is going away as a staged object.
type stashOp struct {
	path   string
	digest objects.Digest
}

type plan struct {
	opts  Options
	log   *slog.Logger
	t     *tree
	stage *staging
	prog  *progressReporter
	start time.Time

	want, cur *manifest.Manifest
	// other and flagged are the scan's Other and Flagged: entries to
	// delete that the manifest cannot describe, and entries whose inode
	// flags must be cleared.
	other, flagged []string
	acts           []action // parallel to want.Entries
	metas          []metaOp
	deletes        []int // indexes into cur.Entries, children before parents
	stashes        []stashOp
	missing        []objects.Want
	// stagedUses counts the new inodes that take each staged object; the last
	// one takes the object itself by rename, the others copy it.
	stagedUses map[objects.Digest]int
	leftovers  int
	// trusted: the plan was made against Options.Current, without a scan of
	// the tree; fallback says why Current was not trusted, when it was given.
	trusted  bool
	fallback string
	nlinks   map[string]int // names per inode of Current (trusted plans)
	prepared time.Time      // end of Prepare
	// checks delivers the verdict of a trusted plan's checks (see
	// trustCurrent); Apply waits for it before changing the tree.
	checks     chan error
	checksDone bool
	checkErr   error
	used       bool
	hookMu     sync.Mutex // sources may put objects concurrently
}

func prepare(ctx context.Context, root string, m *manifest.Manifest, opts Options) (*Plan, error) {
	start := time.Now()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := checkManifest(m, opts); err != nil {
		return nil, fmt.Errorf("patch %s: %w", root, err)
	}
	prog := newProgress(opts.Progress)
	prog.phase(PhaseScanning, 0, 0)
	t, err := openTree(root)
	if err != nil {
		return nil, fmt.Errorf("patch %s: %w", root, err)
	}
	p := &plan{opts: opts, log: log, t: t, stage: newStaging(t), prog: prog, start: start, want: m,
		stagedUses: map[objects.Digest]int{}}
	if err := p.plan(ctx); err != nil {
		t.close()
		p.stage.close()
		return nil, fmt.Errorf("patch %s: %w", root, err)
	}
	if err := p.hook(PointScanned, ""); err != nil {
		p.release()
		return nil, err
	}
	p.prepared = time.Now()
	log.Debug("patch planned", "root", root, "trusted_current", p.trusted, "entries", len(m.Entries), "deletes", len(p.deletes),
		"missing_objects", len(p.missing), "staged_leftovers", p.leftovers, "elapsed", time.Since(start))
	return &Plan{impl: p}, nil
}

// checkManifest rejects manifests the engine must not apply, before anything
// is written.
func checkManifest(m *manifest.Manifest, opts Options) error {
	if err := m.Validate(); err != nil {
		return err
	}
	if m.Kind != manifest.KindTree {
		return fmt.Errorf("manifest is a raw image, not a file tree (use ApplyRaw)")
	}
	if m.Lookup(StagingDir) >= 0 {
		return fmt.Errorf("manifest entry %q: the name is reserved for the unpacker's staging directory", StagingDir)
	}
	if !opts.AllowDevices {
		for _, e := range m.Entries {
			if e.Type == manifest.TypeCharDevice || e.Type == manifest.TypeBlockDevice {
				return fmt.Errorf("manifest entry %q: %s nodes are not allowed from this source (%w)", e.Path, e.Type, ErrDevicesNotAllowed)
			}
		}
	}
	return nil
}

func (p *plan) release() {
	p.awaitChecks() // they use the root's descriptor
	p.stage.close()
	p.t.close()
}

func (p *plan) hook(pt Point, path string) error {
	if p.opts.Hook == nil {
		return nil
	}
	p.hookMu.Lock()
	defer p.hookMu.Unlock()
	if err := p.opts.Hook(pt, path); err != nil {
		return fmt.Errorf("patch %s at %s %q: %w: %w", p.t.root, pt, path, ErrInterrupted, err)
	}
	return nil
}

// plan finds what an interrupted patch staged and what the root holds now
// (Options.Current when it can be trusted, else a scan), and diffs it with
// the manifest.
func (p *plan) plan(ctx context.Context) error {
	n, err := p.stage.loadLeftovers(ctx)
	if err != nil {
		return err
	}
	p.leftovers = n
	if p.opts.Current != nil {
		start := time.Now()
		checks, err := p.trustCurrent()
		if err == nil {
			p.trusted = true
			p.startChecks(checks)
			p.log.Info("trusting the current manifest: tree not scanned", "root", p.t.root,
				"deletes", len(p.deletes), "metadata_updates", len(p.metas), "elapsed", time.Since(start))
			return nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		p.distrust(err)
	}
	return p.scanAndDiff(ctx)
}

// distrust drops a plan made from Options.Current, for the reason err.
func (p *plan) distrust(err error) {
	p.trusted = false
	p.fallback = err.Error()
	p.log.Warn("the root is not as the current manifest says: scanning the whole tree", "root", p.t.root, "reason", err)
	p.reset()
}

func (p *plan) scanAndDiff(ctx context.Context) error {
	p.prog.phase(PhaseScanning, 0, 0)
	if err := p.scan(ctx); err != nil {
		return err
	}
	p.diff()
	return nil
}

// reset forgets a diff, to make another.
func (p *plan) reset() {
	p.cur, p.other, p.flagged = nil, nil, nil
	p.acts, p.metas, p.deletes, p.stashes, p.missing = nil, nil, nil, nil, nil
	p.stagedUses = map[objects.Digest]int{}
	p.nlinks = nil
}

// scan reads what the root holds now.
func (p *plan) scan(ctx context.Context) error {
	exclude := []string{StagingDir}
	if p.want.Lookup(lostFound) < 0 {
		if st, err := p.t.lstat(lostFound); err == nil && st.Mode&0o170000 == 0o040000 {
			exclude = append(exclude, lostFound)
		}
	}
	sc, err := manifest.ScanDirectory(ctx, p.t.root, manifest.DirOptions{
		StatCachePath: p.opts.StatCachePath,
		KeepStatCache: true, // Apply records it when done
		Exclude:       exclude,
		Workers:       p.opts.Parallel,
		Logger:        p.log,
	})
	if err != nil {
		return err
	}
	p.cur, p.other, p.flagged = sc.Manifest, sc.Other, sc.Flagged
	return nil
}

func sameContent(cur, want *manifest.Entry) bool {
	if cur.Type != want.Type {
		return false
	}
	switch want.Type {
	case manifest.TypeRegular:
		return cur.Size == want.Size && cur.Digest == want.Digest
	case manifest.TypeSymlink:
		return cur.Link == want.Link
	case manifest.TypeCharDevice, manifest.TypeBlockDevice:
		return cur.DevMajor == want.DevMajor && cur.DevMinor == want.DevMinor
	}
	return true
}

func isDir(e *manifest.Entry) bool { return e.Type == manifest.TypeDirectory }

// diff decides an action for every entry of the manifest, which current
// entries to delete, and where the content of every new file comes from.
func (p *plan) diff() {
	want, cur := p.want, p.cur
	curIndex := make(map[string]int, len(cur.Entries))
	for i := range cur.Entries {
		curIndex[cur.Entries[i].Path] = i
	}
	// resolve maps a current entry to the entry holding its inode's data.
	resolve := func(i int) int {
		if cur.Entries[i].Type == manifest.TypeHardLink {
			return curIndex[cur.Entries[i].Link]
		}
		return i
	}
	links := map[string][]int{} // want primary path -> want hard link indexes
	for i := range want.Entries {
		if e := &want.Entries[i]; e.Type == manifest.TypeHardLink {
			links[e.Link] = append(links[e.Link], i)
		}
	}

	// Deletions: current names the manifest lacks, and names whose kind
	// (directory or not) changes. Reverse canonical order puts children first.
	deleted := map[string]bool{}
	for i := len(cur.Entries) - 1; i > 0; i-- {
		c := &cur.Entries[i]
		wi := want.Lookup(c.Path)
		if wi < 0 || isDir(&want.Entries[wi]) != isDir(c) {
			p.deletes = append(p.deletes, i)
			deleted[c.Path] = true
		}
	}

	p.acts = make([]action, len(want.Entries))
	claimed := map[int]string{} // kept current inode -> its anchor path
	for i := range want.Entries {
		w := &want.Entries[i]
		ci, exists := curIndex[w.Path]
		exists = exists && !deleted[w.Path]
		a := &p.acts[i]
		a.existed = exists
		switch {
		case w.Type == manifest.TypeHardLink:
			continue // decided with its group below
		case isDir(w):
			if exists {
				c := &cur.Entries[ci]
				*a = action{kind: actKeep, existed: true, cur: c, meta: metaNeedsUpdate(c, w, true)}
			} else {
				a.kind = actMkdir
			}
			continue
		}
		// A group: the primary name and its hard links. Keep a current
		// inode with the same content that one of the names already has.
		group := append([]int{i}, links[w.Path]...)
		kept, anchor := -1, ""
		for _, j := range group {
			cj, ok := curIndex[want.Entries[j].Path]
			if !ok || deleted[want.Entries[j].Path] {
				continue
			}
			r := resolve(cj)
			if _, taken := claimed[r]; taken || !sameContent(&cur.Entries[r], w) {
				continue
			}
			kept, anchor = r, want.Entries[j].Path
			break
		}
		if kept >= 0 {
			claimed[kept] = anchor
			c := &cur.Entries[kept]
			// A file the revision wants without holes that has some here
			// (written sparsely before) gets its holes allocated in place.
			fill := w.Type == manifest.TypeRegular && c.Sparse && !w.Sparse
			meta := metaNeedsUpdate(c, w, true) || fill
			if meta {
				p.metas = append(p.metas, metaOp{path: anchor, want: w, cur: c, fill: fill})
			}
			for _, j := range group {
				aj := &p.acts[j]
				cj, ok := curIndex[want.Entries[j].Path]
				if ok && !deleted[want.Entries[j].Path] && resolve(cj) == kept {
					aj.kind, aj.cur, aj.meta = actSame, c, meta && j == i
					if j == i {
						aj.kind = actKeep
					}
				} else {
					aj.kind, aj.anchor = actLink, anchor
				}
			}
			continue
		}
		a.kind = actCreate
		for _, j := range links[w.Path] {
			p.acts[j].kind, p.acts[j].anchor = actLink, w.Path
		}
	}
	p.planContent(claimed, resolve)
}

// planContent finds the source of every new regular file's content: an
// object already staged, a kept file of the tree holding it (copied), a file
// going away (stashed by a hard link into staging before deletion, so it
// costs no copy), or else the Source (missing).
func (p *plan) planContent(claimed map[int]string, resolve func(int) int) {
	byDigest := map[objects.Digest][]int{} // current inodes by content
	for i := range p.cur.Entries {
		if c := &p.cur.Entries[i]; c.Type == manifest.TypeRegular && c.Size > 0 {
			byDigest[c.Digest] = append(byDigest[c.Digest], i)
		}
	}
	decided := map[objects.Digest]bool{}
	missingSeen := map[objects.Digest]bool{}
	for i := range p.want.Entries {
		w := &p.want.Entries[i]
		if p.acts[i].kind != actCreate || w.Type != manifest.TypeRegular || w.Size == 0 {
			continue
		}
		d := w.Digest
		if p.stage.has(d) {
			p.stagedUses[d]++
			continue
		}
		// A kept file with this content: copy from it.
		var keptPath string
		for _, ci := range byDigest[d] {
			if anchor, ok := claimed[ci]; ok {
				keptPath = anchor
				break
			}
		}
		if keptPath != "" {
			p.acts[i].copyFrom = keptPath
			continue
		}
		p.stagedUses[d]++
		if decided[d] {
			continue
		}
		decided[d] = true
		if cands := byDigest[d]; len(cands) > 0 {
			p.stashes = append(p.stashes, stashOp{path: p.cur.Entries[cands[0]].Path, digest: d})
			continue
		}
		if !missingSeen[d] {
			missingSeen[d] = true
			p.missing = append(p.missing, objects.Want{Digest: d, Size: w.Size})
		}
	}
}

func (p *plan) missingObjects() []objects.Want {
	return append([]objects.Want(nil), p.missing...)
}
