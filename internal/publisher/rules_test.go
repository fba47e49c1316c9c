package publisher

import (
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestDeprecationChange(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 30, 0, time.UTC)
	img := func(at string) ec2types.Image {
		if at == "" {
			return ec2types.Image{}
		}
		return ec2types.Image{DeprecationTime: aws.String(at)}
	}
	for _, tc := range []struct {
		name   string
		have   string
		want   time.Time
		change bool
		to     time.Time
	}{
		{"none wanted, none set", "", time.Time{}, false, time.Time{}},
		{"none wanted, set out of band", "2027-01-01T00:00:00.000Z", time.Time{}, true, time.Time{}},
		{"rounded up to the minute", "", now.Add(time.Hour), true, time.Date(2026, 12, 1, 11, 1, 0, 0, time.UTC)},
		{"already so", "2026-12-01T11:01:00.000Z", now.Add(time.Hour), false, time.Date(2026, 12, 1, 11, 1, 0, 0, time.UTC)},
		{"changed out of band", "2026-12-02T11:01:00.000Z", now.Add(time.Hour), true, time.Date(2026, 12, 1, 11, 1, 0, 0, time.UTC)},
		{"past: the next minute", "", now.Add(-time.Hour), true, time.Date(2026, 12, 1, 10, 2, 0, 0, time.UTC)},
		{"past, already deprecated", "2026-11-01T00:00:00.000Z", now.Add(-time.Hour), false, time.Time{}},
	} {
		change, to := deprecationChange(img(tc.have), tc.want, now)
		if change != tc.change || (change && !to.Equal(tc.to)) {
			t.Errorf("%s: deprecationChange = %v, %s; want %v, %s", tc.name, change, to, tc.change, tc.to)
		}
	}
}

func TestDiffGrants(t *testing.T) {
	have := grantsOf([]ec2types.LaunchPermission{{UserId: aws.String("111111111111")}, {Group: ec2types.PermissionGroupAll},
		{OrganizationArn: aws.String(orgARN)}})
	want := wantedGrants(LaunchPermission{AccountIDs: []string{"222222222222"}, OrganizationARNs: []string{orgARN}})
	add, remove := diffGrants(have, want)
	if !slices.Equal(add, []grant{"account:222222222222"}) || !slices.Equal(remove, []grant{"account:111111111111", "group:all"}) {
		t.Fatalf("add %v, remove %v: want the account added, the other account and public removed", add, remove)
	}
	if p := grant("ou:x").permission(); aws.ToString(p.OrganizationalUnitArn) != "x" {
		t.Fatalf("ou grant → %+v", p)
	}
}

func TestUnfitVolumes(t *testing.T) {
	a := &actor{t: Target{InstanceID: "i-1"}, zone: "eu-west-1a", keyARN: "arn:key/1"}
	ok := ec2types.Volume{VolumeId: aws.String("vol-1"), State: ec2types.VolumeStateInUse, AvailabilityZone: aws.String("eu-west-1a"),
		Size: aws.Int32(2), Encrypted: aws.Bool(true), KmsKeyId: aws.String("arn:key/1")}
	if why := a.unfit(ok); why != "" {
		t.Fatalf("a fitting volume: %s", why)
	}
	// Too small is fit: it is grown in place.
	small := ok
	small.Size = aws.Int32(1)
	if why := a.unfit(small); why != "" {
		t.Fatalf("a volume too small for the revision: %s, want it kept (and grown)", why)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*ec2types.Volume)
	}{
		{"other zone", func(v *ec2types.Volume) { v.AvailabilityZone = aws.String("eu-west-1b") }},
		{"other key", func(v *ec2types.Volume) { v.KmsKeyId = aws.String("arn:key/2") }},
		{"not encrypted", func(v *ec2types.Volume) { v.Encrypted = aws.Bool(false) }},
		{"deleting", func(v *ec2types.Volume) { v.State = ec2types.VolumeStateDeleting }},
	} {
		v := ok
		tc.mutate(&v)
		if why := a.unfit(v); why == "" {
			t.Errorf("%s: the volume fits, want it replaced", tc.name)
		}
	}
}
