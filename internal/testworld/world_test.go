package testworld

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/faultproxy"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
)

// A World answers as the account asked for, through the proxy, and Reset
// clears the proxy's rules and counts.
func TestWorldAccountsThroughTheProxy(t *testing.T) {
	ctx := context.Background()
	w, err := Start(ctx, moto.Options{LogPath: t.TempDir() + "/moto.log"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Stop(); err != nil {
			t.Error(err)
		}
	})
	if err := w.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	for _, account := range []string{moto.DefaultAccountID, "222222222222"} {
		cfg, err := w.Config(ctx, "eu-central-1", account)
		if err != nil {
			t.Fatal(err)
		}
		out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			t.Fatal(err)
		}
		if got := aws.ToString(out.Account); got != account {
			t.Fatalf("caller account %s, want %s", got, account)
		}
	}
	if st := w.Faults.Stat("sts:GetCallerIdentity"); st.Calls != 2 {
		t.Fatalf("proxy saw %d GetCallerIdentity calls, want 2", st.Calls)
	}
	w.Faults.SetRules(faultproxy.Rule{Throttle: faultproxy.Share{Fraction: 1}})
	if err := w.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	cfg, err := w.Config(ctx, "eu-central-1", moto.DefaultAccountID)
	if err != nil {
		t.Fatalf("a call after Reset is still throttled: %v", err)
	}
	if _, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatal(err)
	}
	if n := len(w.Faults.Stats()); n != 1 {
		t.Fatalf("counts after Reset: %v", w.Faults.Stats())
	}
}
