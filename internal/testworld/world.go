package testworld

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/faultproxy"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
)

// World is a running test AWS: moto with autoami's additions, and a fault
// proxy in front of it. Give the SDK Endpoint (the proxy), not Moto.URL, so
// that faults apply and calls are counted.
type World struct {
	Moto   *moto.Server
	Faults *faultproxy.Proxy
	// Endpoint is the URL every AWS client of the test should use.
	Endpoint string
}

// Start starts moto (see moto.Options) and a fault proxy in front of it.
func Start(ctx context.Context, opts moto.Options) (*World, error) {
	server, err := moto.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	proxy, err := faultproxy.Start(server.URL)
	if err != nil {
		_ = server.Stop()
		return nil, fmt.Errorf("start the fault proxy in front of %s: %w", server.URL, err)
	}
	return &World{Moto: server, Faults: proxy, Endpoint: proxy.URL}, nil
}

// Reset empties moto, returns its knobs to their start values, and removes
// the proxy's rules and counts. Call it at the start of each test.
func (w *World) Reset(ctx context.Context) error {
	w.Faults.Reset()
	w.Faults.ForgetAccessKeys() // moto forgets them too
	return w.Moto.Reset(ctx)
}

// Stop stops the proxy and the moto server.
func (w *World) Stop() error {
	return errors.Join(w.Faults.Close(), w.Moto.Stop())
}

// Config is an SDK configuration acting as accountID in region, through the
// proxy. S3 clients made from it need UsePathStyle = true. Make configs after
// Reset: moto forgets assumed-role credentials when reset.
func (w *World) Config(ctx context.Context, region, accountID string) (aws.Config, error) {
	return moto.AccountConfig(ctx, w.Endpoint, region, accountID)
}
