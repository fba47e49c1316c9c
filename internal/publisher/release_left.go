package publisher

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// leftPreparedTimeout bounds the best-effort release of a stream an earlier
// run left prepared: it must not hold up a publication that needs no
// unpacker.
const leftPreparedTimeout = 30 * time.Second

// releaseLeftPrepared releases the stream when an earlier run died between
// CreateSnapshot and the release (a killed terraform) and left the daemon
// holding it unmounted for a snapshot. This run found that snapshot, so it
// goes on without the unpacker; it releases the stream only when the
// unpacker is awake (a sleeping one is not started for this: its volume is
// consistent, and the next revision's associate releases it). Failures are
// reported as info, never as the target's failure.
func (a *actor) releaseLeftPrepared(ctx context.Context) {
	if a.rawImage() || a.t.InstanceID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, leftPreparedTimeout)
	defer cancel()
	out, err := a.aws.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{a.t.InstanceID}})
	if err != nil || len(out.Reservations) == 0 || len(out.Reservations[0].Instances) == 0 {
		return
	}
	if st := out.Reservations[0].Instances[0].State; st == nil || st.Name != ec2types.InstanceStateNameRunning {
		return
	}
	c, err := dial(a.t)
	if err != nil {
		return
	}
	status, err := c.Status(ctx)
	if err != nil {
		a.info(StepResume, "could not read the unpacker's streams (a stream left prepared is released later): %v", err)
		return
	}
	for _, s := range status.Streams {
		if s.Name != a.pub.Stream || s.State != wire.StateUnmountedForSnapshot {
			continue
		}
		if _, err := c.Release(ctx, wire.ReleaseRequest{Stream: a.pub.Stream}); err != nil {
			a.info(StepResume, "could not release stream %q, left prepared by an interrupted run: %v", a.pub.Stream, err)
			return
		}
		a.info(StepResume, "released stream %q, left prepared for a snapshot by an interrupted run", a.pub.Stream)
	}
}
