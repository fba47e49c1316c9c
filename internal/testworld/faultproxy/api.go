// Package faultproxy is an HTTP reverse proxy between the AWS SDK and the
// test world's moto server that injects what moto never does: latency,
// throttling errors in each protocol's real format, dropped connections. It
// also counts calls and request bytes per API action.
//
// Point the SDK at Proxy.URL instead of the server's URL, then switch faults
// per test with SetRules and read Stats. Faults are deterministic: a Share of
// 0.25 hits exactly every fourth matching call, so tests do not flake.
//
// Actions are named "service:Operation", e.g. "ec2:DescribeImages",
// "ssm:PutParameter", "s3:PutObject", "ebs:PutSnapshotBlock", found from the
// SigV4 credential scope and the Action form field (EC2, STS, IAM), the
// X-Amz-Target header (SSM, KMS) or the method and path (S3, EBS direct).
package faultproxy

import (
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Share selects which matching calls a fault hits: the first First calls,
// then a Fraction (0..1) of the rest, spread evenly (0.5 = every other call).
type Share struct {
	First    int
	Fraction float64
}

// Rule injects faults into the calls whose action matches one of Actions.
type Rule struct {
	// Actions are path.Match patterns over "service:Operation", e.g.
	// "ec2:DescribeImages", "ec2:*", "*:PutObject"; empty matches every call.
	Actions []string
	// Latency is added before each matching call is answered.
	Latency time.Duration
	// Throttle answers calls with the service's throttling error instead of
	// forwarding them: EC2 RequestLimitExceeded (503), STS/IAM Throttling,
	// SSM/KMS ThrottlingException, EBS direct RequestThrottledException,
	// S3 SlowDown (503).
	Throttle Share
	// DropRequest closes the connection before the call reaches the server.
	DropRequest Share
	// DropResponse forwards the call, then closes the connection instead of
	// answering: the server acted, the client cannot know (idempotency tests).
	DropResponse Share
}

// Stat counts one action's calls through the proxy.
type Stat struct {
	// Calls is every attempt the proxy received, retries included.
	Calls int
	// Throttled, DroppedRequests and DroppedResponses count injected faults.
	Throttled        int
	DroppedRequests  int
	DroppedResponses int
	// RequestBytes is the request body bytes forwarded to the server (for
	// uploads: what was sent, retries included); ResponseBytes those answered.
	RequestBytes  int64
	ResponseBytes int64
}

// Proxy is a running fault-injecting proxy on 127.0.0.1.
type Proxy struct {
	// URL is the endpoint to give the SDK, e.g. http://127.0.0.1:41235.
	URL string

	target *url.URL
	server *http.Server

	mu    sync.Mutex
	rules []*ruleState
	stats map[string]*Stat
}

// Start starts a proxy on 127.0.0.1 in front of target (e.g. the moto
// server's URL).
func Start(target string) (*Proxy, error) { return start(target) }

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() error { return p.server.Close() }

// SetRules replaces the rules; the first rule that matches a call applies.
// Their counters start afresh.
func (p *Proxy) SetRules(rules ...Rule) { p.setRules(rules) }

// Reset removes all rules and zeroes all counters; call it at test start.
func (p *Proxy) Reset() { p.reset() }

// Stats is a copy of the counters, by action.
func (p *Proxy) Stats() map[string]Stat { return p.snapshot() }

// Stat is the counters of one action ("ec2:DescribeImages").
func (p *Proxy) Stat(action string) Stat { return p.snapshot()[action] }
