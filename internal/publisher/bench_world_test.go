package publisher

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/autoami/terraform-provider-autoami/internal/contentstore"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
)

// The benchmarks' extra target accounts (8 targets are 4 accounts × the 2
// test regions); they join the test organization so sharing with it works
// as it does for A and B.
const (
	benchAccountC = "555555555555"
	benchAccountD = "666666666666"
)

// benchEnv is newEnv for a benchmark: the same world, with the bench
// accounts in the organization and publications whose events are kept
// quietly (the test recorder logs every event, which would bury the
// benchmark's result lines) and logged only when a publication fails.
func benchEnv(b *testing.B) *env {
	b.Helper()
	e := newEnv(b)
	if err := world.Moto.SetOrganizations(e.ctx, moto.Organization{ARN: orgARN,
		Accounts: []string{accountA, accountB, consumer, benchAccountC, benchAccountD}}); err != nil {
		b.Fatal(err)
	}
	return e
}

// quietEvents keeps a publication's events without logging them.
type quietEvents struct {
	mu     sync.Mutex
	events []Event
}

func (q *quietEvents) record(ev Event) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.events = append(q.events, ev)
}

// logFailures logs the events of failed targets (what a benchmark shows
// when a publication it measures fails).
func (q *quietEvents) logFailures(b *testing.B) {
	q.mu.Lock()
	defer q.mu.Unlock()
	failed := map[string]bool{}
	for _, ev := range q.events {
		if ev.Kind == EventFailed {
			failed[ev.Target] = true
		}
	}
	for _, ev := range q.events {
		if failed[ev.Target] {
			b.Logf("%s %-24s %-6s %s %v", ev.Target, ev.Step, ev.Kind, ev.Message, ev.Err)
		}
	}
}

// benchPublisher is a Publisher as the provider makes one for an apply: a
// fresh client factory (no target's clients or assumed role cached from an
// earlier run; awsclient's default retries), the env's store and polling.
// The store reads through counter, so a benchmark can tell the publisher's
// own S3 reads from the unpackers'.
func (e *env) benchPublisher(b *testing.B, events *quietEvents, counter *getCounter) *Publisher {
	b.Helper()
	factory, err := newFactory(e.ctx, 0)
	if err != nil {
		b.Fatal(err)
	}
	store := e.store
	if counter != nil {
		home, err := world.Config(e.ctx, homeRegion, moto.DefaultAccountID)
		if err != nil {
			b.Fatal(err)
		}
		s3c := s3.NewFromConfig(home, func(o *s3.Options) {
			o.UsePathStyle = true
			o.HTTPClient = &http.Client{Transport: counter}
		})
		store = contentstore.New(s3c, e.store.Location(), contentstore.Options{})
	}
	return e.publisher(func(c *Config) {
		c.Clients = factory
		c.Store = store
		c.Progress = events.record
	})
}

// publishTimed publishes and returns the wall time and the targets'
// records by target key; a failed target fails the benchmark, with its
// events.
func publishTimed(b *testing.B, ctx context.Context, p *Publisher, pub Publication, targets []Target, events *quietEvents) (time.Duration, map[string]Record) {
	b.Helper()
	start := time.Now()
	out := p.Publish(ctx, pub, targets)
	took := time.Since(start)
	if err := out.Error(); err != nil {
		events.logFailures(b)
		b.Fatalf("publish %s to %d targets: %v", pub.Revision[:12], len(targets), err)
	}
	records := map[string]Record{}
	for _, r := range out.Results {
		records[r.Target.Key()] = r.Record
	}
	return took, records
}

// getCounter is an http.RoundTripper that counts the response body bytes
// of S3 GetObject calls (the SDK marks them with ?x-id=GetObject): the
// publisher's own reads of the content store, to subtract from the fault
// proxy's s3:GetObject bytes, which also hold the unpackers' presigned GETs.
type getCounter struct {
	bytes atomic.Int64
}

func (c *getCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || req.Method != http.MethodGet || req.URL.Query().Get("x-id") != "GetObject" {
		return resp, err
	}
	resp.Body = &countingBody{ReadCloser: resp.Body, n: &c.bytes}
	return resp, nil
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}
