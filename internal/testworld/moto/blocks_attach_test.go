package moto

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/sys/unix"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/loopdev"
)

// imageOf registers an arm64 image whose root /dev/xvda is a snapshot of a
// new volume of sizeGiB holding blocks (written straight into its file).
func imageOf(t *testing.T, c *ec2.Client, name string, sizeGiB int32, encrypted bool, blocks map[int64][]byte) (imageID, snapshotID string) {
	t.Helper()
	ctx := t.Context()
	out, err := c.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(region + "a"), Size: aws.Int32(sizeGiB), Encrypted: aws.Bool(encrypted)})
	if err != nil {
		t.Fatal(err)
	}
	volumeID := aws.ToString(out.VolumeId)
	for idx, data := range blocks {
		writeFileBlock(t, VolumeFile(world.DataDir, DefaultAccountID, region, volumeID), idx, data)
	}
	snapshotID = newSnapshot(t, ctx, c, volumeID)
	return register(t, ctx, c, name, snapshotID), snapshotID
}

// terminate terminates an instance and waits until it is terminated.
func terminate(t *testing.T, c *ec2.Client, instanceID string) {
	t.Helper()
	ctx := t.Context()
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{instanceID}}); err != nil {
		t.Fatalf("terminate %s: %v", instanceID, err)
	}
	w := ec2.NewInstanceTerminatedWaiter(c, func(o *ec2.InstanceTerminatedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 50*time.Millisecond, time.Second
	})
	if err := w.Wait(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instanceID}}, time.Minute); err != nil {
		t.Fatalf("wait for %s to terminate: %v", instanceID, err)
	}
}

func attach(t *testing.T, c *ec2.Client, volumeID, instanceID, device string) error {
	t.Helper()
	_, err := c.AttachVolume(t.Context(), &ec2.AttachVolumeInput{VolumeId: aws.String(volumeID), InstanceId: aws.String(instanceID), Device: aws.String(device)})
	return err
}

func wantSameFile(t *testing.T, a, b string) {
	t.Helper()
	sa, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := os.Stat(b)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(sa, sb) {
		t.Errorf("%s and %s are different files, want one hard-linked file", a, b)
	}
}

