package testworld

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/faultproxy"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
)

// A fault aimed at one target (account and region) hits the Configs of that
// target only.
func TestFaultAimedAtOneTarget(t *testing.T) {
	ctx := context.Background()
	w := startWorld(t, moto.Options{})
	type target struct{ account, region string }
	aimed := target{"222222222222", "eu-west-1"}
	w.Faults.SetRules(faultproxy.Rule{
		Actions:  []string{"ec2:CreateSnapshot"},
		Accounts: []string{aimed.account},
		Regions:  []string{aimed.region},
		Error:    faultproxy.ErrorReply{Code: "SnapshotCreationPerVolumeRateExceeded", Share: faultproxy.Share{Fraction: 1}},
	})
	for _, tg := range []target{aimed, {"222222222222", "us-east-1"}, {"111111111111", "eu-west-1"}, {moto.DefaultAccountID, "eu-west-1"}} {
		cfg, err := w.Config(ctx, tg.region, tg.account)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Retryer = func() aws.Retryer { return retry.AddWithMaxAttempts(retry.NewStandard(), 1) }
		c := ec2.NewFromConfig(cfg)
		vol, err := c.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(tg.region + "a"), Size: aws.Int32(1)})
		if err != nil {
			t.Fatalf("%v: create volume: %v", tg, err)
		}
		_, err = c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: vol.VolumeId})
		var ae smithy.APIError
		switch {
		case tg == aimed && (!errors.As(err, &ae) || ae.ErrorCode() != "SnapshotCreationPerVolumeRateExceeded"):
			t.Errorf("%v: CreateSnapshot %v, want SnapshotCreationPerVolumeRateExceeded", tg, err)
		case tg != aimed && err != nil:
			t.Errorf("%v: CreateSnapshot %v, want success (the fault is aimed at %v)", tg, err, aimed)
		}
	}
	if st := w.Faults.Stat("ec2:CreateSnapshot"); st.Calls != 4 || st.Errors != 1 {
		t.Fatalf("CreateSnapshot counted %+v, want 4 calls, 1 error", st)
	}

	// After a Reset, moto has forgotten the assumed-role keys and so has the
	// proxy: a config made before acts as the default account in both.
	stale, err := w.Config(ctx, aimed.region, aimed.account)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	w.Faults.SetRules(faultproxy.Rule{Accounts: []string{aimed.account}, Error: faultproxy.ErrorReply{Code: "AccessDenied", Share: faultproxy.Share{Fraction: 1}}})
	id, err := sts.NewFromConfig(stale).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Account) != moto.DefaultAccountID {
		t.Fatalf("a config made before Reset: %v, %v; want moto and the proxy to see the default account", id, err)
	}
}
