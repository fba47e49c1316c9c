// Package faultproxy is an HTTP reverse proxy between the AWS SDK and the
// test world's moto server that injects what moto never does: latency,
// throttling and chosen AWS errors in each protocol's real format, dropped
// connections. It also counts calls and request bytes per API action.
//
// Point the SDK at Proxy.URL instead of the server's URL, then switch faults
// per test with SetRules and read Stats. Faults are deterministic: a Share of
// 0.25 hits exactly every fourth matching call, so tests do not flake.
//
// A rule is aimed by action, region and account. Actions are named
// "service:Operation", e.g. "ec2:DescribeImages", "ssm:PutParameter",
// "s3:PutObject", "ebs:PutSnapshotBlock", found from the SigV4 credential
// scope and the Action form field (EC2, STS, IAM), the X-Amz-Target header
// (SSM, KMS) or the method and path (S3, EBS direct). The region is the
// credential scope's. The account is the one moto acts as for the call's
// access key: the proxy learns which account each key belongs to from the
// STS AssumeRole answers and IAM CreateAccessKey answers that pass through
// it, as moto keeps each key in the IAM backend of one account; keys it never
// saw are moto.DefaultAccountID's, as in moto (see account.go).
//
// Rules can also be set from outside Go: ParseRules and LoadRules read the
// JSON document described in internal/testworld/README.md, and the proxy
// serves the same document on its own address at /autoami-faults/rules
// (GET, PUT, DELETE), with the counters at /autoami-faults/stats.
package faultproxy