// GAP: the root volume is a blank 8 GiB /dev/sda1 with no snapshot. AWS: it
// is made from the image's root snapshot (bytes, size, encryption and key,
// device name), the request's mapping may enlarge or encrypt it, and it goes
// with the instance when DeleteOnTermination says so.
func TestBlocksRootVolumeFromImage(t *testing.T) {
	ctx := fresh(t)
	c := ec2As(t, ctx, DefaultAccountID, region)
	rootBytes := map[int64][]byte{0: blockPattern("boot sector"), 77: blockPattern("root fs")}
	imageID, snapshotID := imageOf(t, c, "encrypted-root", 2, true, rootBytes)
	snaps, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{snapshotID}})
	if err != nil {
		t.Fatal(err)
	}
	snapshotKey := aws.ToString(snaps.Snapshots[0].KmsKeyId)

	inst := instanceByID(t, ctx, c, aws.ToString(mustRunInstance(t, ctx, c, imageID).InstanceId))
	instanceID := aws.ToString(inst.InstanceId)
	if got := aws.ToString(inst.RootDeviceName); got != "/dev/xvda" {
		t.Errorf("RootDeviceName %q, want the image's /dev/xvda", got)
	}
	rootID := rootVolumeID(t, inst)
	root := volumeByID(t, ctx, c, rootID)
	if aws.ToString(root.SnapshotId) != snapshotID || aws.ToInt32(root.Size) != 2 || !aws.ToBool(root.Encrypted) ||
		aws.ToString(root.KmsKeyId) != snapshotKey || root.VolumeType != types.VolumeTypeGp3 {
		t.Errorf("root volume: snapshot %s size %d encrypted %v key %s type %s; want %s, 2, true, %s, gp3",
			aws.ToString(root.SnapshotId), aws.ToInt32(root.Size), aws.ToBool(root.Encrypted), aws.ToString(root.KmsKeyId),
			root.VolumeType, snapshotID, snapshotKey)
	}
	if len(root.Attachments) != 1 || aws.ToString(root.Attachments[0].Device) != "/dev/xvda" || !aws.ToBool(root.Attachments[0].DeleteOnTermination) {
		t.Errorf("root volume attachments %+v, want /dev/xvda, DeleteOnTermination", root.Attachments)
	}
	rootFile := VolumeFile(world.DataDir, DefaultAccountID, region, rootID)
	wantFileSize(t, rootFile, 2*gibibyte)
	wantFileBlocks(t, rootFile, rootBytes)
	rootLink := AttachedVolumeFile(world.DataDir, DefaultAccountID, region, instanceID, rootID)
	wantSameFile(t, rootFile, rootLink)

	t.Run("BlockDeviceMappings enlarge the root and add a volume", func(t *testing.T) {
		inst := instanceByID(t, ctx, c, aws.ToString(mustRunInstance(t, ctx, c, imageID,
			types.BlockDeviceMapping{DeviceName: aws.String("/dev/xvda"), Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(5)}},
			types.BlockDeviceMapping{DeviceName: aws.String("/dev/sdf"), Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(1)}},
		).InstanceId))
		root := volumeByID(t, ctx, c, rootVolumeID(t, inst))
		if aws.ToInt32(root.Size) != 5 || aws.ToString(root.SnapshotId) != snapshotID {
			t.Errorf("enlarged root: size %d snapshot %s", aws.ToInt32(root.Size), aws.ToString(root.SnapshotId))
		}
		file := VolumeFile(world.DataDir, DefaultAccountID, region, aws.ToString(root.VolumeId))
		wantFileSize(t, file, 5*gibibyte)
		wantFileBlocks(t, file, rootBytes)
		var data string
		for _, m := range inst.BlockDeviceMappings {
			if aws.ToString(m.DeviceName) == "/dev/sdf" {
				data = aws.ToString(m.Ebs.VolumeId)
			}
		}
		if data == "" {
			t.Fatalf("no /dev/sdf volume: %+v", inst.BlockDeviceMappings)
		}
		wantFileSize(t, VolumeFile(world.DataDir, DefaultAccountID, region, data), gibibyte)
	})

	t.Run("BlockDeviceMappings cannot shrink the root below its snapshot", func(t *testing.T) {
		_, err := runInstance(t, ctx, c, imageID, types.BlockDeviceMapping{DeviceName: aws.String("/dev/xvda"), Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(1)}})
		wantCode(t, err, "InvalidBlockDeviceMapping")
	})

	t.Run("BlockDeviceMappings encrypt the root of an unencrypted image", func(t *testing.T) {
		plainImage, _ := imageOf(t, c, "plain-root", 1, false, map[int64][]byte{5: blockPattern("plain")})
		inst := instanceByID(t, ctx, c, aws.ToString(mustRunInstance(t, ctx, c, plainImage,
			types.BlockDeviceMapping{DeviceName: aws.String("/dev/xvda"), Ebs: &types.EbsBlockDevice{Encrypted: aws.Bool(true)}}).InstanceId))
		root := volumeByID(t, ctx, c, rootVolumeID(t, inst))
		key, err := c.GetEbsDefaultKmsKeyId(ctx, &ec2.GetEbsDefaultKmsKeyIdInput{})
		if err != nil {
			t.Fatal(err)
		}
		if !aws.ToBool(root.Encrypted) || aws.ToString(root.KmsKeyId) != aws.ToString(key.KmsKeyId) {
			t.Errorf("root of an unencrypted image asked encrypted: encrypted %v key %s, want the default key %s",
				aws.ToBool(root.Encrypted), aws.ToString(root.KmsKeyId), aws.ToString(key.KmsKeyId))
		}
		wantFileBlocks(t, VolumeFile(world.DataDir, DefaultAccountID, region, aws.ToString(root.VolumeId)), map[int64][]byte{5: blockPattern("plain")})
	})

	// TerminateInstances deletes DeleteOnTermination volumes, files included.
	terminate(t, c, instanceID)
	_, err = c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{rootID}})
	wantCode(t, err, "InvalidVolume.NotFound")
	wantNoFile(t, rootFile)
	wantNoFile(t, rootLink)
}

