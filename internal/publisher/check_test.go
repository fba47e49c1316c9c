package publisher

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/autoami/terraform-provider-autoami/internal/testworld"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/loopdev"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/client"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/devices"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
)

// Helpers that check what a publication made, as the target's account sees it.

// image describes an image as account sees it in region.
func (e *env) image(account, region, id string) ec2types.Image {
	e.t.Helper()
	out, err := e.ec2In(account, region).DescribeImages(e.ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil || len(out.Images) != 1 {
		e.t.Fatalf("image %s as %s sees it in %s: %v (%d images)", id, account, region, err, len(out.Images))
	}
	return out.Images[0]
}

func (e *env) snapshot(account, region, id string) ec2types.Snapshot {
	e.t.Helper()
	out, err := e.ec2In(account, region).DescribeSnapshots(e.ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}})
	if err != nil || len(out.Snapshots) != 1 {
		e.t.Fatalf("snapshot %s in %s/%s: %v", id, account, region, err)
	}
	return out.Snapshots[0]
}

func (e *env) parameter(account, region, name string) (string, bool) {
	e.t.Helper()
	cfg, err := world.Config(e.ctx, region, account)
	if err != nil {
		e.t.Fatal(err)
	}
	out, err := ssm.NewFromConfig(cfg).GetParameter(e.ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	if isCode(err, "ParameterNotFound") {
		return "", false
	}
	if err != nil {
		e.t.Fatal(err)
	}
	if dt := aws.ToString(out.Parameter.DataType); dt != imageDataType {
		e.t.Errorf("parameter %s in %s/%s has data type %q, want %s", name, account, region, dt, imageDataType)
	}
	return aws.ToString(out.Parameter.Value), true
}

func tagsOf(tags []ec2types.Tag) map[string]string {
	out := map[string]string{}
	for _, t := range tags {
		out[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return out
}

// changedBlocks counts the 512 KiB blocks in which second differs from first.
func (e *env) changedBlocks(account, region, first, second string) int {
	e.t.Helper()
	cfg, err := world.Config(e.ctx, region, account)
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	p := ebs.NewListChangedBlocksPaginator(ebs.NewFromConfig(cfg), &ebs.ListChangedBlocksInput{
		FirstSnapshotId: aws.String(first), SecondSnapshotId: aws.String(second), MaxResults: aws.Int32(1000)})
	for p.HasMorePages() {
		page, err := p.NextPage(e.ctx)
		if err != nil {
			e.t.Fatalf("ListChangedBlocks %s → %s in %s/%s: %v", first, second, account, region, err)
		}
		n += len(page.ChangedBlocks)
	}
	return n
}

// disk is what a root snapshot holds: the root file system's manifest
// digest (which is the revision when it holds exactly the revision's
// files) and the SHA-256 of the BIOS boot and EFI system partitions.
type disk struct {
	rootDigest string
	bootHashes [2]string
	imageHash  string // SHA-256 of the whole snapshot
}

// readDisk looks into a copy of a snapshot's bytes (the world's file is
// never written): partitions 1 and 2 hashed, partition 3 mounted and its
// tree read as a manifest, lost+found left out as mkfs makes it.
func (e *env) readDisk(account, region, snapshotID string) disk {
	e.t.Helper()
	src := moto.SnapshotFile(world.Moto.DataDir, account, region, snapshotID)
	cp := filepath.Join(e.t.TempDir(), snapshotID+".img")
	if out, err := exec.Command("cp", "--sparse=always", src, cp).CombinedOutput(); err != nil {
		e.t.Fatalf("copy %s: %v: %s", src, err, out)
	}
	var d disk
	d.imageHash = fileSHA256(e.t, cp)
	dev := loopdev.Attach(e.t, cp)
	nodes, err := devices.EnsurePartitionNodes(e.ctx, dev.Path)
	if err != nil || len(nodes) != 3 {
		e.t.Fatalf("partitions of snapshot %s: %v %v, want 3", snapshotID, nodes, err)
	}
	for i, part := range nodes[:2] {
		f, err := os.Open(part)
		if err != nil {
			e.t.Fatal(err)
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			e.t.Fatal(err)
		}
		d.bootHashes[i] = hex.EncodeToString(h.Sum(nil))
	}
	dir, unmount := loopdev.Mount(e.t, nodes[2], "ext4")
	m, err := manifest.FromDirectory(e.ctx, dir, manifest.DirOptions{Exclude: []string{"lost+found"}})
	if err != nil {
		e.t.Fatal(err)
	}
	digest, err := m.Digest()
	if err != nil {
		e.t.Fatal(err)
	}
	d.rootDigest = digest.String()
	unmount()
	dev.Detach()
	return d
}

// leftovers are the world's resources tagged with the publication.
func (e *env) leftovers(publication string) []testworld.Resource {
	e.t.Helper()
	inv, err := world.Inventory(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return inv.Leftovers(testworld.TaggedWith(TagPublication, publication))
}

// countByKind counts resources per kind and target.
func countByKind(rs []testworld.Resource) map[string]int {
	out := map[string]int{}
	for _, r := range rs {
		out[r.Account+"/"+r.Region+" "+string(r.Kind)]++
	}
	return out
}

// wantOnePerTarget fails unless every target holds exactly one stream
// volume, one snapshot and one image of the publication (and its
// parameter when asked), and nothing else of it.
func (e *env) wantOnePerTarget(pub Publication, targets []Target, images int) {
	e.t.Helper()
	got := countByKind(e.leftovers(pub.ID))
	want := map[string]int{}
	for _, t := range targets {
		want[t.Key()+" volume"] = 1
		want[t.Key()+" snapshot"] = images
		want[t.Key()+" image"] = images
		if pub.SSMParameter != nil {
			want[t.Key()+" parameter"] = 1
		}
	}
	if !maps.Equal(got, want) {
		e.t.Errorf("resources of publication %s: %v, want %v\n%v", pub.ID, got, want, e.leftovers(pub.ID))
	}
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func since(start time.Time) time.Duration { return time.Since(start).Round(time.Millisecond) }

func fmtAny(v any) string { return fmt.Sprintf("%v", v) }

// mustDial is a client of the target's daemon.
func mustDial(t testing.TB, tg Target) *client.Client {
	t.Helper()
	c, err := Dial(tg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// launchGrantsOf are an image's launch permissions as its owner sees them.
func (e *env) launchGrantsOf(tg Target, imageID string) []grant {
	e.t.Helper()
	g, err := launchGrants(e.ctx, e.ec2In(tg.AccountID, tg.Region), imageID)
	if err != nil {
		e.t.Fatal(err)
	}
	return slices.Sorted(maps.Keys(g))
}

// fileSHA256 is the hex SHA-256 of a file's bytes.
func fileSHA256(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
