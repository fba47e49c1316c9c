package publisher

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/bootfs"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/client"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// An unpacker that dies while it fetches (its instance force-stopped: the
// daemon killed, its mounts and loop devices gone) fails the target at
// the unpack; once the instance runs again, the next run finds the volume
// still attached, the daemon's stream dirty, unpacks in full and publishes,
// leaving one volume, snapshot and image.
func TestDeadUnpackerMidUnpack(t *testing.T) {
	e := newEnv(t)
	trees := bootfs.MustBuild(t)
	targets := e.targets(accountA)[:1]
	tg := targets[0]
	rev := e.upload("web/boot", trees.Rev1)
	pub := testPublication("pub-dead", "web/boot", rev)
	// A client that gives up on a dead daemon within seconds.
	p := e.publisher(func(c *Config) {
		c.Connect = func(_ context.Context, t Target) (*client.Client, error) {
			cert, err := tls.X509KeyPair([]byte(t.ClientCertificatePEM), []byte(t.ClientKeyPEM))
			if err != nil {
				return nil, err
			}
			return client.New(client.Config{Address: t.Endpoint, Fingerprint: t.ServerCertificateFingerprint, Certificate: cert,
				RetryMax: 3, RetryWaitMax: 200 * time.Millisecond, Timeout: 30 * time.Second})
		}
	})
	c := e.ec2In(tg.AccountID, tg.Region)
	var once sync.Once
	e.events.setHook(func(ev Event) {
		if ev.Step == StepUnpack && ev.Kind == EventInfo && (strings.Contains(ev.Message, "fetching") || strings.Contains(ev.Message, "updating")) {
			once.Do(func() {
				if _, err := c.StopInstances(e.ctx, &ec2.StopInstancesInput{InstanceIds: []string{tg.InstanceID}, Force: aws.Bool(true)}); err != nil {
					t.Errorf("force-stop the unpacker: %v", err)
				}
			})
		}
	})
	out := p.Publish(e.ctx, pub, targets)
	e.events.setHook(nil)
	var te *TargetError
	if err := out.Results[0].Err; !errors.As(err, &te) || te.Step != StepUnpack {
		t.Fatalf("with the unpacker dead: %v; want a failure at %q", err, StepUnpack)
	}
	in := &ec2.DescribeInstancesInput{InstanceIds: []string{tg.InstanceID}}
	fast := func(min, max *time.Duration) { *min, *max = 50*time.Millisecond, 500*time.Millisecond }
	if err := ec2.NewInstanceStoppedWaiter(c, func(o *ec2.InstanceStoppedWaiterOptions) { fast(&o.MinDelay, &o.MaxDelay) }).Wait(e.ctx, in, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartInstances(e.ctx, &ec2.StartInstancesInput{InstanceIds: []string{tg.InstanceID}}); err != nil {
		t.Fatal(err)
	}
	if err := ec2.NewInstanceRunningWaiter(c, func(o *ec2.InstanceRunningWaiterOptions) { fast(&o.MinDelay, &o.MaxDelay) }).Wait(e.ctx, in, time.Minute); err != nil {
		t.Fatal(err)
	}
	// The same server key after the restart: the pinned fingerprint holds.
	if err := pollUntil(e.ctx, Polling{MinDelay: 50 * time.Millisecond, MaxDelay: 500 * time.Millisecond}, "the daemon after the restart", time.Minute,
		func(ctx context.Context) (bool, error) {
			_, err := mustDial(t, tg).Health(ctx)
			return err == nil, nil
		}); err != nil {
		t.Fatal(err)
	}
	st, err := mustDial(t, tg).Status(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Streams) != 1 || st.Streams[0].State == wire.StateClean {
		t.Errorf("after the crash the daemon reports %+v; want the stream, not clean", st.Streams)
	}
	again := p.Publish(e.ctx, pub, targets)
	if err := again.Error(); err != nil {
		t.Fatal(err)
	}
	if again.Results[0].Record.VolumeID != out.Results[0].Record.VolumeID {
		t.Errorf("the next run used volume %s, want the stream volume %s again", again.Results[0].Record.VolumeID, out.Results[0].Record.VolumeID)
	}
	if d := e.readDisk(tg.AccountID, tg.Region, again.Results[0].Record.SnapshotID); d.rootDigest != rev {
		t.Errorf("the snapshot after the crash holds manifest %s, want revision %s", d.rootDigest, rev)
	}
	e.wantOnePerTarget(pub, targets, 1)
}

// A publication deleted while its unpacker is stopped detaches and
// deletes the stream volume without the daemon; when the unpacker runs
// again its daemon still remembers the stream on the deleted volume, and
// the next publication of the stream has it forget that and publishes.
func TestDeleteWhileTheUnpackerIsStopped(t *testing.T) {
	e := newEnv(t)
	trees := bootfs.MustBuild(t)
	targets := e.targets(accountA)[:1]
	tg := targets[0]
	rev := e.upload("web/boot", trees.Rev1)
	pub := testPublication("pub-stopped", "web/boot", rev)
	p := e.publisher()
	if err := p.Publish(e.ctx, pub, targets).Error(); err != nil {
		t.Fatal(err)
	}
	c := e.ec2In(tg.AccountID, tg.Region)
	in := &ec2.DescribeInstancesInput{InstanceIds: []string{tg.InstanceID}}
	fast := func(min, max *time.Duration) { *min, *max = 50*time.Millisecond, 500*time.Millisecond }
	if _, err := c.StopInstances(e.ctx, &ec2.StopInstancesInput{InstanceIds: []string{tg.InstanceID}}); err != nil {
		t.Fatal(err)
	}
	if err := ec2.NewInstanceStoppedWaiter(c, func(o *ec2.InstanceStoppedWaiterOptions) { fast(&o.MinDelay, &o.MaxDelay) }).Wait(e.ctx, in, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := p.Delete(e.ctx, pub, targets); err != nil {
		t.Fatal(err)
	}
	if left := e.leftovers(pub.ID); len(left) > 0 {
		t.Fatalf("left after deleting with the unpacker stopped: %v", left)
	}
	if _, err := c.StartInstances(e.ctx, &ec2.StartInstancesInput{InstanceIds: []string{tg.InstanceID}}); err != nil {
		t.Fatal(err)
	}
	if err := ec2.NewInstanceRunningWaiter(c, func(o *ec2.InstanceRunningWaiterOptions) { fast(&o.MinDelay, &o.MaxDelay) }).Wait(e.ctx, in, time.Minute); err != nil {
		t.Fatal(err)
	}
	var stale wire.Status
	if err := pollUntil(e.ctx, Polling{MinDelay: 50 * time.Millisecond, MaxDelay: 500 * time.Millisecond}, "the daemon after the restart", time.Minute,
		func(ctx context.Context) (bool, error) {
			st, err := mustDial(t, tg).Status(ctx)
			stale = st
			return err == nil, nil
		}); err != nil {
		t.Fatal(err)
	}
	if len(stale.Streams) != 1 {
		t.Fatalf("the restarted daemon holds streams %+v; the test needs it to remember the deleted volume's", stale.Streams)
	}
	pub2 := pub
	pub2.ID = "pub-stopped-2"
	out := p.Publish(e.ctx, pub2, targets)
	if err := out.Error(); err != nil {
		t.Fatal(err)
	}
	st, err := mustDial(t, tg).Status(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Streams) != 1 || st.Streams[0].VolumeID != out.Results[0].Record.VolumeID || len(st.Devices) != 1 {
		t.Errorf("the daemon holds streams %+v, devices %+v; want only the new volume %s", st.Streams, st.Devices, out.Results[0].Record.VolumeID)
	}
	e.wantOnePerTarget(pub2, targets, 1)
}
