package awsclient

import (
	"errors"
	"net"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
)

// Throttling is retried as often as the wrapped retryer allows; other
// retryable errors only until the quick bound; others not at all.
func TestQuickRetryerRetriesThrottlingOnly(t *testing.T) {
	r := newQuickRetryer(retry.NewStandard(), 2)
	throttled := &smithy.GenericAPIError{Code: "Throttling", Message: "Rate exceeded"}
	for i := 0; i < 10; i++ {
		if !r.IsErrorRetryable(throttled) {
			t.Fatalf("throttling not retryable at its %d. occurrence", i+1)
		}
	}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	if !r.IsErrorRetryable(refused) {
		t.Fatal("a refused connection is not retried once")
	}
	if r.IsErrorRetryable(refused) {
		t.Fatal("a refused connection is retried beyond the quick bound of 2 attempts")
	}
	if !r.IsErrorRetryable(throttled) {
		t.Fatal("throttling no longer retried after the quick bound was spent")
	}
	if r.IsErrorRetryable(&smithy.GenericAPIError{Code: "AccessDenied"}) {
		t.Fatal("AccessDenied is retried")
	}
}
