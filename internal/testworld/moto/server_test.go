package moto

import (
	"context"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

func TestStartResetStop(t *testing.T) {
	ctx := context.Background()
	// A start-time pending duration survives Reset (Reset returns to it).
	s, err := Start(ctx, Options{LogPath: t.TempDir() + "/moto.log", Pending: Pending{Snapshot: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = s.Stop()
		}
	})

	client := ssm.New(ssm.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	put := func() error {
		_, err := client.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/t/p"), Value: aws.String("v"), Type: "String"})
		return err
	}
	if err := put(); err != nil {
		t.Fatalf("put parameter: %v", err)
	}
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/t/p")}); err == nil {
		t.Fatal("parameter survived a reset")
	}

	ec := ec2.NewFromConfig(AWSConfig(s.URL, "us-east-1"))
	vol, err := ec.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1a"), Size: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := ec.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: vol.VolumeId})
	if err != nil {
		t.Fatal(err)
	}
	if snap.State != ec2types.SnapshotStatePending {
		t.Fatalf("snapshot after Reset is %s, want pending (start option)", snap.State)
	}

	pid := s.PID()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("moto_server pid %d still alive after Stop", pid)
	}
	c := http.Client{Timeout: time.Second}
	if _, err := c.Get(s.URL + "/moto-api/"); err == nil {
		t.Fatal("moto still answers after Stop")
	}
}

func TestLookBinaryMissing(t *testing.T) {
	_, err := LookBinary("moto_server-does-not-exist")
	if err == nil || err.Error() != InstallHint {
		t.Fatalf("want the install hint, got %v", err)
	}
}
