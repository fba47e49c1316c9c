package moto

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

func tagSpec(kind types.ResourceType, kv ...string) []types.TagSpecification {
	var tags []types.Tag
	for i := 0; i+1 < len(kv); i += 2 {
		tags = append(tags, types.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return []types.TagSpecification{{ResourceType: kind, Tags: tags}}
}

func target(t *testing.T, inv Inventory, account, region string) TargetInventory {
	t.Helper()
	for _, tg := range inv.Targets {
		if tg.Account == account && tg.Region == region {
			return tg
		}
	}
	t.Fatalf("inventory has no target %s/%s: %+v", account, region, inv)
	return TargetInventory{}
}

func sameTags(t *testing.T, what string, got map[string]string, kv ...string) {
	t.Helper()
	want := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		want[kv[i]] = kv[i+1]
	}
	if !maps.Equal(got, want) {
		t.Errorf("%s tags %v, want %v", what, got, want)
	}
}

// GAP: nothing listed what a test left behind; the inventory lists what
// tests made in every account and region, with tags, and nothing the world
// starts with.
func TestInventoryListsWhatTestsMadeAndNothingAfterDeletion(t *testing.T) {
	ctx := fresh(t)
	const west = "eu-west-1"
	a := ec2As(t, ctx, DefaultAccountID, region)
	b := ec2As(t, ctx, otherAccount, west)
	ssmA, ssmB := ssmAs(t, ctx, DefaultAccountID, region), ssmAs(t, ctx, otherAccount, west)

	// Account A, us-east-1: a volume, its snapshot, an image of it, an
	// instance of the image with the volume attached, a parameter.
	vol, err := a.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(region + "a"), Size: aws.Int32(3),
		TagSpecifications: tagSpec(types.ResourceTypeVolume, "autoami:stream", "web", "Name", "data")})
	if err != nil {
		t.Fatal(err)
	}
	volID := aws.ToString(vol.VolumeId)
	snap, err := a.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: vol.VolumeId,
		TagSpecifications: tagSpec(types.ResourceTypeSnapshot, "autoami:stream", "web")})
	if err != nil {
		t.Fatal(err)
	}
	snapID := aws.ToString(snap.SnapshotId)
	img, err := a.RegisterImage(ctx, &ec2.RegisterImageInput{
		Name: aws.String("web-1"), Architecture: types.ArchitectureValuesArm64, VirtualizationType: aws.String("hvm"),
		RootDeviceName:      aws.String("/dev/xvda"),
		BlockDeviceMappings: []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/xvda"), Ebs: &types.EbsBlockDevice{SnapshotId: snap.SnapshotId}}},
		TagSpecifications:   tagSpec(types.ResourceTypeImage, "autoami:stream", "web", "autoami:revision", "r1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	imageID := aws.ToString(img.ImageId)
	run, err := a.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: img.ImageId, InstanceType: types.InstanceTypeT4gNano,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1), TagSpecifications: tagSpec(types.ResourceTypeInstance, "autoami:unpacker", "yes")})
	if err != nil {
		t.Fatal(err)
	}
	instanceID := aws.ToString(run.Instances[0].InstanceId)
	roots := rootVolumes(t, ctx, a, run.Instances)
	if _, err := a.AttachVolume(ctx, &ec2.AttachVolumeInput{VolumeId: vol.VolumeId, InstanceId: aws.String(instanceID), Device: aws.String("/dev/xvdf")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ssmA.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/autoami/web/latest"), Value: aws.String(imageID),
		Type: ssmtypes.ParameterTypeString, DataType: aws.String("aws:ec2:image"),
		Tags: []ssmtypes.Tag{{Key: aws.String("autoami:stream"), Value: aws.String("web")}}}); err != nil {
		t.Fatal(err)
	}

	// Account B, eu-west-1: a volume, a snapshot, a text parameter.
	volB, err := b.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(west + "b"), Size: aws.Int32(1),
		TagSpecifications: tagSpec(types.ResourceTypeVolume, "autoami:stream", "db")})
	if err != nil {
		t.Fatal(err)
	}
	snapB, err := b.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: volB.VolumeId})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ssmB.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("note"), Value: aws.String("hello"), Type: ssmtypes.ParameterTypeString}); err != nil {
		t.Fatal(err)
	}
	// Built-in and public images, read from both accounts, are not the tests'.
	for _, c := range []*ec2.Client{a, b} {
		if _, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{MaxResults: aws.Int32(5)}); err != nil {
			t.Fatal(err)
		}
	}

	inv, err := world.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Targets) != 2 {
		t.Fatalf("inventory has %d targets, want 2 (%s/%s, %s/%s):\n%s", len(inv.Targets), DefaultAccountID, region, otherAccount, west, resourceLines(inv.Resources()))
	}
	ta := target(t, inv, DefaultAccountID, region)
	if len(ta.Instances) != 1 || ta.Instances[0].ID != instanceID || ta.Instances[0].State != "running" {
		t.Errorf("instances %+v, want %s running", ta.Instances, instanceID)
	} else {
		sameTags(t, "instance", ta.Instances[0].Tags, "autoami:unpacker", "yes")
	}
	wantVolumes := append([]string{volID}, roots...)
	slices.Sort(wantVolumes)
	var gotVolumes []string
	for _, v := range ta.Volumes {
		gotVolumes = append(gotVolumes, v.ID)
		if v.ID == volID {
			if v.SizeGiB != 3 || v.State != "in-use" || len(v.Attachments) != 1 ||
				v.Attachments[0] != (InventoryVolumeAttachment{InstanceID: instanceID, Device: "/dev/xvdf", State: "attached"}) {
				t.Errorf("attached volume %+v", v)
			}
			sameTags(t, "volume", v.Tags, "autoami:stream", "web", "Name", "data")
		} else if len(v.Attachments) != 1 || v.Attachments[0].InstanceID != instanceID {
			t.Errorf("root volume %+v, want attached to %s", v, instanceID)
		}
	}
	if !slices.Equal(gotVolumes, wantVolumes) {
		t.Errorf("volumes %v, want %v (data volume and the instance's root)", gotVolumes, wantVolumes)
	}
	if len(ta.Snapshots) != 1 || ta.Snapshots[0].ID != snapID || ta.Snapshots[0].VolumeID != volID || ta.Snapshots[0].State != "completed" {
		t.Errorf("snapshots %+v, want %s of %s", ta.Snapshots, snapID, volID)
	} else {
		sameTags(t, "snapshot", ta.Snapshots[0].Tags, "autoami:stream", "web")
	}
	if len(ta.Images) != 1 || ta.Images[0].ID != imageID || ta.Images[0].Name != "web-1" || !slices.Equal(ta.Images[0].SnapshotIDs, []string{snapID}) {
		t.Errorf("images %+v, want %s on %s (no built-in AMIs)", ta.Images, imageID, snapID)
	} else {
		sameTags(t, "image", ta.Images[0].Tags, "autoami:stream", "web", "autoami:revision", "r1")
	}
	if p := ta.Parameters; len(p) != 1 || p[0].Name != "/autoami/web/latest" || p[0].Type != "String" || p[0].DataType != "aws:ec2:image" {
		t.Errorf("parameters %+v, want /autoami/web/latest (String, aws:ec2:image)", p)
	} else {
		sameTags(t, "parameter", p[0].Tags, "autoami:stream", "web")
	}
	tb := target(t, inv, otherAccount, west)
	if len(tb.Volumes) != 1 || tb.Volumes[0].ID != aws.ToString(volB.VolumeId) || len(tb.Snapshots) != 1 || tb.Snapshots[0].ID != aws.ToString(snapB.SnapshotId) ||
		len(tb.Parameters) != 1 || tb.Parameters[0].Name != "note" || tb.Parameters[0].DataType != "text" || len(tb.Images)+len(tb.Instances) != 0 {
		t.Errorf("second target %+v", tb)
	}
	if left := inv.Leftovers(TaggedWith("autoami:stream", "web")); len(left) != 4 {
		t.Errorf("leftovers of stream web: %d, want 4 (volume, snapshot, image, parameter):\n%s", len(left), resourceLines(left))
	}

	// Delete it all, as a destroy would: detach, terminate and wait, delete.
	if _, err := a.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: vol.VolumeId}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{instanceID}}); err != nil {
		t.Fatal(err)
	}
	if err := ec2.NewVolumeAvailableWaiter(a, func(o *ec2.VolumeAvailableWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, 500*time.Millisecond
	}).Wait(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{volID}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := ec2.NewInstanceTerminatedWaiter(a, func(o *ec2.InstanceTerminatedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, 500*time.Millisecond
	}).Wait(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instanceID}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	deletions := []func() error{
		func() error {
			_, err := a.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: vol.VolumeId})
			return err
		},
		func() error {
			_, err := a.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: img.ImageId, DeleteAssociatedSnapshots: aws.Bool(true)})
			return err
		},
		func() error {
			_, err := ssmA.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String("/autoami/web/latest")})
			return err
		},
		func() error {
			_, err := b.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: snapB.SnapshotId})
			return err
		},
		func() error {
			_, err := b.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: volB.VolumeId})
			return err
		},
		func() error {
			_, err := ssmB.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String("note")})
			return err
		},
	}
	for i, del := range deletions {
		if err := del(); err != nil {
			t.Fatalf("deletion %d: %v", i, err)
		}
	}

	inv, err = InventoryAt(ctx, world.URL)
	if err != nil {
		t.Fatal(err)
	}
	if !inv.Empty() {
		t.Fatalf("left behind after deleting everything:\n%s", resourceLines(inv.Leftovers(nil)))
	}
	// The terminated instance is still listed (as AWS lists it for a while),
	// but is no leftover.
	if got := inv.Resources(); len(got) != 1 || got[0].Kind != KindInstance || got[0].State != "terminated" {
		t.Fatalf("resources after deletion: %v, want only the terminated instance", got)
	}
}

