package provider

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/publisher"
	"github.com/autoami/terraform-provider-autoami/internal/testworld"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/bootfs"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
	"github.com/autoami/terraform-provider-autoami/internal/unpackerinstance"
)

// killPoint is where TestAccPublishedAMI_killed kills terraform: on the
// first provider log line of a publisher event of step and kind (in any
// target).
type killPoint struct {
	name string
	step publisher.Step
	kind publisher.EventKind
	// pending is how long moto keeps new snapshots and images pending
	// during the killed apply (so a kill in a wait lands in the wait).
	pending moto.Pending
	// afterKill, when set, completes what the kill left (see its use).
	afterKill func(t *testing.T, k *killedWorld, killed killedRun)
}

// killedTargets are the two targets of the test: the provider's own
// account in us-east-1 and another account (through the unpacker's role)
// in eu-west-1.
var killedTargets = []pubTarget{pubOwnEast, pubOtherWest}

// An apply interrupted by a killed terraform (SIGKILL to terraform and the
// provider plugin: no deferred cleanup, no release, no state written) is
// finished by the next plain apply, and leaves no orphan: the unpackers
// and the stream are applied first; then, for each kill point, the
// published AMI's apply is killed when the publisher reports the point's
// step, the next apply completes (state holds both targets' AMIs, a plan
// shows no changes), the inventory holds exactly one image per target,
// its snapshot and one stream volume per target (attached only to the
// target's unpacker) and nothing else new, each daemon holds the stream
// clean at the revision, and destroying the published AMI leaves the world
// as the unpackers alone make it. The context-cancelled half of this is
// internal/publisher's TestCancelledAtEveryStepNothingIsOrphaned.
func TestAccPublishedAMI_killed(t *testing.T) {
	w := newPubWorld(t, killedTargets...)
	trees := bootfs.MustBuild(t)
	t.Setenv("AUTOAMI_CACHE_DIR", t.TempDir())
	tf := newTFCLI(t, killedProviderBinary(t))
	w.preCheck()
	tf.writeConfig(w.config(pubConfig{
		stream:    treeSource(trees.Rev1),
		published: fmt.Sprintf("  ssm_parameter = { name = %q }\n", pubParameter),
	}))
	ctx := context.Background()
	const commandTimeout = 5 * time.Minute
	cmdCtx := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, commandTimeout) }
	apply := []string{"apply", "-auto-approve", "-input=false", "-no-color"}

	// The unpackers and the stream first: the killed applies publish only.
	setupArgs := slices.Clone(apply)
	for _, tg := range killedTargets {
		setupArgs = append(setupArgs, "-target=autoami_unpacker."+tg.unpacker())
	}
	setupArgs = append(setupArgs, "-target="+pubStreamAddr)
	start := time.Now()
	c, cancel := cmdCtx()
	err := tf.run(c, "0-setup-apply", setupArgs...)
	cancel()
	destroyed := false
	t.Cleanup(func() {
		if destroyed {
			return
		}
		c, cancel := cmdCtx()
		defer cancel()
		if err := tf.run(c, "cleanup-destroy", "destroy", "-auto-approve", "-input=false", "-no-color"); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("unpackers and stream applied in %s", time.Since(start).Round(time.Millisecond))
	setup, err := tf.showJSON(ctx)
	if err != nil {
		t.Fatal(err)
	}
	world, err := newKilledWorld(ctx, setup)
	if err != nil {
		t.Fatal(err)
	}

	points := []killPoint{
		// The daemon is unpacking (the provider signs its URLs): it is
		// left waiting for URLs that never come.
		{name: "during_unpack", step: publisher.StepUnpack, kind: publisher.EventWait},
		// Between CreateSnapshot and the release of the stream. That
		// window is one daemon call (milliseconds) wide, too narrow for a
		// signal timed from the log to land in it every time (it did in
		// some runs: the other target was there). So terraform is killed
		// while the snapshot is pending (3 s), and the killed target's
		// daemon is put back into what a kill a moment earlier leaves:
		// the stream unmounted for the snapshot at the revision.
		{name: "between_create_snapshot_and_release", step: publisher.StepWaitSnapshot, kind: publisher.EventWait,
			pending: moto.Pending{Image: 300 * time.Millisecond, Snapshot: 3 * time.Second}, afterKill: unreleaseStream},
		// RegisterImage has returned; the image stays pending for 3 s.
		{name: "during_wait_for_image", step: publisher.StepWaitImage, kind: publisher.EventWait,
			pending: moto.Pending{Image: 3 * time.Second, Snapshot: 300 * time.Millisecond}},
	}
	for i, kp := range points {
		clean := false
		t.Run(kp.name, func(t *testing.T) {
			clean = world.killAndResume(t, tf, i+1, kp)
		})
		if !clean {
			// What is left would fail the next points for this one's reason.
			t.Fatalf("%s left the world unlike the unpackers alone make it: not going on", kp.name)
		}
	}

	c, cancel = cmdCtx()
	err = tf.run(c, "9-destroy", "destroy", "-auto-approve", "-input=false", "-no-color")
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	destroyed = true
	if err := w.checkNothingLeft(nil); err != nil {
		t.Fatal(err)
	}
}

// killedWorld is what TestAccPublishedAMI_killed compares against: the
// inventory with the unpackers and the stream applied (nothing published),
// the unpackers' targets and the stream's revision.
type killedWorld struct {
	baseline  moto.Inventory
	unpackers map[string]unpackerinstance.Target // by target key
	revision  string
}

func newKilledWorld(ctx context.Context, state map[string]map[string]any) (*killedWorld, error) {
	k := &killedWorld{unpackers: map[string]unpackerinstance.Target{}}
	for _, tg := range killedTargets {
		addr := "autoami_unpacker." + tg.unpacker()
		v, ok := state[addr]
		if !ok {
			return nil, fmt.Errorf("%s is not in the state", addr)
		}
		m, _ := v["target"].(map[string]any)
		s := func(key string) string { x, _ := m[key].(string); return x }
		k.unpackers[tg.key()] = unpackerinstance.Target{Region: s("region"), AccountID: s("account_id"), RoleARN: s("role_arn"),
			InstanceID: s("instance_id"), Endpoint: s("endpoint"), ServerCertificateFingerprint: s("server_certificate_fingerprint"),
			ClientCertificatePEM: s("client_certificate_pem"), ClientPrivateKeyPEM: s("client_private_key_pem")}
		if k.unpackers[tg.key()].InstanceID == "" {
			return nil, fmt.Errorf("%s has no target.instance_id in the state", addr)
		}
	}
	k.revision, _ = state[pubStreamAddr]["revision"].(string)
	if len(k.revision) != 64 {
		return nil, fmt.Errorf("%s has revision %q", pubStreamAddr, k.revision)
	}
	inv, err := testAccWorld.Inventory(ctx)
	if err != nil {
		return nil, err
	}
	if left := inv.Leftovers(testworld.TaggedWith(publisher.TagPublication, "")); len(left) > 0 {
		return nil, fmt.Errorf("the publication made things before it was applied: %v", left)
	}
	k.baseline = inv
	return k, nil
}

// killAndResume is one kill point: the killed apply, the apply that
// finishes, the checks, and the destroy of the published AMI. It reports
// whether that destroy left the world as the baseline (so the next point
// starts from it), whatever else failed.
func (k *killedWorld) killAndResume(t *testing.T, tf *tfCLI, n int, kp killPoint) (clean bool) {
	ctx := context.Background()
	run := func(name string, args ...string) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		if err := tf.run(c, fmt.Sprintf("%d-%s-%s", n, kp.name, name), args...); err != nil {
			t.Fatal(err)
		}
	}
	pending := kp.pending
	if pending == (moto.Pending{}) {
		pending = moto.Pending{Image: 300 * time.Millisecond, Snapshot: 300 * time.Millisecond}
	}
	if err := testAccWorld.Moto.SetPending(ctx, pending); err != nil {
		t.Fatal(err)
	}

	c, cancel := context.WithTimeout(ctx, 5*time.Minute)
	killed, err := tf.applyKilled(c, fmt.Sprintf("%d-%s-killed-apply", n, kp.name), func(l providerLine) bool {
		return l.Fields["step"] == string(kp.step) && l.Fields["event"] == string(kp.kind)
	}, "-auto-approve", "-input=false", "-no-color")
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killed %v %s after %s on %q (%s %s %s)", killed.Group, "(terraform and its plugin)", killed.Elapsed.Round(time.Millisecond),
		killed.At.Message, killed.At.Fields["target"], killed.At.Fields["step"], killed.At.Fields["event"])
	if !slices.ContainsFunc(killed.Group, func(p groupProc) bool { return strings.HasPrefix(p.Comm, "terraform-provi") }) {
		t.Errorf("the provider plugin was not in terraform's process group %v: the kill did not reach it", killed.Group)
	}
	// Where each target really was when the group died.
	last := map[string]string{}
	for _, l := range killed.Progress {
		last[l.Fields["target"]] = l.Fields["step"] + " (" + l.Fields["event"] + ")"
	}
	t.Logf("last progress per target: %v", last)
	if counts, err := pubCountByKind(ctx); err == nil {
		t.Logf("the interruption left: %v", counts)
	}
	t.Logf("the daemons right after the kill: %s", k.daemonStreams(ctx))
	if kp.afterKill != nil {
		kp.afterKill(t, k, killed)
	}

	if err := testAccWorld.Moto.SetPending(ctx, moto.Pending{Image: 300 * time.Millisecond, Snapshot: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	run("resume-apply", "apply", "-auto-approve", "-input=false", "-no-color")
	t.Logf("the next apply completed in %s", time.Since(start).Round(time.Millisecond))
	state, err := tf.showJSON(ctx)
	if err != nil {
		t.Fatal(err)
	}
	amis, err := killedAMIs(state)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("amis: %v", amis)
	if err := k.checkPublished(ctx, amis); err != nil {
		t.Error(err)
	}
	if err := k.checkDaemons(ctx, true); err != nil {
		t.Error(err)
	}
	c, cancel = context.WithTimeout(ctx, 5*time.Minute)
	code, err := tf.runCode(c, fmt.Sprintf("%d-%s-plan", n, kp.name), "plan", "-detailed-exitcode", "-input=false", "-no-color")
	cancel()
	if err != nil || code != 0 {
		t.Errorf("the plan after the finishing apply: exit code %d (want 0: no changes), %v", code, err)
	}

	run("destroy-published", "destroy", "-auto-approve", "-input=false", "-no-color", "-target="+pubAddr)
	inv, err := testAccWorld.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clean = true
	if diff := k.newSince(inv); len(diff) > 0 {
		t.Errorf("left after destroying the published AMI: %v", diff)
		clean = false
	}
	if err := k.checkDaemons(ctx, false); err != nil {
		t.Error(err)
		clean = false
	}
	return clean
}

// killedAMIs is `amis` of the published AMI in the state.
func killedAMIs(state map[string]map[string]any) (map[string]pubAMI, error) {
	v, ok := state[pubAddr]
	if !ok {
		return nil, fmt.Errorf("%s is not in the state", pubAddr)
	}
	m, _ := v["amis"].(map[string]any)
	out := map[string]pubAMI{}
	for key, e := range m {
		f, _ := e.(map[string]any)
		s := func(k string) string { x, _ := f[k].(string); return x }
		out[key] = pubAMI{ImageID: s("image_id"), SnapshotID: s("snapshot_id"), Name: s("name"), CreatedAt: s("created_at")}
	}
	return out, nil
}

// invKey identifies a resource of the inventory.
type invKey struct {
	kind            moto.ResourceKind
	account, region string
	id              string
}

func keysOf(inv moto.Inventory) map[invKey]moto.Resource {
	out := map[invKey]moto.Resource{}
	for _, r := range inv.Leftovers(nil) {
		out[invKey{r.Kind, r.Account, r.Region, r.ID}] = r
	}
	return out
}

// newSince lists what inv holds that the baseline did not, and what of
// the baseline is gone.
func (k *killedWorld) newSince(inv moto.Inventory) []string {
	base, now := keysOf(k.baseline), keysOf(inv)
	var out []string
	for key, r := range now {
		if _, ok := base[key]; !ok {
			out = append(out, "new: "+r.String())
		}
	}
	for key, r := range base {
		if _, ok := now[key]; !ok {
			out = append(out, "gone: "+r.String())
		}
	}
	slices.Sort(out)
	return out
}

// checkPublished: every target's entry of amis is its one image,
// available, whose only snapshot is the entry's (completed), and the
// publication added exactly that image, that snapshot, one stream volume
// and the SSM parameter to the target; the stream volume is attached to
// the target's unpacker or to nothing, and no volume of the baseline
// changed its attachments.
func (k *killedWorld) checkPublished(ctx context.Context, amis map[string]pubAMI) error {
	inv, err := testAccWorld.Inventory(ctx)
	if err != nil {
		return err
	}
	var problems []string
	if got := slices.Sorted(maps.Keys(amis)); len(got) != len(killedTargets) {
		problems = append(problems, fmt.Sprintf("amis has %v, want one entry per target", got))
	}
	base, now := keysOf(k.baseline), keysOf(inv)
	want := map[invKey]bool{}
	for _, tg := range killedTargets {
		ami := amis[tg.key()]
		if ami.ImageID == "" || ami.SnapshotID == "" {
			problems = append(problems, fmt.Sprintf("%s: amis entry %+v", tg, ami))
			continue
		}
		want[invKey{moto.KindImage, tg.account, tg.region, ami.ImageID}] = true
		want[invKey{moto.KindSnapshot, tg.account, tg.region, ami.SnapshotID}] = true
		want[invKey{moto.KindParameter, tg.account, tg.region, pubParameter}] = true
		if r, ok := now[invKey{moto.KindImage, tg.account, tg.region, ami.ImageID}]; !ok || r.State != "available" {
			problems = append(problems, fmt.Sprintf("%s: image %s is %q in the inventory", tg, ami.ImageID, r.State))
		}
		if r, ok := now[invKey{moto.KindSnapshot, tg.account, tg.region, ami.SnapshotID}]; !ok || r.State != "completed" {
			problems = append(problems, fmt.Sprintf("%s: snapshot %s is %q in the inventory", tg, ami.SnapshotID, r.State))
		}
	}
	volumes := map[string]int{}
	for key, r := range now {
		if _, ok := base[key]; ok || want[key] {
			continue
		}
		if key.kind == moto.KindVolume && r.Tags[publisher.TagPublication] == pubStreamName && r.Tags[publisher.TagStream] == pubStreamName {
			volumes[key.account+"/"+key.region]++
			continue
		}
		problems = append(problems, "stray: "+r.String())
	}
	for key := range want {
		if _, ok := now[key]; !ok {
			problems = append(problems, fmt.Sprintf("missing: %s %s in %s/%s", key.kind, key.id, key.account, key.region))
		}
	}
	for _, tg := range killedTargets {
		if volumes[tg.key()] != 1 {
			problems = append(problems, fmt.Sprintf("%s: %d stream volumes, want 1", tg, volumes[tg.key()]))
		}
	}
	problems = append(problems, k.attachmentProblems(inv, amis)...)
	if len(problems) > 0 {
		return fmt.Errorf("after the finishing apply:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

// attachmentProblems: volumes of the baseline are attached as they were;
// a new volume is attached at most once, to its target's unpacker; and
// each image's inventory entry names its snapshot alone.
func (k *killedWorld) attachmentProblems(inv moto.Inventory, amis map[string]pubAMI) []string {
	type att = moto.InventoryVolumeAttachment
	before := map[string][]att{}
	for _, ti := range k.baseline.Targets {
		for _, v := range ti.Volumes {
			before[v.ID] = v.Attachments
		}
	}
	var problems []string
	for _, ti := range inv.Targets {
		key := ti.Account + "/" + ti.Region
		for _, v := range ti.Volumes {
			if b, ok := before[v.ID]; ok {
				if !slices.Equal(b, v.Attachments) {
					problems = append(problems, fmt.Sprintf("volume %s of the unpackers: attachments %v, were %v", v.ID, v.Attachments, b))
				}
				continue
			}
			u := k.unpackers[key]
			for _, a := range v.Attachments {
				if len(v.Attachments) > 1 || a.InstanceID != u.InstanceID {
					problems = append(problems, fmt.Sprintf("volume %s in %s attached %v (the unpacker is %s)", v.ID, key, v.Attachments, u.InstanceID))
				}
			}
		}
		for _, img := range ti.Images {
			if ami, ok := amis[key]; ok && img.ID == ami.ImageID && !slices.Equal(img.SnapshotIDs, []string{ami.SnapshotID}) {
				problems = append(problems, fmt.Sprintf("image %s in %s has snapshots %v, want [%s]", img.ID, key, img.SnapshotIDs, ami.SnapshotID))
			}
		}
	}
	return problems
}

// checkDaemons: with published, each target's daemon holds the stream
// clean at the revision (not left frozen, unmounted for the snapshot or
// dirty by the kill); without, it holds no stream and no device.
func (k *killedWorld) checkDaemons(ctx context.Context, published bool) error {
	var problems []string
	for _, tg := range killedTargets {
		c, err := testAccEnsureReady(ctx, k.unpackers[tg.key()])
		if err != nil {
			return fmt.Errorf("%s: the unpacker: %w", tg, err)
		}
		st, err := c.Status(ctx)
		if err != nil {
			return fmt.Errorf("%s: status of the unpacker: %w", tg, err)
		}
		switch {
		case !published && (len(st.Streams) > 0 || len(st.Devices) > 0):
			problems = append(problems, fmt.Sprintf("%s: the daemon still holds streams %+v, devices %+v", tg, st.Streams, st.Devices))
		case published && (len(st.Streams) != 1 || st.Streams[0].Name != pubStreamName ||
			st.Streams[0].State != wire.StateClean || st.Streams[0].Revision != k.revision):
			problems = append(problems, fmt.Sprintf("%s: the daemon's streams %+v, want %s clean at %s", tg, st.Streams, pubStreamName, k.revision))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return nil
}

// unreleaseStream has the daemon of the target the kill was timed on
// unmount the stream for a snapshot of the revision, as the publisher had
// it before CreateSnapshot: the state a kill between CreateSnapshot and
// the release leaves.
func unreleaseStream(t *testing.T, k *killedWorld, killed killedRun) {
	t.Helper()
	ctx := context.Background()
	key := killed.At.Fields["target"]
	target, ok := k.unpackers[key]
	if !ok {
		t.Fatalf("the kill was timed on target %q, not one of the test's", key)
	}
	counts, err := pubCountByKind(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if counts[key+" snapshot"] != 1 || counts[key+" image"] != 0 {
		t.Fatalf("%s: the kill left %v, want the snapshot and no image", key, counts)
	}
	c, err := testAccEnsureReady(ctx, target)
	if err != nil {
		t.Fatalf("%s: the unpacker: %v", key, err)
	}
	s, err := c.PrepareForSnapshot(ctx, wire.PrepareForSnapshotRequest{Stream: pubStreamName, Revision: k.revision, Mode: wire.SnapshotUnmount})
	if err != nil {
		t.Fatalf("%s: unmount stream %s for a snapshot: %v", key, pubStreamName, err)
	}
	t.Logf("%s: the daemon holds stream %s %s at %.12s, as a kill before the release leaves it", key, s.Name, s.State, s.Revision)
}

// daemonStreams says what each target's daemon holds of the stream, for
// the log: "123456789012/us-east-1: fetching (→ 41f850407366)".
func (k *killedWorld) daemonStreams(ctx context.Context) string {
	var out []string
	for _, tg := range killedTargets {
		c, err := testAccEnsureReady(ctx, k.unpackers[tg.key()])
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", tg, err))
			continue
		}
		st, err := c.Status(ctx)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", tg, err))
			continue
		}
		desc := "no stream"
		for _, s := range st.Streams {
			if s.Name == pubStreamName {
				desc = fmt.Sprintf("%s at %.12s (→ %.12s)", s.State, s.Revision, s.TargetRevision)
			}
		}
		out = append(out, tg.key()+": "+desc)
	}
	return strings.Join(out, "; ")
}
