package publisher

import (
	"fmt"
	"testing"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/bootfs"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/faultproxy"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
)

// benchAPILatency is the latency the fan-out benchmark adds to every AWS
// API call the publisher makes (issue 14: 200 ms). It is put on the
// control-plane services a publication drives per target (EC2, EBS direct,
// SSM, KMS, STS, IAM), not on S3: the content store is read by the
// unpackers with presigned GETs, whose latency would add the same to both
// runs and hide the publisher's part.
const benchAPILatency = 200 * time.Millisecond

// benchLatencyRule is that latency as a fault-proxy rule.
var benchLatencyRule = faultproxy.Rule{
	Actions: []string{"ec2:*", "ebs:*", "ssm:*", "kms:*", "sts:*", "iam:*"},
	Latency: benchAPILatency,
}

// fanOutRound counts the rounds of BenchmarkPublishFanOut in this process,
// so that successive rounds alternate which run goes first and a drift of
// the shared machine's load does not favour one side.
var fanOutRound int

// BenchmarkPublishFanOut is the wall time of publishing one revision (the
// boot fixture's tree, from scratch: new stream volume, unpack, snapshot,
// register, share, deprecate, SSM parameter) to 8 targets (4 accounts × 2
// regions) against publishing it to 1, with benchAPILatency on every API
// call. Both runs are measured in the same round with fresh publishers (as
// two applies would be), each publication deleted before the next. The
// ratio is the figure (issue 14's goal: ≤ 1.5); a publisher that worked
// through targets one after another would score about 8.
//
// The tree is the small boot fixture, not a Debian tree: the 8 unpackers
// share this machine's cores and disk, so a large tree would measure the
// machine writing 8 volumes, which in AWS happens on 8 instances at once.
func BenchmarkPublishFanOut(b *testing.B) {
	e := benchEnv(b)
	trees := bootfs.MustBuild(b)
	if err := world.Moto.SetPending(e.ctx, moto.Pending{Image: 300 * time.Millisecond, Snapshot: 300 * time.Millisecond}); err != nil {
		b.Fatal(err)
	}
	targets := e.targets(accountA, accountB, benchAccountC, benchAccountD)
	if len(targets) != 8 {
		b.Fatalf("%d targets, want 8", len(targets))
	}
	const stream = "bench/fanout"
	rev := e.upload(stream, trees.Rev1)

	var one, eight time.Duration
	b.ResetTimer()
	b.StopTimer() // only the publications are timed (publishFresh)
	for i := 0; i < b.N; i++ {
		runs := []int{1, 8}
		if fanOutRound%2 == 1 {
			runs = []int{8, 1}
		}
		fanOutRound++
		for _, n := range runs {
			took := e.publishFresh(b, fmt.Sprintf("bench-fanout-%d-%d", i, n), stream, rev, targets[:n])
			if n == 1 {
				one += took
			} else {
				eight += took
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(one.Seconds()/float64(b.N), "s/1-target")
	b.ReportMetric(eight.Seconds()/float64(b.N), "s/8-targets")
	b.ReportMetric(eight.Seconds()/one.Seconds(), "8-vs-1")
}

// publishFresh publishes revision rev of stream to targets as publication
// id, from scratch, with the latency rule in force, and returns the wall
// time; then (untimed, without latency) deletes the publication, so the
// next run starts from scratch too.
func (e *env) publishFresh(b *testing.B, id, stream, rev string, targets []Target) time.Duration {
	b.Helper()
	pub := testPublication(id, stream, rev)
	// One name and parameter per publication: a name taken in a target
	// would be an error.
	pub.NameTemplate = id + "-{revision}"
	pub.SSMParameter = &SSMParameter{Name: "/autoami/bench/" + id}
	events := &quietEvents{}
	p := e.benchPublisher(b, events, nil)
	world.Faults.SetRules(benchLatencyRule)
	b.StartTimer()
	took, _ := publishTimed(b, e.ctx, p, pub, targets, events)
	b.StopTimer()
	world.Faults.SetRules()
	if err := p.Delete(e.ctx, pub, targets); err != nil {
		b.Fatalf("delete %s: %v", id, err)
	}
	return took
}
