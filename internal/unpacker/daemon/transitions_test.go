package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/loopdev"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/devices"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/volume"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// bareStream is a stream in state st of a daemon that logs nowhere.
func bareStream(st wire.StreamState) *stream {
	d := &daemon{log: slog.New(slog.DiscardHandler)}
	return &stream{d: d, name: "web/al2023", state: st, changed: make(chan struct{})}
}

// TestTransitionTableWalk walks every pair of states: a change the table
// lists is made, every other change is refused with an error naming the
// stream and both states, and leaves the state as it was.
func TestTransitionTableWalk(t *testing.T) {
	for from, tos := range transitions {
		if !slices.Contains(allStates, from) {
			t.Errorf("the table has a row for the unknown state %q", from)
		}
		for _, to := range tos {
			if !slices.Contains(allStates, to) {
				t.Errorf("the table lets %s change to the unknown state %q", from, to)
			}
			if to == from {
				t.Errorf("the table lists %s → %s: staying is not a transition", from, to)
			}
		}
		if len(slices.Compact(slices.Sorted(slices.Values(tos)))) != len(tos) {
			t.Errorf("the row of %s lists a state twice: %v", from, tos)
		}
	}
	allowed := 0
	for _, from := range allStates {
		if len(transitions[from]) == 0 {
			t.Errorf("no transition leaves %s", from)
		}
		for _, to := range allStates {
			s := bareStream(from)
			err := s.setState(to)
			listed := slices.Contains(transitions[from], to)
			switch {
			case from == to:
				if err != nil {
					t.Errorf("staying %s: %v", from, err)
				}
			case listed:
				allowed++
				if err != nil || s.currentState() != to {
					t.Errorf("%s → %s is in the table but: %v (state %s)", from, to, err, s.currentState())
				}
			default:
				if err == nil {
					t.Errorf("%s → %s is not in the table but was made", from, to)
					continue
				}
				for _, name := range []string{`"web/al2023"`, string(from), string(to)} {
					if !strings.Contains(err.Error(), name) {
						t.Errorf("refusal of %s → %s does not name %s: %v", from, to, name, err)
					}
				}
				if s.currentState() != from {
					t.Errorf("refused %s → %s left the stream %s", from, to, s.currentState())
				}
			}
		}
	}
	t.Logf("%d of %d changes between %d states allowed", allowed, len(allStates)*(len(allStates)-1), len(allStates))
}

// TestTransitionTableKeepsThePromises checks the table against the rules
// the daemon promises, stated here independently of it.
func TestTransitionTableKeepsThePromises(t *testing.T) {
	refused := func(why string, from, to wire.StreamState) {
		t.Helper()
		if checkTransition("s", from, to) == nil {
			t.Errorf("%s → %s is allowed, but %s", from, to, why)
		}
	}
	for _, st := range allStates {
		// Clean at a revision only after a complete, synced unpack: of the
		// unpack's phases, only syncing leads to clean (and fetching the
		// manifest, which goes back to the clean state it came from).
		if st.Busy() && st != wire.StateSyncing && st != wire.StateFetchingManifest {
			refused("only a synced unpack makes a stream clean", st, wire.StateClean)
		}
		// Only a clean stream is prepared for a snapshot.
		if st != wire.StateClean && st != wire.StateUnmounted && st != wire.StateNoDevice &&
			st != wire.StateFrozen && st != wire.StateUnmountedForSnapshot {
			refused("only a clean stream is prepared for a snapshot", st, wire.StateFrozen)
			refused("only a clean stream is prepared for a snapshot", st, wire.StateUnmountedForSnapshot)
		}
	}
	refused("a dirty stream needs an unpack to be clean again", wire.StateDirty, wire.StateClean)
	refused("a frozen stream is released before it changes", wire.StateFrozen, wire.StateFetchingManifest)
	refused("an unmounted-for-snapshot stream is released before it changes", wire.StateUnmountedForSnapshot, wire.StateFetchingManifest)
	refused("a stream becomes dirty only in an unpack", wire.StateClean, wire.StateDirty)
	refused("a new volume's content is not known", wire.StatePreparingVolume, wire.StateClean)
	refused("an unpack starts only once", wire.StateScanning, wire.StateFetchingManifest)
}

