package moto

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/sys/unix"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/loopdev"
)

const gibibyte = int64(1) << 30

// pattern is a 512 KiB block that names its seed, so blocks never collide.
func blockPattern(seed string) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < blockSize; i++ {
		fmt.Fprintf(&b, "%s:%08d;", seed, i)
	}
	return b.Bytes()[:blockSize]
}

// writeBlock writes data at block index idx of file and syncs it.
func writeFileBlock(t *testing.T, file string, idx int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, idx*blockSize); err != nil {
		t.Fatalf("write block %d of %s: %v", idx, file, err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// readBlock reads block index idx of file.
func readFileBlock(t *testing.T, file string, idx int64) []byte {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := make([]byte, blockSize)
	if _, err := f.ReadAt(data, idx*blockSize); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("read block %d of %s: %v", idx, file, err)
	}
	return data
}

// wantBlocks fails unless file holds want[idx] at each block index idx.
func wantFileBlocks(t *testing.T, file string, want map[int64][]byte) {
	t.Helper()
	for idx, data := range want {
		if got := readFileBlock(t, file, idx); !bytes.Equal(got, data) {
			t.Errorf("%s block %d: got %.24q..., want %.24q...", filepath.Base(file), idx, got, data)
		}
	}
}

// wantSize fails unless file is size bytes long.
func wantFileSize(t *testing.T, file string, size int64) {
	t.Helper()
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != size {
		t.Errorf("%s is %d bytes, want %d", filepath.Base(file), st.Size(), size)
	}
}

// allocated is the number of bytes the filesystem holds for file (holes are free).
func allocatedBytes(t testing.TB, file string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(file, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

func wantNoFile(t *testing.T, file string) {
	t.Helper()
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still there (err %v)", file, err)
	}
}

// contentDigest hashes the data extents of file (offsets included), so that
// two calls tell whether anything was written in between.
func dataExtentsDigest(t *testing.T, file string) [32]byte {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	for off := int64(0); off < st.Size(); {
		start, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		end, err := unix.Seek(int(f.Fd()), start, unix.SEEK_HOLE)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "@%d:", start)
		if _, err := io.Copy(h, io.NewSectionReader(f, start, end-start)); err != nil {
			t.Fatal(err)
		}
		off = end
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// loopsUnder lists loop devices whose backing file lies under dir.
func loopDevicesUnder(t *testing.T, dir string) []string {
	t.Helper()
	out, err := exec.Command("losetup", "--list", "--json", "--output", "NAME,BACK-FILE").Output()
	if err != nil {
		t.Fatalf("losetup --list: %v", err)
	}
	var listing struct {
		Devices []struct {
			Name string `json:"name"`
			Back string `json:"back-file"`
		} `json:"loopdevices"`
	}
	if len(bytes.TrimSpace(out)) > 0 {
		if err := json.Unmarshal(out, &listing); err != nil {
			t.Fatalf("losetup --list: %v", err)
		}
	}
	var found []string
	for _, d := range listing.Devices {
		if strings.HasPrefix(d.Back, dir+"/") {
			found = append(found, d.Name+" on "+d.Back)
		}
	}
	return found
}

// noLoopsLeft fails when a loop device still has a file of the world behind it.
func noLoopDevicesLeft(t *testing.T) {
	t.Helper()
	if loops := loopDevicesUnder(t, world.DataDir); len(loops) > 0 {
		t.Errorf("loop devices left on the world's files: %v", loops)
	}
}

// attachLoop attaches file to a loop device, as an instance's daemon does.
// The harness may detach it (DetachVolume does); the cleanup then detaches
// the device only while its backing file is still this file, so a number the
// kernel gave to someone else meanwhile is never touched.
func attachLoopAsDaemon(t *testing.T, file string) string {
	t.Helper()
	out, err := exec.Command("losetup", "--find", "--show", file).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup %s: %v: %s", file, err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		back, err := os.ReadFile("/sys/block/" + filepath.Base(dev) + "/loop/backing_file")
		if err != nil || strings.TrimSuffix(strings.TrimSpace(string(back)), " (deleted)") != file {
			return // gone, or no longer ours
		}
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("cleanup: losetup -d %s: %v: %s", dev, err, out)
		}
	})
	return dev
}

