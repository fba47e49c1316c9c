package moto

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	ebstypes "github.com/aws/aws-sdk-go-v2/service/ebs/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// changedBlocks lists ListChangedBlocks(first, second) in pages of 100.
func changedBlocks(t *testing.T, c *ebs.Client, first, second string) []ebstypes.ChangedBlock {
	t.Helper()
	var all []ebstypes.ChangedBlock
	p := ebs.NewListChangedBlocksPaginator(c, &ebs.ListChangedBlocksInput{FirstSnapshotId: aws.String(first), SecondSnapshotId: aws.String(second), MaxResults: aws.Int32(100)})
	for p.HasMorePages() {
		page, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatalf("list changed blocks %s -> %s: %v", first, second, err)
		}
		all = append(all, page.ChangedBlocks...)
	}
	return all
}

// getBlock reads one block through GetSnapshotBlock and checks its checksum.
func getBlock(t *testing.T, c *ebs.Client, snapshotID string, index int32, token *string) []byte {
	t.Helper()
	out, err := c.GetSnapshotBlock(t.Context(), &ebs.GetSnapshotBlockInput{SnapshotId: aws.String(snapshotID), BlockIndex: aws.Int32(index), BlockToken: token})
	if err != nil {
		t.Fatalf("get block %d of %s: %v", index, snapshotID, err)
	}
	defer out.BlockData.Close()
	data, err := io.ReadAll(out.BlockData)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if got := aws.ToString(out.Checksum); got != base64.StdEncoding.EncodeToString(sum[:]) || out.ChecksumAlgorithm != ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256 {
		t.Errorf("block %d of %s: checksum %s (%s) does not match its data", index, snapshotID, got, out.ChecksumAlgorithm)
	}
	return data
}

// GAP: EBS direct knows only blocks written with PutSnapshotBlock, so two
// CreateSnapshot snapshots of one volume cannot be compared. AWS: the EBS
// direct APIs read any snapshot; ListChangedBlocks between two snapshots of
// one volume is what the second costs as an incremental snapshot.
func TestBlocksChangedBetweenSnapshotsOfAVolume(t *testing.T) {
	ctx := fresh(t)
	cfg := AWSConfig(world.URL, region)
	c, direct := ec2.NewFromConfig(cfg), ebs.NewFromConfig(cfg)
	volumeID := newVolume(t, ctx, c, 1, "")
	file := VolumeFile(world.DataDir, DefaultAccountID, region, volumeID)
	for _, idx := range []int64{1, 10, 100, 1000, 2000} {
		writeFileBlock(t, file, idx, blockPattern("v1"+string(rune('a'+idx%26))))
	}
	first := newSnapshot(t, ctx, c, volumeID)

	// Three blocks change: one rewritten, one zeroed, one written for the
	// first time; one is rewritten with the bytes it had.
	writeFileBlock(t, file, 10, blockPattern("v2 of 10"))
	writeFileBlock(t, file, 100, make([]byte, blockSize))
	writeFileBlock(t, file, 1500, blockPattern("v2 of 1500"))
	writeFileBlock(t, file, 1, blockPattern("v1"+string(rune('a'+1))))
	second := newSnapshot(t, ctx, c, volumeID)

	if got, want := listBlocks(t, ctx, direct, first), []int32{1, 10, 100, 1000, 2000}; !reflect.DeepEqual(got, want) {
		t.Errorf("blocks of the first snapshot %v, want %v", got, want)
	}
	if got, want := listBlocks(t, ctx, direct, second), []int32{1, 10, 1000, 1500, 2000}; !reflect.DeepEqual(got, want) {
		t.Errorf("blocks of the second snapshot %v, want %v", got, want)
	}
	changed := changedBlocks(t, direct, first, second)
	var indexes []int32
	for _, b := range changed {
		indexes = append(indexes, aws.ToInt32(b.BlockIndex))
	}
	if !reflect.DeepEqual(indexes, []int32{10, 100, 1500}) {
		t.Fatalf("changed blocks %v, want exactly [10 100 1500]", indexes)
	}
	rewritten, zeroed, added := changed[0], changed[1], changed[2]
	if rewritten.FirstBlockToken == nil || rewritten.SecondBlockToken == nil || zeroed.SecondBlockToken != nil || added.FirstBlockToken != nil {
		t.Errorf("block tokens: rewritten %+v, zeroed %+v, added %+v", rewritten, zeroed, added)
	}
	if got := getBlock(t, direct, second, 10, rewritten.SecondBlockToken); string(got) != string(blockPattern("v2 of 10")) {
		t.Errorf("block 10 of the second snapshot: %.20q", got)
	}
	if got := getBlock(t, direct, first, 10, rewritten.FirstBlockToken); string(got) != string(blockPattern("v1k")) {
		t.Errorf("block 10 of the first snapshot: %.20q", got)
	}
	_, err := direct.GetSnapshotBlock(ctx, &ebs.GetSnapshotBlockInput{SnapshotId: aws.String(second), BlockIndex: aws.Int32(10), BlockToken: rewritten.FirstBlockToken})
	wantCode(t, err, "ValidationException") // another block's token

	// Only snapshots of one lineage compare, older first.
	other := newSnapshot(t, ctx, c, newVolume(t, ctx, c, 1, ""))
	_, err = direct.ListChangedBlocks(ctx, &ebs.ListChangedBlocksInput{FirstSnapshotId: aws.String(first), SecondSnapshotId: aws.String(other)})
	wantCode(t, err, "ValidationException")
	_, err = direct.ListChangedBlocks(ctx, &ebs.ListChangedBlocksInput{FirstSnapshotId: aws.String(second), SecondSnapshotId: aws.String(first)})
	wantCode(t, err, "ValidationException")
}