// recordedTransitions collects the changes of state the daemon logs.
type recordedTransitions struct {
	slog.Handler // the test's log

	mu      *sync.Mutex
	seen    map[[2]wire.StreamState]int
	refused *[]string
}

func newRecordedTransitions(t *testing.T) *recordedTransitions {
	var refused []string
	return &recordedTransitions{
		Handler: slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}),
		mu:      &sync.Mutex{}, seen: map[[2]wire.StreamState]int{}, refused: &refused,
	}
}

func (r *recordedTransitions) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Message == "stream state changed" || rec.Message == "state transition refused" {
		var from, to wire.StreamState
		rec.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "from":
				from = wire.StreamState(a.Value.String())
			case "to":
				to = wire.StreamState(a.Value.String())
			}
			return true
		})
		r.mu.Lock()
		if rec.Message == "state transition refused" {
			*r.refused = append(*r.refused, string(from)+" → "+string(to))
		} else {
			r.seen[[2]wire.StreamState{from, to}]++
		}
		r.mu.Unlock()
	}
	return r.Handler.Handle(ctx, rec)
}

func (r *recordedTransitions) WithAttrs(as []slog.Attr) slog.Handler {
	c := *r
	c.Handler = r.Handler.WithAttrs(as)
	return &c
}

func (r *recordedTransitions) WithGroup(name string) slog.Handler {
	c := *r
	c.Handler = r.Handler.WithGroup(name)
	return &c
}

// result returns what was recorded: how often each change was made, and
// the changes refused.
func (r *recordedTransitions) result() (map[[2]wire.StreamState]int, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.seen), slices.Clone(*r.refused)
}

// wholeDiskVolumes lays out an "empty" volume as one ext4 file system on
// the whole device and finds it again by its label, so that the daemon's
// paths for volumes of origin empty (preparing, making bootable) run on a
// loop device without partitions or boot loaders.
type wholeDiskVolumes struct{}

func (wholeDiskVolumes) Create(ctx context.Context, disk string, opts volume.CreateOptions) (*volume.Layout, error) {
	if out, err := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-L", opts.RootLabel, disk).CombinedOutput(); err != nil {
		return nil, errors.New("mkfs.ext4: " + err.Error() + ": " + string(out))
	}
	return wholeDiskLayout(disk, opts.RootLabel), nil
}

func (wholeDiskVolumes) Find(_ context.Context, disk string, opts volume.FindOptions) (*volume.Layout, error) {
	if opts.RootLabel == "" {
		return nil, errors.New("wholeDiskVolumes: no root label to find")
	}
	return wholeDiskLayout(disk, opts.RootLabel), nil
}

func wholeDiskLayout(disk, label string) *volume.Layout {
	return &volume.Layout{Disk: disk, Root: volume.Partition{Number: 1, Device: disk, Filesystem: "ext4", Label: label},
		ESP: &volume.Partition{}, BIOSBoot: &volume.Partition{}}
}

func (wholeDiskVolumes) MakeBootable(context.Context, *volume.Layout, string, volume.BootOptions) (*volume.BootReport, error) {
	return &volume.BootReport{}, nil
}

func (wholeDiskVolumes) CheckBootable(*manifest.Manifest) error { return nil }

// Normalize is the real one: it needs only the root's device.
func (wholeDiskVolumes) Normalize(ctx context.Context, layout *volume.Layout, opts volume.NormalizeOptions) error {
	return volume.Normalize(ctx, layout, opts)
}

// GrowthNeeded and Grow grow the whole-disk file system to fill its device.
func (wholeDiskVolumes) GrowthNeeded(ctx context.Context, layout *volume.Layout, _ volume.GrowOptions) (bool, string, error) {
	fsBytes, devBytes, err := wholeDiskSizes(ctx, layout.Disk)
	if err != nil {
		return false, "", err
	}
	return devBytes-fsBytes >= 16<<20, fmt.Sprintf("file system %d of %d bytes", fsBytes, devBytes), nil
}

