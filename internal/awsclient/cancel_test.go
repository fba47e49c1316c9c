package awsclient

import (
	"context"
	"errors"
	"testing"
)

// A caller whose context is cancelled gets its error, never nil clients
// without an error; the cancellation is not kept, so the next caller
// builds the clients.
func TestForWithCancelledContextFailsAndIsNotKept(t *testing.T) {
	f := newTestFactory(t, Settings{EndpointURL: motoURL})
	target := Target{RoleARN: "arn:aws:iam::222222222222:role/publisher", Region: "eu-west-1"}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c, err := f.For(ctx, target)
	if !errors.Is(err, context.Canceled) || c != nil {
		t.Fatalf("For with a cancelled context = %v, %v; want no clients and context.Canceled", c, err)
	}
	c, err = f.For(context.Background(), target)
	if err != nil || c == nil || c.AccountID != "222222222222" {
		t.Fatalf("For after a cancelled call = %+v, %v; want the target's clients", c, err)
	}
}