// mountNewExt4 makes an ext4 filesystem on dev and mounts it (unmounted in
// t.Cleanup unless the returned unmount ran first).
func mkfsAndMount(t *testing.T, dev string) (dir string, unmount func()) {
	t.Helper()
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", dev).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4 %s: %v: %s", dev, err, out)
	}
	return loopdev.Mount(t, dev, "ext4")
}

// createVolume makes a volume of sizeGiB in zone (empty: region + "a").
func newVolume(t *testing.T, ctx context.Context, c *ec2.Client, sizeGiB int32, zone string) string {
	t.Helper()
	if zone == "" {
		zone = region + "a"
	}
	out, err := c.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(zone), Size: aws.Int32(sizeGiB)})
	if err != nil {
		t.Fatalf("create volume: %v", err)
	}
	return aws.ToString(out.VolumeId)
}

// createVolumeFrom makes a volume of sizeGiB from a snapshot in zone region+"a".
func newVolumeFrom(t *testing.T, ctx context.Context, c *ec2.Client, snapshotID string, sizeGiB int32) string {
	t.Helper()
	out, err := c.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(region + "a"), SnapshotId: aws.String(snapshotID), Size: aws.Int32(sizeGiB)})
	if err != nil {
		t.Fatalf("create volume from %s: %v", snapshotID, err)
	}
	return aws.ToString(out.VolumeId)
}

func newSnapshot(t *testing.T, ctx context.Context, c *ec2.Client, volumeID string) string {
	t.Helper()
	out, err := c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(volumeID)})
	if err != nil {
		t.Fatalf("create snapshot of %s: %v", volumeID, err)
	}
	return aws.ToString(out.SnapshotId)
}

func volumeByID(t *testing.T, ctx context.Context, c *ec2.Client, volumeID string) types.Volume {
	t.Helper()
	out, err := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{volumeID}})
	if err != nil {
		t.Fatalf("describe volume %s: %v", volumeID, err)
	}
	if len(out.Volumes) != 1 {
		t.Fatalf("describe volume %s: %d volumes", volumeID, len(out.Volumes))
	}
	return out.Volumes[0]
}

func instanceByID(t *testing.T, ctx context.Context, c *ec2.Client, instanceID string) types.Instance {
	t.Helper()
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instanceID}})
	if err != nil {
		t.Fatalf("describe instance %s: %v", instanceID, err)
	}
	if len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
		t.Fatalf("describe instance %s: %d reservations", instanceID, len(out.Reservations))
	}
	return out.Reservations[0].Instances[0]
}

// rootVolumeOf is the volume an instance has at its root device name.
func rootVolumeID(t *testing.T, inst types.Instance) string {
	t.Helper()
	for _, m := range inst.BlockDeviceMappings {
		if aws.ToString(m.DeviceName) == aws.ToString(inst.RootDeviceName) && m.Ebs != nil {
			return aws.ToString(m.Ebs.VolumeId)
		}
	}
	t.Fatalf("instance %s has no volume at its root device %s: %+v", aws.ToString(inst.InstanceId),
		aws.ToString(inst.RootDeviceName), inst.BlockDeviceMappings)
	return ""
}

// launch runs one arm64 instance of imageID in region's zone "a".
func runInstance(t *testing.T, ctx context.Context, c *ec2.Client, imageID string, mappings ...types.BlockDeviceMapping) (types.Instance, error) {
	t.Helper()
	out, err := c.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String(imageID), InstanceType: types.InstanceTypeT4gMicro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		Placement: &types.Placement{AvailabilityZone: aws.String(region + "a")}, BlockDeviceMappings: mappings,
	})
	if err != nil {
		return types.Instance{}, err
	}
	return out.Instances[0], nil
}

func mustRunInstance(t *testing.T, ctx context.Context, c *ec2.Client, imageID string, mappings ...types.BlockDeviceMapping) types.Instance {
	t.Helper()
	inst, err := runInstance(t, ctx, c, imageID, mappings...)
	if err != nil {
		t.Fatalf("run instance of %s: %v", imageID, err)
	}
	return inst
}