func resourceLines(rs []Resource) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "  %s\n", r)
	}
	return b.String()
}

// Leftovers and Resource.String without a server.
func TestInventoryLeftovers(t *testing.T) {
	inv := Inventory{Targets: []TargetInventory{{
		Account: "111111111111", Region: "eu-west-1",
		Instances:  []InventoryInstance{{ID: "i-1", State: "terminated"}, {ID: "i-2", State: "stopped", Tags: map[string]string{"autoami:stream": "web"}}},
		Volumes:    []InventoryVolume{{ID: "vol-1", State: "available", Tags: map[string]string{"autoami:stream": "db"}}},
		Parameters: []InventoryParameter{{Name: "/p", Type: "String", DataType: "text"}},
	}}}
	if inv.Empty() {
		t.Fatal("an inventory with a stopped instance is empty")
	}
	if got := inv.Leftovers(nil); len(got) != 3 {
		t.Fatalf("leftovers %v, want i-2, vol-1, /p", got)
	}
	left := inv.Leftovers(TaggedWith("autoami:stream", "web"))
	if len(left) != 1 || left[0].String() != "instance i-2 (stopped) in 111111111111/eu-west-1 {autoami:stream=web}" {
		t.Fatalf("leftovers of stream web: %v", left)
	}
	if got := inv.Leftovers(TaggedWith("autoami:stream", "")); len(got) != 2 {
		t.Fatalf("leftovers with any stream: %v", got)
	}
	if !(Inventory{}).Empty() || (Inventory{Targets: []TargetInventory{{Instances: []InventoryInstance{{ID: "i-1", State: "terminated"}}}}}).Empty() != true {
		t.Fatal("an inventory of terminated instances only is not empty")
	}
}