// GAP: AttachVolume accepts a volume that is attached, a device in use and a
// volume of another zone; DetachVolume with only VolumeId answers 500 (the
// usual cleanup call); TerminateInstances then fails. AWS refuses each with
// its own error; the attached volume is what the instance's daemon sees.
func TestBlocksAttachDetachFidelity(t *testing.T) {
	loopdev.RequireRoot(t)
	ctx := fresh(t)
	c := ec2As(t, ctx, DefaultAccountID, region)
	imageID, _ := imageOf(t, c, "attach-target", 1, false, nil)
	inst := instanceByID(t, ctx, c, aws.ToString(mustRunInstance(t, ctx, c, imageID).InstanceId))
	instanceID := aws.ToString(inst.InstanceId)

	volumeID := newVolume(t, ctx, c, 1, "")
	if err := attach(t, c, volumeID, instanceID, "/dev/sdf"); err != nil {
		t.Fatal(err)
	}
	file := VolumeFile(world.DataDir, DefaultAccountID, region, volumeID)
	link := AttachedVolumeFile(world.DataDir, DefaultAccountID, region, instanceID, volumeID)
	wantSameFile(t, file, link)
	if v := volumeByID(t, ctx, c, volumeID); v.State != types.VolumeStateInUse || len(v.Attachments) != 1 ||
		v.Attachments[0].State != types.VolumeAttachmentStateAttached || aws.ToBool(v.Attachments[0].DeleteOnTermination) {
		t.Errorf("attached volume: state %s attachments %+v", v.State, v.Attachments)
	}

	otherID := newVolume(t, ctx, c, 1, "")
	wantCode(t, attach(t, c, volumeID, instanceID, "/dev/sdg"), "VolumeInUse")
	wantCode(t, attach(t, c, otherID, instanceID, "/dev/sdf"), "InvalidParameterValue")
	wantCode(t, attach(t, c, newVolume(t, ctx, c, 1, region+"b"), instanceID, "/dev/sdh"), "InvalidVolume.ZoneMismatch")
	_, err := c.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: aws.String(rootVolumeID(t, inst))})
	wantCode(t, err, "IncorrectState") // the root of a running instance
	_, err = c.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: aws.String(volumeID)})
	wantCode(t, err, "VolumeInUse")

	out, err := c.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: aws.String(volumeID)})
	if err != nil {
		t.Fatalf("DetachVolume with only VolumeId: %v", err)
	}
	if out.State != types.VolumeAttachmentStateDetaching || aws.ToString(out.InstanceId) != instanceID || aws.ToString(out.Device) != "/dev/sdf" {
		t.Errorf("DetachVolume answered %s %s %s", out.State, aws.ToString(out.InstanceId), aws.ToString(out.Device))
	}
	if v := volumeByID(t, ctx, c, volumeID); v.State != types.VolumeStateAvailable || len(v.Attachments) != 0 {
		t.Errorf("detached volume: state %s attachments %+v", v.State, v.Attachments)
	}
	wantNoFile(t, link)
	_, err = c.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: aws.String(volumeID)})
	wantCode(t, err, "IncorrectState")

	// The device name is free again; a volume the daemon holds (not mounted)
	// is let go at termination, and survives it without DeleteOnTermination.
	if err := attach(t, c, otherID, instanceID, "/dev/sdf"); err != nil {
		t.Fatal(err)
	}
	otherLink := AttachedVolumeFile(world.DataDir, DefaultAccountID, region, instanceID, otherID)
	attachLoopAsDaemon(t, otherLink)
	rootFile := VolumeFile(world.DataDir, DefaultAccountID, region, rootVolumeID(t, inst))
	terminate(t, c, instanceID)
	if v := volumeByID(t, ctx, c, otherID); v.State != types.VolumeStateAvailable {
		t.Errorf("volume of a terminated instance: %s, want available", v.State)
	}
	wantFileSize(t, VolumeFile(world.DataDir, DefaultAccountID, region, otherID), gibibyte)
	wantNoFile(t, otherLink)
	wantNoFile(t, rootFile)
	noLoopDevicesLeft(t)
}