func (wholeDiskVolumes) Grow(ctx context.Context, layout *volume.Layout, _ volume.GrowOptions) (*volume.Layout, *volume.GrowReport, error) {
	before, devBytes, err := wholeDiskSizes(ctx, layout.Disk)
	if err != nil {
		return nil, nil, err
	}
	if out, err := exec.CommandContext(ctx, "e2fsck", "-f", "-p", layout.Disk).CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("e2fsck: %v: %s", err, out)
	}
	if out, err := exec.CommandContext(ctx, "resize2fs", "-f", layout.Disk).CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("resize2fs: %v: %s", err, out)
	}
	after, _, err := wholeDiskSizes(ctx, layout.Disk)
	if err != nil {
		return nil, nil, err
	}
	l := *layout
	return &l, &volume.GrowReport{DiskBytes: devBytes, RootBefore: devBytes, RootAfter: devBytes, FilesystemBefore: before, FilesystemAfter: after}, nil
}

// wholeDiskSizes are the sizes of the ext4 file system on disk and of disk.
func wholeDiskSizes(ctx context.Context, disk string) (fsBytes, devBytes int64, err error) {
	out, err := exec.CommandContext(ctx, "dumpe2fs", "-h", disk).Output()
	if err != nil {
		return 0, 0, fmt.Errorf("dumpe2fs -h %s: %w", disk, err)
	}
	var blocks, size int64
	for _, line := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(line, ":")
		switch k {
		case "Block count":
			blocks, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		case "Block size":
			size, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	if devBytes, err = devices.SizeOf(disk); err != nil {
		return 0, 0, err
	}
	return blocks * size, devBytes, nil
}

// TestStreamPathsTakeOnlyAllowedTransitions runs a stream through every
// path that changes its state, on a loop device: associate (laying out an
// empty volume), unpack (with the trusted plan falling back to a scan), a
// failed manifest, freeze and thaw, unmount and mount for a snapshot, an
// unpack failing half-way, and restarts after a crash while dirty, frozen,
// unmounted for a snapshot and without the volume's device. No change is
// refused, every change is in the table, and each path took the changes
// it is known for.
func TestStreamPathsTakeOnlyAllowedTransitions(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop devices and mounts (make test runs as root)")
	}
	dir := t.TempDir()
	stateDir, localDir := filepath.Join(dir, "state"), filepath.Join(dir, "volumes")
	const vol, name = "vol-0transitions", "paths"
	mountDir := filepath.Join(stateDir, "mnt", vol)
	t.Cleanup(func() { loopdev.CleanupDaemon(t, stateDir, localDir) })
	t.Cleanup(func() { thawFS(mountDir) }) // runs first: a failure may leave it frozen
	rec := newRecordedTransitions(t)
	ctx := context.Background()

	var failPatch atomic.Bool
	var d *Daemon
	start := func() {
		t.Helper()
		finder, err := devices.NewLocal(localDir)
		if err != nil {
			t.Fatal(err)
		}
		d, err = New(ctx, Config{
			StateDir: stateDir, Devices: finder, Volumes: wholeDiskVolumes{}, Version: "test",
			Hook: func(point string) error {
				if point == "patch:deleted" && failPatch.Load() {
					return errors.New("test: stop in the middle of the patch")
				}
				return nil
			},
			Logger: slog.New(rec),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if d != nil {
			d.Close()
		}
	})
	restart := func(what string, between func()) {
		t.Helper()
		d.Close()
		d = nil
		between()
		start()
		t.Logf("restarted: %s", what)
	}
	unmount := func() {
		t.Helper()
		if out, err := exec.Command("umount", mountDir).CombinedOutput(); err != nil {
			t.Fatalf("umount %s: %v: %s", mountDir, err, out)
		}
	}
	state := func() wire.Stream {
		t.Helper()
		s, err := d.impl.streamByName(name)
		if err != nil {
			t.Fatal(err)
		}
		return s.view()
	}
	want := func(what string, st wire.StreamState) {
		t.Helper()
		if got := state(); got.State != st {
			t.Fatalf("%s: stream is %s (last error %q), want %s", what, got.State, got.LastError, st)
		}
	}
	snapshot := func(rev string, mode wire.SnapshotMode, want wire.StreamState) {
		t.Helper()
		if st, err := d.PrepareForSnapshot(ctx, wire.PrepareForSnapshotRequest{Stream: name, Revision: rev, Mode: mode}); err != nil || st.State != want {
			t.Fatalf("prepare for snapshot (%s): %v, %s", mode, err, st.State)
		}
	}
	release := func() {
		t.Helper()
		if st, err := d.Release(ctx, wire.ReleaseRequest{Stream: name}); err != nil || st.State != wire.StateClean {
			t.Fatalf("release: %v, %s", err, st.State)
		}
	}

	rs := newRevisionServer(t)
	dirA, dirB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	writeTree(t, dirA, map[string]string{"etc/os-release": "A\n", "usr/bin/tool": "tool v1\n", "usr/lib/old": "going away\n"})
	writeTree(t, dirB, map[string]string{"etc/os-release": "B\n", "usr/bin/tool": "tool v2\n", "usr/lib/new": "arrived\n"})
	revA, _ := rs.add(t, dirA)
	revB, _ := rs.add(t, dirB)
	absent := objects.Sum([]byte("a revision the store does not have")).String()

	start()
	if _, err := d.AttachDevice(ctx, wire.AttachDeviceRequest{VolumeID: vol, SizeBytes: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.AssociateStream(ctx, wire.AssociateStreamRequest{Stream: name, VolumeID: vol, Origin: wire.OriginEmpty}); err != nil {
		t.Fatal(err)
	}
	want("associate an empty volume", wire.StateMounted)
	if st := unpackAndWait(t, d, rs, name, absent); st.Error == "" {
		t.Fatalf("unpack of a revision the store lacks: %+v", st)
	}
	want("a manifest that is not there, on a mounted stream", wire.StateMounted)
	if st := unpackAndWait(t, d, rs, name, revA); !st.Done {
		t.Fatalf("unpack A: %+v", st)
	}
	want("unpack A", wire.StateClean)
	if st := unpackAndWait(t, d, rs, name, absent); st.Error == "" {
		t.Fatalf("unpack of a revision the store lacks: %+v", st)
	}
	want("a manifest that is not there, on a clean stream", wire.StateClean)

	snapshot(revA, wire.SnapshotFreeze, wire.StateFrozen)
	release()
	snapshot(revA, wire.SnapshotUnmount, wire.StateUnmountedForSnapshot)
	release()

	// Someone changed a file the next revision changes too: the trusted
	// plan's checks fail while fetching, and the unpack scans after all.
	if err := os.WriteFile(filepath.Join(mountDir, "etc/os-release"), []byte("changed behind the daemon's back\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if st := unpackAndWait(t, d, rs, name, revB); !st.Done {
		t.Fatalf("unpack B: %+v", st)
	}
	if r := lastResult(t, d, name); r.NotTrusted == "" {
		t.Fatalf("the trusted plan did not fall back to a scan: %+v", r)
	}
	want("unpack B", wire.StateClean)

	failPatch.Store(true)
	if st := unpackAndWait(t, d, rs, name, revA); st.Done || st.Error == "" {
		t.Fatalf("unpack A failing half-way: %+v", st)
	}
	failPatch.Store(false)
	want("an unpack failing half-way", wire.StateDirty)
	if st := unpackAndWait(t, d, rs, name, absent); st.Error == "" {
		t.Fatalf("unpack of a revision the store lacks: %+v", st)
	}
	want("a manifest that is not there, on a dirty stream", wire.StateDirty)

	restart("dirty, after a reboot (unmounted)", unmount)
	want("restart of a dirty stream", wire.StateDirty)
	if st := unpackAndWait(t, d, rs, name, revA); !st.Done {
		t.Fatalf("unpack A of the dirty stream: %+v", st)
	}
	want("unpack A of the dirty stream", wire.StateClean)

	snapshot(revA, wire.SnapshotFreeze, wire.StateFrozen)
	restart("frozen", func() {})
	want("restart while frozen", wire.StateFrozen)
	release()

	snapshot(revA, wire.SnapshotUnmount, wire.StateUnmountedForSnapshot)
	restart("unmounted for a snapshot", func() {})
	want("restart while unmounted for a snapshot", wire.StateUnmountedForSnapshot)
	release()

	// The machine restarted without the volume: no device until it is
	// attached again.
	file := filepath.Join(localDir, vol+".img")
	restart("without the volume", func() {
		unmount()
		loops, err := devices.LoopsOf(ctx, file)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range loops {
			if out, err := exec.Command("losetup", "-d", l).CombinedOutput(); err != nil {
				t.Fatalf("losetup -d %s: %v: %s", l, err, out)
			}
		}
		if err := os.Rename(file, file+".away"); err != nil {
			t.Fatal(err)
		}
	})
	want("restart without the volume", wire.StateNoDevice)
	if err := os.Rename(file+".away", file); err != nil {
		t.Fatal(err)
	}
	if _, err := d.AttachDevice(ctx, wire.AttachDeviceRequest{VolumeID: vol}); err != nil {
		t.Fatal(err)
	}
	want("attach of the volume again", wire.StateClean)

	// The volume grew (as after ModifyVolume): associating the clean
	// stream again unmounts it, grows its root and mounts it again.
	if err := os.Truncate(file, 128<<20); err != nil {
		t.Fatal(err)
	}
	loops, err := devices.LoopsOf(ctx, file)
	if err != nil || len(loops) != 1 {
		t.Fatalf("loop devices of %s: %v, %v", file, loops, err)
	}
	if out, err := exec.Command("losetup", "--set-capacity", loops[0]).CombinedOutput(); err != nil {
		t.Fatalf("losetup --set-capacity %s: %v: %s", loops[0], err, out)
	}
	if _, err := d.AssociateStream(ctx, wire.AssociateStreamRequest{Stream: name, VolumeID: vol, Origin: wire.OriginEmpty}); err != nil {
		t.Fatal(err)
	}
	want("association after the volume grew", wire.StateClean)
	if needed, why, err := (wholeDiskVolumes{}).GrowthNeeded(ctx, &volume.Layout{Disk: loops[0]}, volume.GrowOptions{}); err != nil || needed {
		t.Fatalf("after the association the root does not fill the volume: %s, %v", why, err)
	}

	seen, refused := rec.result()
	if len(refused) > 0 {
		t.Errorf("refused transitions: %v", refused)
	}
	for tr, n := range seen {
		if tr[0] == tr[1] || checkTransition(name, tr[0], tr[1]) != nil {
			t.Errorf("logged %s → %s (%d times), which the table does not allow", tr[0], tr[1], n)
		}
	}
	for _, tr := range [][2]wire.StreamState{
		{wire.StateUnmounted, wire.StatePreparingVolume}, {wire.StatePreparingVolume, wire.StateMounted},
		{wire.StateMounted, wire.StateFetchingManifest}, {wire.StateFetchingManifest, wire.StateMounted},
		{wire.StateFetchingManifest, wire.StateScanning}, {wire.StateScanning, wire.StateFetching},
		{wire.StateFetching, wire.StateScanning}, {wire.StateScanning, wire.StateUpdating},
		{wire.StateFetching, wire.StateUpdating},
		{wire.StateUpdating, wire.StateSyncing}, {wire.StateSyncing, wire.StateMakingBootable},
		{wire.StateMakingBootable, wire.StateSyncing}, {wire.StateSyncing, wire.StateClean},
		{wire.StateClean, wire.StateFetchingManifest}, {wire.StateFetchingManifest, wire.StateClean},
		{wire.StateClean, wire.StateFrozen}, {wire.StateFrozen, wire.StateClean},
		{wire.StateClean, wire.StateUnmountedForSnapshot}, {wire.StateUnmountedForSnapshot, wire.StateClean},
		{wire.StateUpdating, wire.StateDirty}, {wire.StateDirty, wire.StateFetchingManifest},
		{wire.StateFetchingManifest, wire.StateDirty},
		{wire.StateUnmounted, wire.StateDirty}, {wire.StateUnmounted, wire.StateFrozen},
		{wire.StateUnmounted, wire.StateUnmountedForSnapshot}, {wire.StateUnmounted, wire.StateNoDevice},
		{wire.StateNoDevice, wire.StateClean},
		{wire.StateClean, wire.StateUnmounted}, {wire.StateUnmounted, wire.StateClean},
	} {
		if seen[tr] == 0 {
			t.Errorf("the paths never took %s → %s", tr[0], tr[1])
		}
	}
	var untaken []string
	for _, from := range allStates {
		for _, to := range transitions[from] {
			if seen[[2]wire.StreamState{from, to}] == 0 {
				untaken = append(untaken, string(from)+" → "+string(to))
			}
		}
	}
	t.Logf("allowed transitions these paths do not take: %v", untaken)
}
