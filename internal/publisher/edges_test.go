package publisher

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/autoami/terraform-provider-autoami/internal/contentstore"
	"github.com/autoami/terraform-provider-autoami/internal/imagestream"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/bootfs"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/faultproxy"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
)

// A layered stream's revision is refused before any target is touched,
// saying so; a revision the content store lacks is refused naming it.
func TestLayeredAndMissingRevisionsAreRefused(t *testing.T) {
	e := newEnv(t)
	trees := bootfs.MustBuild(t)
	m, err := manifest.FromDirectory(e.ctx, trees.Overlay, manifest.DirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := imagestream.Load(e.ctx, imagestream.Source{Kind: imagestream.KindTree, Directory: trees.Overlay}, imagestream.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := e.store.Upload(e.ctx, c.Objects, m.Objects()); err != nil {
		t.Fatal(err)
	}
	d, _ := m.Digest()
	layered := imagestream.LayeredRevision("debian-12-amd64-20261110-1924", d, "")
	if _, err := e.store.PutRevision(e.ctx, contentstore.StreamRecord{Name: "web/layered", Revision: layered, Kind: contentstore.StreamKindLayered,
		BaseImageName: "debian-12-amd64-20261110-1924", CreatedAt: time.Now()}, m); err != nil {
		t.Fatal(err)
	}
	tg := Target{AccountID: accountA, Region: "eu-west-1", InstanceID: "i-0123456789abcdef0", Endpoint: "127.0.0.1:1",
		ServerCertificateFingerprint: "sha256:" + strings.Repeat("ab", 32), ClientCertificatePEM: e.certPEM, ClientKeyPEM: e.keyPEM}
	p := e.publisher()
	out := p.Publish(e.ctx, testPublication("pub-layered", "web/layered", layered), []Target{tg})
	if !errors.Is(out.Err, ErrLayeredStream) || !strings.Contains(out.Err.Error(), layered) || out.Results[0].Err != nil {
		t.Errorf("layered revision: %v (target: %v); want ErrLayeredStream naming the revision and no target tried", out.Err, out.Results[0].Err)
	}
	missing := strings.Repeat("0", 64)
	out = p.Publish(e.ctx, testPublication("pub-missing", "web/layered", missing), []Target{tg})
	if out.Err == nil || !strings.Contains(out.Err.Error(), "has no revision "+missing) {
		t.Errorf("missing revision: %v", out.Err)
	}
	if got := len(e.events.steps(tg.Key())); got != 0 {
		t.Errorf("a refused publication entered %d steps", got)
	}
}

// A name taken in a target by an image autoami did not make fails that
// target before anything is unpacked, naming the image; an SSM parameter
// this publication did not write is replaced only with overwrite. After
// both are resolved, the next run publishes (one target at a time with
// concurrency 1). Deleting one target (dropped from the list) removes only
// its share; deleting the other removes the parameter it overwrote.
func TestNameTakenParameterOverwriteAndRemoveTarget(t *testing.T) {
	e := newEnv(t)
	trees := bootfs.MustBuild(t)
	targets := e.targets(accountA)
	rev := e.upload("web/boot", trees.Rev1)
	pub := testPublication("pub-edges", "web/boot", rev)
	pub.LaunchPermission = LaunchPermission{}
	name := RenderName(pub.NameTemplate, pub.Stream, rev, pub.Date)
	t0, t1 := targets[0], targets[1]

	c0 := e.ec2In(t0.AccountID, t0.Region)
	vol, err := c0.CreateVolume(e.ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(t0.Region + "a"), Size: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := c0.CreateSnapshot(e.ctx, &ec2.CreateSnapshotInput{VolumeId: vol.VolumeId})
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := c0.RegisterImage(e.ctx, &ec2.RegisterImageInput{Name: aws.String(name), RootDeviceName: aws.String("/dev/xvda"),
		Architecture: ec2types.ArchitectureValuesX8664, VirtualizationType: aws.String("hvm"),
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{{DeviceName: aws.String("/dev/xvda"), Ebs: &ec2types.EbsBlockDevice{SnapshotId: snap.SnapshotId}}}})
	if err != nil {
		t.Fatal(err)
	}
	cfg1, err := world.Config(e.ctx, t1.Region, t1.AccountID)
	if err != nil {
		t.Fatal(err)
	}
	ssm1 := ssm.NewFromConfig(cfg1)
	debian, err := e.ec2In(t1.AccountID, t1.Region).DescribeImages(e.ctx, &ec2.DescribeImagesInput{Owners: []string{"136693071363"}})
	if err != nil || len(debian.Images) == 0 {
		t.Fatalf("a Debian image: %v", err)
	}
	if _, err := ssm1.PutParameter(e.ctx, &ssm.PutParameterInput{Name: aws.String(pub.SSMParameter.Name), Value: debian.Images[0].ImageId,
		Type: ssmtypes.ParameterTypeString, DataType: aws.String(imageDataType)}); err != nil {
		t.Fatal(err)
	}

	p := e.publisher()
	out := p.Publish(e.ctx, pub, targets)
	var te *TargetError
	if err := out.Results[0].Err; !errors.As(err, &te) || te.Step != StepResume || !strings.Contains(err.Error(), name) ||
		!strings.Contains(err.Error(), aws.ToString(foreign.ImageId)) || !strings.Contains(err.Error(), "not made by autoami") {
		t.Errorf("%s: %v; want the taken name and the foreign image named at %q", t0, err, StepResume)
	}
	if steps := e.events.steps(t0.Key()); slices.Contains(steps, StepVolume) {
		t.Errorf("%s: went on to %v after finding its name taken", t0, steps)
	}
	if err := out.Results[1].Err; !errors.As(err, &te) || te.Step != StepSSMParameter || !strings.Contains(err.Error(), "ssm_parameter.overwrite") {
		t.Errorf("%s: %v; want the parameter refused at %q, asking for overwrite", t1, err, StepSSMParameter)
	}
	if v, _ := e.parameter(t1.AccountID, t1.Region, pub.SSMParameter.Name); v != aws.ToString(debian.Images[0].ImageId) {
		t.Errorf("the parameter was changed to %s without overwrite", v)
	}

	if _, err := c0.DeregisterImage(e.ctx, &ec2.DeregisterImageInput{ImageId: foreign.ImageId}); err != nil {
		t.Fatal(err)
	}
	pub.SSMParameter.Overwrite = true
	e.events.reset()
	serial := e.publisher(func(c *Config) { c.Concurrency = 1 })
	out = serial.Publish(e.ctx, pub, targets)
	if err := out.Error(); err != nil {
		t.Fatal(err)
	}
	if v, _ := e.parameter(t1.AccountID, t1.Region, pub.SSMParameter.Name); v != out.Results[1].Record.ImageID {
		t.Errorf("the overwritten parameter holds %s, want %s", v, out.Results[1].Record.ImageID)
	}
	// Concurrency 1: one target's events all come before the other's.
	e.events.mu.Lock()
	var order []string
	for _, ev := range e.events.events {
		if len(order) == 0 || order[len(order)-1] != ev.Target {
			order = append(order, ev.Target)
		}
	}
	e.events.mu.Unlock()
	if len(order) != 2 {
		t.Errorf("with concurrency 1 the targets' events interleave: %v", order)
	}

	// Target 0 dropped from the list: only its share goes.
	if err := p.Delete(e.ctx, pub, targets[:1]); err != nil {
		t.Fatal(err)
	}
	left := countByKind(e.leftovers(pub.ID))
	if want := map[string]int{t1.Key() + " volume": 1, t1.Key() + " snapshot": 1, t1.Key() + " image": 1, t1.Key() + " parameter": 1}; !equalCounts(left, want) {
		t.Errorf("after removing %s: %v, want only %s's share %v", t0, left, t1, want)
	}
	if err := p.Delete(e.ctx, pub, targets[1:]); err != nil {
		t.Fatal(err)
	}
	if left := e.leftovers(pub.ID); len(left) > 0 {
		t.Errorf("left after deleting both: %v", left)
	}
	if v, ok := e.parameter(t1.AccountID, t1.Region, pub.SSMParameter.Name); ok {
		t.Errorf("the parameter the publication overwrote still holds %s", v)
	}
}

// A new key (kms_key_id naming an alias each target defines) replaces the
// stream volume: the daemon lets go of the old one, which is detached and
// deleted; the new revision is unpacked in full onto a new volume
// encrypted with the target's key behind the alias.
func TestNewKeyReplacesTheStreamVolume(t *testing.T) {
	e := newEnv(t)
	trees := bootfs.MustBuild(t)
	targets := e.targets(accountA)
	rev1 := e.upload("web/boot", trees.Rev1)
	pub := testPublication("pub-key", "web/boot", rev1)
	p := e.publisher()
	out := p.Publish(e.ctx, pub, targets)
	if err := out.Error(); err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, tg := range targets {
		cfg, err := world.Config(e.ctx, tg.Region, tg.AccountID)
		if err != nil {
			t.Fatal(err)
		}
		k, err := kms.NewFromConfig(cfg).CreateKey(e.ctx, &kms.CreateKeyInput{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kms.NewFromConfig(cfg).CreateAlias(e.ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/autoami-images"), TargetKeyId: k.KeyMetadata.KeyId}); err != nil {
			t.Fatal(err)
		}
		keys[tg.Key()] = aws.ToString(k.KeyMetadata.Arn)
	}
	dir2 := filepath.Join(t.TempDir(), "rev2")
	if out, err := exec.Command("cp", "-a", trees.Rev1, dir2).CombinedOutput(); err != nil {
		t.Fatalf("copy the tree: %v: %s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir2, "etc", "hostname"), []byte("rekeyed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pub2 := pub
	pub2.Revision = e.upload("web/boot", dir2)
	pub2.KMSKeyID = "alias/autoami-images"
	out2 := p.Publish(e.ctx, pub2, targets)
	if err := out2.Error(); err != nil {
		t.Fatal(err)
	}
	for i, r := range out2.Results {
		tg, old := r.Target, out.Results[i].Record
		if r.Record.VolumeID == old.VolumeID {
			t.Errorf("%s: the stream volume %s was kept under a new key", tg, old.VolumeID)
		}
		if snap := e.snapshot(tg.AccountID, tg.Region, r.Record.SnapshotID); aws.ToString(snap.KmsKeyId) != keys[tg.Key()] {
			t.Errorf("%s: snapshot encrypted with %s, want the alias's key %s", tg, aws.ToString(snap.KmsKeyId), keys[tg.Key()])
		}
		vols, err := e.ec2In(tg.AccountID, tg.Region).DescribeVolumes(e.ctx, &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{
			{Name: aws.String("volume-id"), Values: []string{old.VolumeID}}}})
		if err != nil || len(vols.Volumes) != 0 {
			t.Errorf("%s: the old volume %s is still there (%v)", tg, old.VolumeID, err)
		}
		st, err := mustDial(t, tg).Status(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Devices) != 1 || st.Devices[0].VolumeID != r.Record.VolumeID || len(st.Streams) != 1 || st.Streams[0].VolumeID != r.Record.VolumeID {
			t.Errorf("%s: the daemon holds devices %+v, streams %+v; want only the new volume %s", tg, st.Devices, st.Streams, r.Record.VolumeID)
		}
	}
	e.wantOnePerTarget(pub2, targets, 2)
}

// With 30 % of EC2, SSM, KMS and EBS calls throttled, the SDK's retryer
// (awsclient's configuration) carries the publication to the same result.
func TestThrottlingGivesTheSameResult(t *testing.T) {
	e := newEnv(t)
	trees := bootfs.MustBuild(t)
	targets := e.targets(accountA)
	rev := e.upload("web/boot", trees.Rev1)
	pub := testPublication("pub-throttled", "web/boot", rev)
	world.Faults.SetRules(faultproxy.Rule{Actions: []string{"ec2:*", "ssm:*", "kms:*", "ebs:*"}, Throttle: faultproxy.Share{Fraction: 0.3}})
	factory, err := newFactory(e.ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	p := e.publisher(func(c *Config) { c.Clients = factory })
	start := time.Now()
	out := p.Publish(e.ctx, pub, targets)
	if err := out.Error(); err != nil {
		t.Fatal(err)
	}
	throttled := 0
	for _, s := range world.Faults.Stats() {
		throttled += s.Throttled
	}
	world.Faults.SetRules()
	if throttled == 0 {
		t.Fatal("no call was throttled")
	}
	t.Logf("published with %d calls throttled in %s", throttled, since(start))
	for _, r := range out.Results {
		checkImage(t, e.image(r.Target.AccountID, r.Target.Region, r.Record.ImageID), pub, r.Record)
	}
	e.wantOnePerTarget(pub, targets, 1)
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
