package moto

import (
	"context"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// BenchmarkBlocksVolumeFromSnapshot measures CreateVolume from the snapshot of
// an 8 GiB volume holding 100 MiB of data in 200 extents of 512 KiB: the
// sparse copy of its file (plus one EC2 call). It reports the bytes the copy
// allocates per volume, which must stay those 100 MiB.
func BenchmarkBlocksVolumeFromSnapshot(b *testing.B) {
	ctx := context.Background()
	if err := world.Reset(ctx); err != nil {
		b.Fatal(err)
	}
	c := ec2.NewFromConfig(AWSConfig(world.URL, region))
	vol, err := c.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(region + "a"), Size: aws.Int32(8)})
	if err != nil {
		b.Fatal(err)
	}
	f, err := os.OpenFile(VolumeFile(world.DataDir, DefaultAccountID, region, aws.ToString(vol.VolumeId)), os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, blockSize)
	const extents = 200
	stride := 8 * gibibyte / blockSize / extents
	for i := range int64(extents) {
		data[0] = byte(i) + 1
		if _, err := f.WriteAt(data, i*stride*blockSize); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	snap, err := c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: vol.VolumeId})
	if err != nil {
		b.Fatal(err)
	}
	var last string
	b.ResetTimer()
	for b.Loop() {
		out, err := c.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(region + "a"), SnapshotId: snap.SnapshotId})
		if err != nil {
			b.Fatal(err)
		}
		last = aws.ToString(out.VolumeId)
	}
	b.StopTimer()
	b.ReportMetric(float64(allocatedBytes(b, VolumeFile(world.DataDir, DefaultAccountID, region, last)))/(1<<20), "MiB-allocated/volume")
	if err := world.Reset(ctx); err != nil {
		b.Fatal(err)
	}
}