// AWS: a volume whose filesystem is still mounted stays busy while detaching
// until it is unmounted; a forced detach tears it away at once, and what the
// instance writes afterwards never reaches the volume.
func TestBlocksDetachMountedVolume(t *testing.T) {
	loopdev.RequireRoot(t)
	ctx := fresh(t)
	c := ec2As(t, ctx, DefaultAccountID, region)
	imageID, _ := imageOf(t, c, "mount-target", 1, false, nil)
	instanceID := aws.ToString(mustRunInstance(t, ctx, c, imageID).InstanceId)

	mounted := func(device string) (volumeID, link, dir string, unmount func()) {
		volumeID = newVolume(t, ctx, c, 1, "")
		if err := attach(t, c, volumeID, instanceID, device); err != nil {
			t.Fatal(err)
		}
		link = AttachedVolumeFile(world.DataDir, DefaultAccountID, region, instanceID, volumeID)
		dir, unmount = mkfsAndMount(t, attachLoopAsDaemon(t, link))
		if err := os.WriteFile(filepath.Join(dir, "before"), blockPattern("before"), 0o644); err != nil {
			t.Fatal(err)
		}
		syncFS(t, dir)
		return volumeID, link, dir, unmount
	}

	t.Run("busy until unmounted", func(t *testing.T) {
		volumeID, link, _, unmount := mounted("/dev/sdf")
		out, err := c.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: aws.String(volumeID)})
		if err != nil {
			t.Fatal(err)
		}
		if out.State != types.VolumeAttachmentStateDetaching {
			t.Errorf("DetachVolume answered %s, want detaching", out.State)
		}
		if v := volumeByID(t, ctx, c, volumeID); v.State != types.VolumeStateInUse || len(v.Attachments) != 1 || v.Attachments[0].State != types.VolumeAttachmentStateBusy {
			t.Errorf("mounted volume after DetachVolume: state %s attachments %+v, want in-use, busy", v.State, v.Attachments)
		}
		wantSameFile(t, VolumeFile(world.DataDir, DefaultAccountID, region, volumeID), link)

		unmount()
		if v := volumeByID(t, ctx, c, volumeID); v.State != types.VolumeStateAvailable || len(v.Attachments) != 0 {
			t.Errorf("unmounted volume: state %s attachments %+v, want available", v.State, v.Attachments)
		}
		wantNoFile(t, link)
	})

	t.Run("Force tears it away", func(t *testing.T) {
		volumeID, link, dir, unmount := mounted("/dev/sdg")
		if _, err := c.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: aws.String(volumeID), Force: aws.Bool(true)}); err != nil {
			t.Fatal(err)
		}
		if v := volumeByID(t, ctx, c, volumeID); v.State != types.VolumeStateAvailable {
			t.Errorf("force-detached volume: %s, want available", v.State)
		}
		wantNoFile(t, link)
		file := VolumeFile(world.DataDir, DefaultAccountID, region, volumeID)
		torn := dataExtentsDigest(t, file)
		if err := os.WriteFile(filepath.Join(dir, "after"), blockPattern("after"), 0o644); err != nil {
			t.Fatal(err)
		}
		syncFS(t, dir)
		if dataExtentsDigest(t, file) != torn {
			t.Error("a write after the forced detach reached the volume's file")
		}
		unmount()
	})
	noLoopDevicesLeft(t)
}

// syncFS flushes the filesystem mounted at dir to its device.
func syncFS(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		t.Fatalf("syncfs %s: %v", dir, err)
	}
}