import (
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Share selects which matching calls a fault hits: the first First calls,
// the Nth call (1-based, exactly that one), and a Fraction (0..1) of the
// calls after the first First, spread evenly (0.5 = every other call). The
// three add up: Share{First: 1, Nth: 4} hits calls 1 and 4. The zero Share
// hits nothing.
type Share struct {
	First    int     `json:"first,omitempty"`
	Fraction float64 `json:"fraction,omitempty"`
	Nth      int     `json:"nth,omitempty"`
}

// ErrorReply is a chosen AWS error a rule answers with, written in the
// protocol of the called service (see reply.go), instead of forwarding the
// call to the server.
type ErrorReply struct {
	// Code is the AWS error code the SDK reports (smithy.APIError's
	// ErrorCode), e.g. "InsufficientInstanceCapacity".
	Code string `json:"code,omitempty"`
	// Status is the HTTP status; 0 means the one AWS sends with Code (see
	// DefaultStatus), 400 for codes it does not know.
	Status int `json:"status,omitempty"`
	// Message is the error's message; empty means one naming the proxy.
	Message string `json:"message,omitempty"`
	// Share is which matching calls get the error.
	Share
}

// Rule injects faults into the calls that match all of Actions, Regions and
// Accounts (an empty list matches everything). When one call is hit by more
// than one fault of a rule, DropRequest wins over Throttle, Throttle over
// Error, Error over DropResponse.
type Rule struct {
	// Actions are path.Match patterns over "service:Operation", e.g.
	// "ec2:DescribeImages", "ec2:*", "*:PutObject".
	Actions []string
	// Regions are path.Match patterns over the region the call is signed
	// for, e.g. "eu-west-1", "eu-*". Unsigned calls have no region.
	Regions []string
	// Accounts are path.Match patterns over the 12-digit account the call
	// acts as, e.g. "222222222222".
	Accounts []string
	// Latency is added before each matching call is answered.
	Latency time.Duration
	// Throttle answers calls with the service's throttling error instead of
	// forwarding them: EC2 RequestLimitExceeded (503), STS/IAM Throttling,
	// SSM/KMS ThrottlingException, EBS direct RequestThrottledException,
	// S3 SlowDown (503).
	Throttle Share
	// Error answers the calls its Share hits with a chosen AWS error.
	Error ErrorReply
	// DropRequest closes the connection before the call reaches the server.
	DropRequest Share
	// DropResponse forwards the call, then closes the connection instead of
	// answering: the server acted, the client cannot know (idempotency tests).
	DropResponse Share
}

// Stat counts one action's calls through the proxy.
type Stat struct {
	// Calls is every attempt the proxy received, retries included.
	Calls int `json:"calls"`
	// Throttled, Errors, DroppedRequests and DroppedResponses count injected
	// faults; Errors is the calls answered with a rule's ErrorReply.
	Throttled        int `json:"throttled"`
	Errors           int `json:"errors"`
	DroppedRequests  int `json:"dropped_requests"`
	DroppedResponses int `json:"dropped_responses"`
	// RequestBytes is the request body bytes forwarded to the server (for
	// uploads: what was sent, retries included); ResponseBytes those answered.
	RequestBytes  int64 `json:"request_bytes"`
	ResponseBytes int64 `json:"response_bytes"`
}

// Proxy is a running fault-injecting proxy on 127.0.0.1.
type Proxy struct {
	// URL is the endpoint to give the SDK, e.g. http://127.0.0.1:41235. Its
	// /autoami-faults/ paths are the control endpoint (see control.go).
	URL string

	target *url.URL
	server *http.Server

	mu    sync.Mutex
	rules []*ruleState
	stats map[string]*Stat
	// accounts maps the access keys the proxy saw created to their account.
	accounts map[string]string
}

// Start starts a proxy on 127.0.0.1 in front of target (e.g. the moto
// server's URL).
func Start(target string) (*Proxy, error) { return start(target) }

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() error { return p.server.Close() }

// SetRules replaces the rules; the first rule that matches a call applies.
// Their counters start afresh. A rule that cannot work (a malformed pattern,
// an Error share without a code, a fraction above 1, ...) is a bug in the
// test: SetRules panics naming it. Use ValidateRules to get an error instead.
func (p *Proxy) SetRules(rules ...Rule) {
	if err := ValidateRules(rules); err != nil {
		panic("faultproxy.SetRules: " + err.Error())
	}
	p.setRules(rules)
}

// Rules is a copy of the rules in force.
func (p *Proxy) Rules() []Rule { return p.currentRules() }

// Reset removes all rules and zeroes all counters; call it at test start.
// The access keys learned stay: the server still knows them.
func (p *Proxy) Reset() { p.reset() }

// ForgetAccessKeys forgets which account each access key belongs to, so that
// calls with them act as moto.DefaultAccountID; call it when the server is
// reset, which forgets them too (testworld.World.Reset does).
func (p *Proxy) ForgetAccessKeys() { p.forgetAccessKeys() }

// Stats is a copy of the counters, by action.
func (p *Proxy) Stats() map[string]Stat { return p.snapshot() }

// Stat is the counters of one action ("ec2:DescribeImages").
func (p *Proxy) Stat(action string) Stat { return p.snapshot()[action] }

// ValidateRules checks rules as SetRules does; errors name the rule and
// field as the JSON document does, e.g. `rules[1].error.code: ...`.
func ValidateRules(rules []Rule) error { return validateRules(rules) }

// ParseRules reads a rules document ({"rules": [...]}, see
// internal/testworld/README.md) and validates it. Unknown fields are errors
// naming the field and where it is.
func ParseRules(doc []byte) ([]Rule, error) { return parseRules(doc) }

// LoadRules is ParseRules of the file at path.
func LoadRules(path string) ([]Rule, error) { return loadRules(path) }

// MarshalRules writes rules as the document ParseRules reads.
func MarshalRules(rules []Rule) ([]byte, error) { return marshalRules(rules) }

// DefaultStatus is the HTTP status AWS answers with for an error code, as
// far as the proxy knows (InsufficientInstanceCapacity 500,
// UnauthorizedOperation 403, ...), and 400 for other codes.
func DefaultStatus(code string) int { return defaultStatus(code) }
