package awsclient

import (
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// quickRetryer retries throttling as often as the retryer it wraps, but any
// other retryable error (a connection refused, a 5xx) only until
// otherAttempts attempts were made: an unreachable endpoint or an
// unassumable role does not heal within a run, while throttling does, and
// a target's first call is throttled as easily as any other when many
// targets start at once. The count is the retryer's: made per operation
// call (identify) it is the call's; made per client (the assume-role STS
// clients, which call AssumeRole once per credential lifetime) it bounds
// the client's non-throttling retries over its life.
type quickRetryer struct {
	aws.Retryer
	otherAttempts int32
	others        atomic.Int32
}

func newQuickRetryer(base aws.Retryer, otherAttempts int) *quickRetryer {
	return &quickRetryer{Retryer: base, otherAttempts: int32(otherAttempts)}
}

// IsErrorRetryable implements aws.Retryer.
func (r *quickRetryer) IsErrorRetryable(err error) bool {
	if !r.Retryer.IsErrorRetryable(err) {
		return false
	}
	if retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) == aws.TrueTernary {
		return true
	}
	return r.others.Add(1) < r.otherAttempts
}