// GAP: an EBS direct snapshot holds its blocks only for EBS direct. AWS: it is
// a snapshot like any other: a volume made from it holds the blocks, and a
// snapshot made with CreateSnapshot can be its parent.
func TestBlocksEbsDirectSnapshotsAreSnapshots(t *testing.T) {
	ctx := fresh(t)
	cfg := AWSConfig(world.URL, region)
	c, direct := ec2.NewFromConfig(cfg), ebs.NewFromConfig(cfg)

	// A CreateSnapshot snapshot as the parent of an EBS direct snapshot.
	volumeID := newVolume(t, ctx, c, 1, "")
	parentBytes := map[int64][]byte{2: blockPattern("parent 2"), 9: blockPattern("parent 9")}
	for idx, data := range parentBytes {
		writeFileBlock(t, VolumeFile(world.DataDir, DefaultAccountID, region, volumeID), idx, data)
	}
	parent := newSnapshot(t, ctx, c, volumeID)
	start, err := direct.StartSnapshot(ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(2), ParentSnapshotId: aws.String(parent)})
	if err != nil {
		t.Fatal(err)
	}
	child := aws.ToString(start.SnapshotId)
	written := blockPattern("child 9")
	if err := putBlock(ctx, direct, child, 9, written, checksum(written)); err != nil {
		t.Fatal(err)
	}
	if err := putBlock(ctx, direct, child, 3000, written, checksum(written)); err != nil {
		t.Fatal(err)
	}
	if _, err := direct.CompleteSnapshot(ctx, &ebs.CompleteSnapshotInput{SnapshotId: aws.String(child), ChangedBlocksCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	if got := listBlocks(t, ctx, direct, child); !reflect.DeepEqual(got, []int32{2, 9, 3000}) {
		t.Errorf("child lists %v, want the parent's 2 and 9 and its own 3000", got)
	}
	var indexes []int32
	for _, b := range changedBlocks(t, direct, parent, child) {
		indexes = append(indexes, aws.ToInt32(b.BlockIndex))
	}
	if !reflect.DeepEqual(indexes, []int32{9, 3000}) {
		t.Errorf("changed from the parent %v, want [9 3000]", indexes)
	}

	// The EC2 snapshot comes from no volume and leaves none behind.
	snaps, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{child}})
	if err != nil {
		t.Fatal(err)
	}
	if s := snaps.Snapshots[0]; aws.ToString(s.VolumeId) != "vol-ffffffff" || aws.ToInt32(s.VolumeSize) != 2 {
		t.Errorf("EBS direct snapshot: volume %s size %d, want vol-ffffffff, 2", aws.ToString(s.VolumeId), aws.ToInt32(s.VolumeSize))
	}
	volumes, err := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(volumes.Volumes) != 1 {
		t.Errorf("%d volumes after StartSnapshot, want only the test's", len(volumes.Volumes))
	}

	// A volume made from it holds the parent's bytes under the child's.
	restored := VolumeFile(world.DataDir, DefaultAccountID, region, newVolumeFrom(t, ctx, c, child, 2))
	wantFileSize(t, restored, 2*gibibyte)
	wantFileBlocks(t, restored, map[int64][]byte{2: parentBytes[2], 9: written, 3000: written})

	_, err = direct.StartSnapshot(ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1), ParentSnapshotId: aws.String("snap-0123456789abcdef0")})
	wantCode(t, err, "ResourceNotFoundException")
	_, err = direct.StartSnapshot(ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1), ParentSnapshotId: aws.String(child)})
	wantCode(t, err, "ValidationException") // smaller than the parent
	if _, err := c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(child)}); err != nil {
		t.Fatal(err)
	}
	wantNoFile(t, SnapshotFile(world.DataDir, DefaultAccountID, region, child))
	_, err = direct.ListSnapshotBlocks(ctx, &ebs.ListSnapshotBlocksInput{SnapshotId: aws.String(child)})
	wantCode(t, err, "ResourceNotFoundException")
}
