package publisher

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	ebstypes "github.com/aws/aws-sdk-go-v2/service/ebs/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/go-cleanhttp"
	"golang.org/x/sync/errgroup"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// rawBlockWorkers bounds the blocks written at once per target (EBS direct
// takes up to 1000 PutSnapshotBlock a second per snapshot).
const rawBlockWorkers = 16

// rawSnapshotTimeoutMinutes: EBS cancels a snapshot not completed by then.
const rawSnapshotTimeoutMinutes = 60

// blockClient fetches blocks by presigned URL (no AWS credentials involved).
var blockClient = cleanhttp.DefaultPooledClient()

// writeRawSnapshot writes a raw-image revision straight into a new EBS
// snapshot with the EBS direct API. When the target holds a completed
// snapshot of an earlier raw revision of the stream made by this
// publication, with the same key and size, the new snapshot starts from it
// and only the blocks whose digests differ are written; otherwise every
// block is written, zeros included (an encrypted snapshot's unwritten
// blocks are not guaranteed to read as zeros).
func (a *actor) writeRawSnapshot(ctx context.Context) error {
	img := a.rev.manifest.Image
	parentID, parent := a.rawParent(ctx)
	var blocks []int
	for i, d := range img.Blocks {
		if parent == nil || i >= len(parent.Blocks) || parent.Blocks[i] != d {
			blocks = append(blocks, i)
		}
	}
	zero := make([]byte, manifest.BlockSize)
	zeroDigest := objects.Digest(sha256.Sum256(zero))
	// Blocks of a longer parent beyond this image's end become zeros.
	if parent != nil {
		for i := len(img.Blocks); i < len(parent.Blocks); i++ {
			blocks = append(blocks, i)
		}
	}
	in := &ebs.StartSnapshotInput{
		VolumeSize:  aws.Int64(int64(a.rev.volumeGiB)),
		Description: aws.String(fmt.Sprintf("autoami stream %s revision %s", a.pub.Stream, a.pub.Revision)),
		ClientToken: aws.String(randomToken()),
		Timeout:     aws.Int32(rawSnapshotTimeoutMinutes),
	}
	for k, v := range a.allTags(roleRootSnapshot, true, a.name) {
		in.Tags = append(in.Tags, ebstypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	if parentID != "" {
		in.ParentSnapshotId = aws.String(parentID) // encryption comes from the parent
	} else {
		in.Encrypted, in.KmsKeyArn = aws.Bool(true), aws.String(a.keyARN)
	}
	start, err := a.aws.EBS.StartSnapshot(ctx, in)
	if err != nil {
		return fmt.Errorf("StartSnapshot: %w", err)
	}
	id := aws.ToString(start.SnapshotId)
	a.rec.SnapshotID = id
	from := "from scratch"
	if parentID != "" {
		from = "on parent " + parentID
	}
	a.info(StepWriteSnapshot, "writing %d of %d blocks into snapshot %s %s", len(blocks), max(len(img.Blocks), len(blocks)), id, from)

	sums := make([][sha256.Size]byte, len(blocks))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(rawBlockWorkers)
	for n, i := range blocks {
		g.Go(func() error {
			data := zero
			// All-zero blocks (most of a disk) need no fetch.
			if i < len(img.Blocks) && img.Blocks[i] != zeroDigest {
				var err error
				if data, err = a.fetchBlock(gctx, img, i); err != nil {
					return err
				}
			}
			sums[n] = sha256.Sum256(data)
			_, err := a.aws.EBS.PutSnapshotBlock(gctx, &ebs.PutSnapshotBlockInput{
				SnapshotId: aws.String(id), BlockIndex: aws.Int32(int32(i)), BlockData: bytes.NewReader(data),
				DataLength: aws.Int32(int32(len(data))), Checksum: aws.String(base64.StdEncoding.EncodeToString(sums[n][:])),
				ChecksumAlgorithm: ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256,
			})
			if err != nil {
				return fmt.Errorf("PutSnapshotBlock %d of %s: %w", i, id, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		// The unfinished snapshot is tagged; the next run deletes it and
		// starts over (EBS also cancels it after its timeout).
		return err
	}
	linear := sha256.New()
	for _, s := range sums { // blocks are in index order
		linear.Write(s[:])
	}
	if _, err := a.aws.EBS.CompleteSnapshot(ctx, &ebs.CompleteSnapshotInput{
		SnapshotId: aws.String(id), ChangedBlocksCount: aws.Int32(int32(len(blocks))),
		Checksum: aws.String(base64.StdEncoding.EncodeToString(linear.Sum(nil))), ChecksumAlgorithm: ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256,
		ChecksumAggregationMethod: ebstypes.ChecksumAggregationMethodChecksumAggregationLinear,
	}); err != nil {
		return fmt.Errorf("CompleteSnapshot %s: %w", id, err)
	}
	return nil
}

// rawParent finds the newest completed snapshot of an earlier raw revision
// of the stream that this publication made in the target and that a child
// can start from (same key, not larger than the new one), and its
// revision's manifest. None is fine: the snapshot is written in full.
func (a *actor) rawParent(ctx context.Context) (string, *manifest.RawImage) {
	tags := a.ownTags(roleRootSnapshot, false)
	out, err := a.aws.EC2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: tagFilters(tags)})
	if err != nil {
		a.info(StepWriteSnapshot, "no parent snapshot (DescribeSnapshots: %v); writing every block", err)
		return "", nil
	}
	snaps := out.Snapshots
	slices.SortFunc(snaps, func(x, y ec2types.Snapshot) int { return aws.ToTime(y.StartTime).Compare(aws.ToTime(x.StartTime)) })
	for _, s := range snaps {
		rev := tagValue(s.Tags, TagRevision)
		if s.State != ec2types.SnapshotStateCompleted || rev == a.pub.Revision || aws.ToString(s.KmsKeyId) != a.keyARN ||
			aws.ToInt32(s.VolumeSize) > a.rev.volumeGiB {
			continue
		}
		m, err := a.p.cfg.Store.GetManifest(ctx, a.pub.Stream, rev)
		if err != nil || m.Kind != manifest.KindRawImage {
			continue
		}
		return aws.ToString(s.SnapshotId), m.Image
	}
	return "", nil
}

// fetchBlock reads block i of the image from the content store by a
// presigned URL and checks its digest; it comes back padded to BlockSize.
func (a *actor) fetchBlock(ctx context.Context, img *manifest.RawImage, i int) ([]byte, error) {
	d := img.Blocks[i]
	u, err := a.p.cfg.Store.PresignObject(ctx, a.p.cfg.Presigner, d, a.p.cfg.URLExpiry)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := blockClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch block %d (object %s): %w", i, d, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch block %d (object %s): %s", i, d, resp.Status)
	}
	buf := make([]byte, manifest.BlockSize)
	n, err := io.ReadFull(resp.Body, buf)
	if err != nil && err != io.ErrUnexpectedEOF {
		return nil, fmt.Errorf("fetch block %d (object %s): %w", i, d, err)
	}
	if got := objects.Digest(sha256.Sum256(buf[:n])); got != d {
		return nil, fmt.Errorf("block %d: the content store's object %s holds data of digest %s", i, d, got)
	}
	return buf, nil
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
