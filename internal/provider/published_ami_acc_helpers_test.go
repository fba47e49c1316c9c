package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/autoami/terraform-provider-autoami/internal/awsclient"
	"github.com/autoami/terraform-provider-autoami/internal/publisher"
	"github.com/autoami/terraform-provider-autoami/internal/testworld"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/loopdev"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/qemuboot"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/devices"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpackerinstance"
)

// The autoami_published_ami acceptance tests publish through launched
// unpackers (see unpacker_acc_helpers_test.go) into the provider's own
// account (123456789012) and another one (222222222222, through the
// unpackers' role) in us-east-1 and eu-west-1. Every (account, region) gets
// a customer managed default EBS key, as AMIs encrypted with the AWS
// managed key cannot be shared; the AMIs are shared with a consumer account
// and the organization of all three.

const (
	// pubOwnAccount is the provider's own account in the test world.
	pubOwnAccount = moto.DefaultAccountID
	// pubConsumer is who the AMIs are shared with.
	pubConsumer = "444444444444"
	// pubOrgARN is the organization of the two target accounts and the consumer.
	pubOrgARN = "arn:aws:organizations::123456789012:organization/o-autoamiacc1"
	// pubAddr is the published AMI of every test configuration.
	pubAddr = "autoami_published_ami.web"
	// pubStreamAddr is its image stream.
	pubStreamAddr = "autoami_image_stream.web"
	// pubStreamName is the stream's name, and so the published AMI's ID.
	pubStreamName = "web/boot"
	// pubParameter is the SSM parameter the publications write.
	pubParameter = "/autoami/web/boot/image-id"
	// pubImageDataType is the data type of an SSM parameter holding an AMI ID.
	pubImageDataType = "aws:ec2:image"
)

// pubTarget is one (account, region) a test publishes to, through an
// autoami_unpacker of its own.
type pubTarget struct{ account, region string }

// The four targets: own and other account, each in both regions.
var (
	pubOwnEast   = pubTarget{pubOwnAccount, "us-east-1"}
	pubOwnWest   = pubTarget{pubOwnAccount, "eu-west-1"}
	pubOtherEast = pubTarget{unpackerOtherAccount, "us-east-1"}
	pubOtherWest = pubTarget{unpackerOtherAccount, "eu-west-1"}
)

// pubFourTargets are every target, in the order of the configuration's
// targets list.
var pubFourTargets = []pubTarget{pubOwnEast, pubOwnWest, pubOtherEast, pubOtherWest}

// key is the target's key in `amis`: "ACCOUNT_ID/REGION".
func (p pubTarget) key() string { return p.account + "/" + p.region }

func (p pubTarget) String() string { return p.key() }

// role is the unpacker's role_arn: none in the provider's own account.
func (p pubTarget) role() string {
	if p.account == pubOwnAccount {
		return ""
	}
	return "arn:aws:iam::" + p.account + ":role/autoami-unpacker"
}

// unpacker is the name of the target's autoami_unpacker resource.
func (p pubTarget) unpacker() string {
	who := "own"
	if p.account != pubOwnAccount {
		who = "other"
	}
	return who + "_" + strings.ReplaceAll(p.region, "-", "_")
}

// awsTarget is how the provider reaches the target's account and region.
func (p pubTarget) awsTarget() awsclient.Target {
	return awsclient.Target{RoleARN: p.role(), Region: p.region}
}

// pubWorld is one published AMI test: its targets, the unpacker binary,
// and the default EBS keys its PreCheck made.
type pubWorld struct {
	t       *testing.T
	binary  string
	targets []pubTarget

	mu sync.Mutex
	// keys are the targets' default EBS key ARNs, by target key.
	keys map[string]string
}

// newPubWorld is the start of every published AMI acceptance test: as the
// unpacker tests' setup (TF_ACC, root, the binary, fast waits), with the
// publisher's waits fast too, and a stream cache of the test's own.
// Call it before building trees or disks: they are cached elsewhere.
func newPubWorld(t *testing.T, targets ...pubTarget) *pubWorld {
	t.Helper()
	binary := testAccUnpackerSetup(t)
	setPublisherTestPolling(t)
	return &pubWorld{t: t, binary: binary, targets: targets, keys: map[string]string{}}
}

// preCheck resets the world (PreCheck of the test case): the content
// store, a customer managed default EBS key in every target, the
// organization, and images and snapshots that stay pending for a moment
// (so the waits are exercised).
func (w *pubWorld) preCheck() {
	w.t.Helper()
	testAccUnpackerPreCheck(w.t)
	ctx := context.Background()
	for _, tg := range w.targets {
		c := testAccClients(w.t, tg.awsTarget())
		k, err := c.KMS.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("autoami acceptance test default EBS key")})
		if err != nil {
			w.t.Fatalf("CreateKey in %s: %v", tg, err)
		}
		arn := aws.ToString(k.KeyMetadata.Arn)
		if _, err := c.EC2.ModifyEbsDefaultKmsKeyId(ctx, &ec2.ModifyEbsDefaultKmsKeyIdInput{KmsKeyId: aws.String(arn)}); err != nil {
			w.t.Fatalf("ModifyEbsDefaultKmsKeyId in %s: %v", tg, err)
		}
		w.mu.Lock()
		w.keys[tg.key()] = arn
		w.mu.Unlock()
	}
	if err := testAccWorld.Moto.SetOrganizations(ctx, moto.Organization{ARN: pubOrgARN,
		Accounts: []string{unpackerOtherAccount, pubConsumer}}); err != nil {
		w.t.Fatal(err)
	}
	if err := testAccWorld.Moto.SetPending(ctx, moto.Pending{Image: 300 * time.Millisecond, Snapshot: 300 * time.Millisecond}); err != nil {
		w.t.Fatal(err)
	}
}

// pubConfig is one configuration of a published AMI test.
type pubConfig struct {
	// provider is extra provider arguments (default_tags).
	provider string
	// stream is the image stream's source, e.g. `root_filesystem = { directory = "…" }`.
	stream string
	// published holds the published AMI's arguments besides image_stream,
	// revision and targets; "-" leaves the published AMI out.
	published string
	// targets are the published AMI's targets; nil means all of the world's
	// (every target's unpacker is in the configuration either way).
	targets []pubTarget
	// extra is more HCL (a policy).
	extra string
}

// treeSource is an image stream source of a root file system directory.
func treeSource(dir string) string { return fmt.Sprintf("root_filesystem = { directory = %q }", dir) }

// rawSource is an image stream source of a raw disk image.
func rawSource(path string) string { return fmt.Sprintf("raw_image = { path = %q }", path) }

// pubSharedArgs are the published AMI's arguments of the tests that check
// everything: a description, sharing with the consumer and the
// organization, the SSM parameter, tags.
const pubSharedArgs = `
  description       = "autoami acceptance test image"
  launch_permission = {
    account_ids       = ["444444444444"]
    organization_arns = ["arn:aws:organizations::123456789012:organization/o-autoamiacc1"]
  }
  ssm_parameter = { name = "/autoami/web/boot/image-id" }
  tags          = { team = "web" }
`

// config renders c: the provider, one unpacker per target of the world,
// the stream, and the published AMI.
func (w *pubWorld) config(c pubConfig) string {
	var b strings.Builder
	fmt.Fprintf(&b, `
provider "autoami" {
  region        = %q
  content_store = { bucket = %q, prefix = "store/" }
%s
}
`, testAccRegion, testBucket, c.provider)
	for _, tg := range w.targets {
		fmt.Fprintf(&b, `
resource "autoami_unpacker" %q {
  region          = %q
`, tg.unpacker(), tg.region)
		if tg.role() != "" {
			fmt.Fprintf(&b, "  role_arn        = %q\n", tg.role())
		}
		fmt.Fprintf(&b, `  allowed_cidrs   = ["127.0.0.0/8"]
  unpacker_binary = %q
}
`, w.binary)
	}
	fmt.Fprintf(&b, `
resource "autoami_image_stream" "web" {
  name = %q
  %s
}
`, pubStreamName, c.stream)
	if c.published != "-" {
		targets := c.targets
		if targets == nil {
			targets = w.targets
		}
		var refs []string
		for _, tg := range targets {
			refs = append(refs, "autoami_unpacker."+tg.unpacker()+".target")
		}
		fmt.Fprintf(&b, `
resource "autoami_published_ami" "web" {
  image_stream = autoami_image_stream.web.id
  revision     = autoami_image_stream.web.revision
  targets      = [%s]
%s
}
`, strings.Join(refs, ", "), c.published)
	}
	b.WriteString(c.extra)
	return b.String()
}

// pubAMI is one entry of the published AMI's `amis` map.
type pubAMI struct {
	ImageID, SnapshotID, Name, CreatedAt string
}

// pubAMIs reads `amis` from the state, by target key.
func pubAMIs(s *terraform.State) (map[string]pubAMI, error) {
	a, err := attrs(s, pubAddr)
	if err != nil {
		return nil, err
	}
	out := map[string]pubAMI{}
	for k, v := range a {
		rest, ok := strings.CutPrefix(k, "amis.")
		if !ok || rest == "%" {
			continue
		}
		i := strings.LastIndex(rest, ".")
		if i < 0 {
			continue
		}
		key, field := rest[:i], rest[i+1:]
		e := out[key]
		switch field {
		case "image_id":
			e.ImageID = v
		case "snapshot_id":
			e.SnapshotID = v
		case "name":
			e.Name = v
		case "created_at":
			e.CreatedAt = v
		}
		out[key] = e
	}
	return out, nil
}

// remember keeps the state's `amis` in *into (for PreConfig steps and
// later checks).
func (w *pubWorld) remember(into *map[string]pubAMI) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		amis, err := pubAMIs(s)
		if err != nil {
			return err
		}
		*into = amis
		return nil
	}
}

// forEachTarget runs check on every target (of targets, or of the world
// when none are given) and joins the failures.
func (w *pubWorld) forEachTarget(targets []pubTarget, check func(s *terraform.State, tg pubTarget, ami pubAMI) error) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		if targets == nil {
			targets = w.targets
		}
		amis, err := pubAMIs(s)
		if err != nil {
			return err
		}
		var problems []string
		for _, tg := range targets {
			ami, ok := amis[tg.key()]
			if !ok || ami.ImageID == "" {
				problems = append(problems, fmt.Sprintf("%s: no entry in amis (%v)", tg, slices.Sorted(maps.Keys(amis))))
				continue
			}
			if err := check(s, tg, ami); err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", tg, err))
			}
		}
		if len(problems) > 0 {
			return fmt.Errorf("%s", strings.Join(problems, "\n"))
		}
		return nil
	}
}

// pubWant is what the AMIs should be.
type pubWant struct {
	// revision is the stream revision the AMIs hold ("" means the stream's
	// in the state).
	revision    string
	description string
	bootMode    string
	imds        string
	tpm         string
	volumeType  string
	// volumeSize is the root volume's GiB; 0 means the snapshot's size.
	volumeSize int32
	// protected is deregistration protection.
	protected bool
	// deprecation is the DeprecationTime ("" means none).
	deprecation string
	// tags are tags besides autoami's.
	tags map[string]string
}

// pubDefaults are the registration defaults of the resource.
func pubDefaults() pubWant {
	return pubWant{bootMode: "uefi-preferred", imds: "v2.0", volumeType: "gp3"}
}

// image describes an AMI as account sees it in region.
func pubImage(ctx context.Context, account, region, id string) (ec2types.Image, error) {
	cfg, err := testAccWorld.Config(ctx, region, account)
	if err != nil {
		return ec2types.Image{}, err
	}
	out, err := ec2.NewFromConfig(cfg).DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil {
		return ec2types.Image{}, fmt.Errorf("DescribeImages %s as %s in %s: %w", id, account, region, err)
	}
	if len(out.Images) != 1 {
		return ec2types.Image{}, fmt.Errorf("image %s is not visible to %s in %s", id, account, region)
	}
	return out.Images[0], nil
}

// pubEC2 is an EC2 client acting as the target's account in its region.
func pubEC2(ctx context.Context, tg pubTarget) (*ec2.Client, error) {
	cfg, err := testAccWorld.Config(ctx, tg.region, tg.account)
	if err != nil {
		return nil, err
	}
	return ec2.NewFromConfig(cfg), nil
}

func pubTags(tags []ec2types.Tag) map[string]string {
	out := map[string]string{}
	for _, t := range tags {
		out[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return out
}

// checkAMIs: every target's AMI is available with the asked attributes,
// named as `amis` says, its root the snapshot `amis` says, encrypted with
// the target's default EBS key, and tagged.
func (w *pubWorld) checkAMIs(want pubWant) resource.TestCheckFunc {
	return w.forEachTarget(nil, func(s *terraform.State, tg pubTarget, ami pubAMI) error {
		ctx := context.Background()
		revision := want.revision
		if revision == "" {
			a, err := attrs(s, pubStreamAddr)
			if err != nil {
				return err
			}
			revision = a["revision"]
		}
		img, err := pubImage(ctx, tg.account, tg.region, ami.ImageID)
		if err != nil {
			return err
		}
		var problems []string
		eq := func(what string, got, want any) {
			if got != want {
				problems = append(problems, fmt.Sprintf("%s %v, want %v", what, got, want))
			}
		}
		eq("state", img.State, ec2types.ImageStateAvailable)
		eq("owner", aws.ToString(img.OwnerId), tg.account)
		eq("name", aws.ToString(img.Name), ami.Name)
		eq("description", aws.ToString(img.Description), want.description)
		eq("architecture", string(img.Architecture), "x86_64")
		eq("boot mode", string(img.BootMode), want.bootMode)
		eq("ENA", aws.ToBool(img.EnaSupport), true)
		eq("IMDS support", string(img.ImdsSupport), want.imds)
		eq("TPM support", string(img.TpmSupport), want.tpm)
		eq("virtualization", string(img.VirtualizationType), "hvm")
		eq("deregistration protection", strings.HasPrefix(aws.ToString(img.DeregistrationProtection), "enabled"), want.protected)
		eq("deprecation time", aws.ToString(img.DeprecationTime), want.deprecation)
		if _, err := time.Parse(time.RFC3339, ami.CreatedAt); err != nil {
			problems = append(problems, fmt.Sprintf("created_at %q is not RFC 3339", ami.CreatedAt))
		}
		if wantPrefix := pubStreamName + "-" + revision[:12] + "-"; !strings.HasPrefix(ami.Name, wantPrefix) {
			problems = append(problems, fmt.Sprintf("name %q, want it to start with %q", ami.Name, wantPrefix))
		}
		if len(img.BlockDeviceMappings) != 1 || img.BlockDeviceMappings[0].Ebs == nil {
			problems = append(problems, fmt.Sprintf("block devices %+v, want one EBS root", img.BlockDeviceMappings))
		} else {
			ebsRoot := img.BlockDeviceMappings[0].Ebs
			eq("root snapshot", aws.ToString(ebsRoot.SnapshotId), ami.SnapshotID)
			eq("root encrypted", aws.ToBool(ebsRoot.Encrypted), true)
			eq("root volume type", string(ebsRoot.VolumeType), want.volumeType)
			if want.volumeSize != 0 {
				eq("root volume size", aws.ToInt32(ebsRoot.VolumeSize), want.volumeSize)
			}
		}
		tags := pubTags(img.Tags)
		wantTags := map[string]string{publisher.TagStream: pubStreamName, publisher.TagRevision: revision,
			publisher.TagPublication: pubStreamName, publisher.TagTarget: tg.key()}
		maps.Copy(wantTags, want.tags)
		for k, v := range wantTags {
			eq("tag "+k, tags[k], v)
		}
		c, err := pubEC2(ctx, tg)
		if err != nil {
			return err
		}
		snaps, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{ami.SnapshotID}})
		if err != nil || len(snaps.Snapshots) != 1 {
			return fmt.Errorf("snapshot %s: %v", ami.SnapshotID, err)
		}
		snap := snaps.Snapshots[0]
		w.mu.Lock()
		key := w.keys[tg.key()]
		w.mu.Unlock()
		eq("snapshot encrypted", aws.ToBool(snap.Encrypted), true)
		eq("snapshot KMS key (the target's default EBS key)", aws.ToString(snap.KmsKeyId), key)
		if len(problems) > 0 {
			return fmt.Errorf("image %s:\n  %s", ami.ImageID, strings.Join(problems, "\n  "))
		}
		return nil
	})
}

// checkShared: every AMI may be launched by the consumer and the
// organization and nobody else (the consumer sees it), and the consumer
// may create volumes from its snapshot. With no consumer, shared with
// nobody.
func (w *pubWorld) checkShared(shared bool) resource.TestCheckFunc {
	return w.forEachTarget(nil, func(_ *terraform.State, tg pubTarget, ami pubAMI) error {
		ctx := context.Background()
		got, err := pubLaunchGrants(ctx, tg, ami.ImageID)
		if err != nil {
			return err
		}
		var want []string
		var wantVolume []string
		if shared {
			want = []string{"account:" + pubConsumer, "organization:" + pubOrgARN}
			wantVolume = []string{pubConsumer}
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("launch permissions of %s: %v, want %v", ami.ImageID, got, want)
		}
		c, err := pubEC2(ctx, tg)
		if err != nil {
			return err
		}
		perms, err := c.DescribeSnapshotAttribute(ctx, &ec2.DescribeSnapshotAttributeInput{
			SnapshotId: aws.String(ami.SnapshotID), Attribute: ec2types.SnapshotAttributeNameCreateVolumePermission})
		if err != nil {
			return err
		}
		var gotVolume []string
		for _, p := range perms.CreateVolumePermissions {
			if p.Group != "" {
				gotVolume = append(gotVolume, "group:"+string(p.Group))
			} else {
				gotVolume = append(gotVolume, aws.ToString(p.UserId))
			}
		}
		if !slices.Equal(gotVolume, wantVolume) {
			return fmt.Errorf("createVolumePermission of %s: %v, want %v", ami.SnapshotID, gotVolume, wantVolume)
		}
		if shared {
			img, err := pubImage(ctx, pubConsumer, tg.region, ami.ImageID)
			if err != nil {
				return fmt.Errorf("the consumer: %w", err)
			}
			if aws.ToString(img.OwnerId) != tg.account {
				return fmt.Errorf("the consumer sees %s owned by %s", ami.ImageID, aws.ToString(img.OwnerId))
			}
		}
		return nil
	})
}

// pubLaunchGrants are an AMI's launch permissions as its owner sees them,
// sorted: "account:ID", "organization:ARN", "ou:ARN", "group:all".
func pubLaunchGrants(ctx context.Context, tg pubTarget, imageID string) ([]string, error) {
	c, err := pubEC2(ctx, tg)
	if err != nil {
		return nil, err
	}
	out, err := c.DescribeImageAttribute(ctx, &ec2.DescribeImageAttributeInput{ImageId: aws.String(imageID),
		Attribute: ec2types.ImageAttributeNameLaunchPermission})
	if err != nil {
		return nil, fmt.Errorf("launch permissions of %s: %w", imageID, err)
	}
	var got []string
	for _, p := range out.LaunchPermissions {
		switch {
		case p.UserId != nil:
			got = append(got, "account:"+aws.ToString(p.UserId))
		case p.OrganizationArn != nil:
			got = append(got, "organization:"+aws.ToString(p.OrganizationArn))
		case p.OrganizationalUnitArn != nil:
			got = append(got, "ou:"+aws.ToString(p.OrganizationalUnitArn))
		case p.Group != "":
			got = append(got, "group:"+string(p.Group))
		}
	}
	sort.Strings(got)
	return got, nil
}

// pubSSM is an SSM client acting as the target's account in its region.
func pubSSM(ctx context.Context, tg pubTarget) (*ssm.Client, error) {
	cfg, err := testAccWorld.Config(ctx, tg.region, tg.account)
	if err != nil {
		return nil, err
	}
	return ssm.NewFromConfig(cfg), nil
}

// pubParameterValue is the SSM parameter's value in the target; ok is false
// when it does not exist.
func pubParameterValue(ctx context.Context, tg pubTarget, name string) (value, dataType string, ok bool, err error) {
	c, err := pubSSM(ctx, tg)
	if err != nil {
		return "", "", false, err
	}
	out, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	var apiErr smithy.APIError
	if err != nil && errors.As(err, &apiErr) && apiErr.ErrorCode() == "ParameterNotFound" {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("GetParameter %s in %s: %w", name, tg, err)
	}
	return aws.ToString(out.Parameter.Value), aws.ToString(out.Parameter.DataType), true, nil
}

// checkParameter: the SSM parameter holds the target's AMI ID in every
// target, with the AMI data type.
func (w *pubWorld) checkParameter(name string) resource.TestCheckFunc {
	return w.forEachTarget(nil, func(_ *terraform.State, tg pubTarget, ami pubAMI) error {
		v, dt, ok, err := pubParameterValue(context.Background(), tg, name)
		if err != nil {
			return err
		}
		if !ok || v != ami.ImageID || dt != pubImageDataType {
			return fmt.Errorf("SSM parameter %s = %q (exists %v, data type %q), want %s of type %s", name, v, ok, dt, ami.ImageID, pubImageDataType)
		}
		return nil
	})
}

// checkBoots boots the target's AMI under qemu with firmware, from its
// root snapshot's bytes, and logs how long it took.
func (w *pubWorld) checkBoots(tg pubTarget, firmware qemuboot.Firmware) resource.TestCheckFunc {
	return w.forEachTarget([]pubTarget{tg}, func(_ *terraform.State, tg pubTarget, ami pubAMI) error {
		start := time.Now()
		booted, err := testAccWorld.BootImage(context.Background(), tg.region, tg.account, ami.ImageID, testworld.BootOptions{Firmware: firmware})
		if err != nil {
			return fmt.Errorf("boot %s: %w", ami.ImageID, err)
		}
		if booted.Boots[firmware] == nil {
			return fmt.Errorf("boot %s: no %s boot", ami.ImageID, firmware)
		}
		w.t.Logf("%s: %s booted under %s in %s", tg, ami.ImageID, firmware, time.Since(start).Round(time.Millisecond))
		return nil
	})
}

// checkSameFiles: every target's root file system holds exactly the
// stream revision's files (the manifest of the mounted root partition is
// the revision), so all targets hold the same files, and their BIOS boot
// and EFI system partitions are byte-identical.
func (w *pubWorld) checkSameFiles() resource.TestCheckFunc {
	var first *pubDisk
	var firstTarget pubTarget
	return w.forEachTarget(nil, func(s *terraform.State, tg pubTarget, ami pubAMI) error {
		a, err := attrs(s, pubStreamAddr)
		if err != nil {
			return err
		}
		d, err := w.readDisk(tg, ami.SnapshotID)
		if err != nil {
			return err
		}
		w.t.Logf("%s: root file system of %s is %.12s; boot partitions %.12s %.12s", tg, ami.SnapshotID, d.rootDigest, d.bootHashes[0], d.bootHashes[1])
		if d.rootDigest != a["revision"] {
			return fmt.Errorf("the root file system of %s has manifest %s, want the revision %s", ami.SnapshotID, d.rootDigest, a["revision"])
		}
		if first == nil {
			first, firstTarget = &d, tg
		} else if d.bootHashes != first.bootHashes {
			return fmt.Errorf("the boot partitions of %s (%.12s, %.12s) differ from %s's (%.12s, %.12s)", ami.SnapshotID,
				d.bootHashes[0], d.bootHashes[1], firstTarget, first.bootHashes[0], first.bootHashes[1])
		}
		return nil
	})
}

// pubDisk is what a root snapshot holds: its root file system's manifest
// digest and the SHA-256 of the BIOS boot and EFI system partitions.
type pubDisk struct {
	rootDigest string
	bootHashes [2]string
}

// readDisk looks into a copy of a snapshot's bytes (the world's file is
// never written): partitions 1 and 2 hashed, partition 3 mounted and read
// as a manifest, lost+found left out as mkfs makes it.
func (w *pubWorld) readDisk(tg pubTarget, snapshotID string) (pubDisk, error) {
	ctx := context.Background()
	src := moto.SnapshotFile(testAccWorld.Moto.DataDir, tg.account, tg.region, snapshotID)
	cp := filepath.Join(w.t.TempDir(), snapshotID+".img")
	if out, err := exec.Command("cp", "--sparse=always", src, cp).CombinedOutput(); err != nil {
		return pubDisk{}, fmt.Errorf("copy %s: %v: %s", src, err, out)
	}
	defer os.Remove(cp)
	dev := loopdev.Attach(w.t, cp)
	defer dev.Detach()
	nodes, err := devices.EnsurePartitionNodes(ctx, dev.Path)
	if err != nil || len(nodes) != 3 {
		return pubDisk{}, fmt.Errorf("partitions of snapshot %s: %v %v, want 3", snapshotID, nodes, err)
	}
	var d pubDisk
	for i, part := range nodes[:2] {
		f, err := os.Open(part)
		if err != nil {
			return pubDisk{}, err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return pubDisk{}, err
		}
		d.bootHashes[i] = hex.EncodeToString(h.Sum(nil))
	}
	dir, unmount := loopdev.Mount(w.t, nodes[2], "ext4")
	defer unmount()
	m, err := manifest.FromDirectory(ctx, dir, manifest.DirOptions{Exclude: []string{"lost+found"}})
	if err != nil {
		return pubDisk{}, err
	}
	digest, err := m.Digest()
	if err != nil {
		return pubDisk{}, err
	}
	d.rootDigest = digest.String()
	return d, nil
}

// pubChangedBlocks counts the 512 KiB blocks in which snapshot second
// differs from first (EBS direct ListChangedBlocks, as the owner).
func pubChangedBlocks(ctx context.Context, tg pubTarget, first, second string) (int, error) {
	cfg, err := testAccWorld.Config(ctx, tg.region, tg.account)
	if err != nil {
		return 0, err
	}
	n := 0
	p := ebs.NewListChangedBlocksPaginator(ebs.NewFromConfig(cfg), &ebs.ListChangedBlocksInput{
		FirstSnapshotId: aws.String(first), SecondSnapshotId: aws.String(second), MaxResults: aws.Int32(1000)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return 0, fmt.Errorf("ListChangedBlocks %s → %s in %s: %w", first, second, tg, err)
		}
		n += len(page.ChangedBlocks)
	}
	return n, nil
}

// checkChangedBlocks: every target's new snapshot differs from the one in
// *before in 1 to max blocks of 512 KiB, and its AMI is a new one.
func (w *pubWorld) checkChangedBlocks(before *map[string]pubAMI, max int) resource.TestCheckFunc {
	return w.forEachTarget(nil, func(_ *terraform.State, tg pubTarget, ami pubAMI) error {
		prev, ok := (*before)[tg.key()]
		if !ok {
			return fmt.Errorf("no earlier AMI to compare with")
		}
		if prev.ImageID == ami.ImageID || prev.SnapshotID == ami.SnapshotID {
			return fmt.Errorf("amis entry %+v is the earlier one's", ami)
		}
		n, err := pubChangedBlocks(context.Background(), tg, prev.SnapshotID, ami.SnapshotID)
		if err != nil {
			return err
		}
		if n == 0 || n > max {
			return fmt.Errorf("snapshot %s differs from %s in %d blocks of 512 KiB, want 1 to %d", ami.SnapshotID, prev.SnapshotID, n, max)
		}
		w.t.Logf("%s: snapshot %s differs from %s in %d blocks of 512 KiB", tg, ami.SnapshotID, prev.SnapshotID, n)
		return nil
	})
}

// checkStillRegistered: the AMIs in *before are still available.
func (w *pubWorld) checkStillRegistered(before *map[string]pubAMI) resource.TestCheckFunc {
	return func(*terraform.State) error {
		for _, tg := range w.targets {
			prev := (*before)[tg.key()]
			img, err := pubImage(context.Background(), tg.account, tg.region, prev.ImageID)
			if err != nil {
				return fmt.Errorf("%s: the earlier AMI: %w", tg, err)
			}
			if img.State != ec2types.ImageStateAvailable {
				return fmt.Errorf("%s: the earlier AMI %s is %s", tg, prev.ImageID, img.State)
			}
		}
		return nil
	}
}

// checkSameAMIs: `amis` holds the image IDs of *before (nothing
// republished).
func (w *pubWorld) checkSameAMIs(before *map[string]pubAMI) resource.TestCheckFunc {
	return w.forEachTarget(nil, func(_ *terraform.State, tg pubTarget, ami pubAMI) error {
		if prev := (*before)[tg.key()]; prev.ImageID != ami.ImageID || prev.SnapshotID != ami.SnapshotID {
			return fmt.Errorf("amis entry %+v, want the earlier %+v", ami, prev)
		}
		return nil
	})
}

// checkFetched: each target's unpacker fetched exactly objects objects of
// bytes bytes in its last unpack (the daemon's own progress).
func (w *pubWorld) checkFetched(objects, bytes int64) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		var problems []string
		for _, tg := range w.targets {
			target, err := unpackerTarget(s, "autoami_unpacker."+tg.unpacker())
			if err != nil {
				return err
			}
			c, err := publisher.Dial(publisher.Target{AccountID: tg.account, Region: tg.region, RoleARN: target.RoleARN,
				InstanceID: target.InstanceID, Endpoint: target.Endpoint, ServerCertificateFingerprint: target.ServerCertificateFingerprint,
				ClientCertificatePEM: target.ClientCertificatePEM, ClientKeyPEM: target.ClientPrivateKeyPEM})
			if err != nil {
				return err
			}
			st, err := c.Status(context.Background())
			if err != nil {
				return fmt.Errorf("%s: status of the unpacker: %w", tg, err)
			}
			if len(st.Streams) != 1 || st.Streams[0].Progress == nil {
				problems = append(problems, fmt.Sprintf("%s: the unpacker's streams %+v, want one with progress", tg, st.Streams))
				continue
			}
			p := st.Streams[0].Progress
			if p.ObjectsTotal != objects || p.BytesTotal != bytes {
				problems = append(problems, fmt.Sprintf("%s: the last unpack fetched %d objects of %d bytes, want %d of %d", tg, p.ObjectsTotal, p.BytesTotal, objects, bytes))
			}
		}
		if len(problems) > 0 {
			return fmt.Errorf("%s", strings.Join(problems, "\n"))
		}
		return nil
	}
}

// checkNothingLeft is the CheckDestroy of the published AMI tests: nothing
// the publication or the unpackers made is left in any account or region
// (no volume, snapshot, image or parameter tagged with the publication, no
// instance), and no target holds the SSM parameter.
func (w *pubWorld) checkNothingLeft(s *terraform.State) error {
	ctx := context.Background()
	inv, err := testAccWorld.Inventory(ctx)
	if err != nil {
		return err
	}
	if left := inv.Leftovers(testworld.TaggedWith(publisher.TagPublication, "")); len(left) > 0 {
		return fmt.Errorf("left behind by the publication: %v", left)
	}
	if left := inv.Leftovers(testworld.TaggedWith(publisher.TagStream, "")); len(left) > 0 {
		return fmt.Errorf("left behind of the stream: %v", left)
	}
	if left := inv.Leftovers(testworld.TaggedWith(unpackerinstance.TagTarget, "")); len(left) > 0 {
		return fmt.Errorf("left behind by the unpackers: %v", left)
	}
	for _, r := range inv.Leftovers(nil) {
		if r.Kind != moto.KindInstance && r.Kind != moto.KindVolume {
			if _, ok := r.Tags[publisher.TagPublication]; ok || strings.HasPrefix(r.ID, "/autoami/web") {
				return fmt.Errorf("left behind: %v", r)
			}
		}
	}
	for _, tg := range w.targets {
		if v, _, ok, err := pubParameterValue(ctx, tg, pubParameter); err != nil || ok {
			return fmt.Errorf("%s: SSM parameter %s still holds %q after destroy (%v)", tg, pubParameter, v, err)
		}
	}
	return nil
}

// leftovers lists what the inventory holds of the publication.
func pubLeftovers(ctx context.Context) ([]testworld.Resource, error) {
	inv, err := testAccWorld.Inventory(ctx)
	if err != nil {
		return nil, err
	}
	return inv.Leftovers(testworld.TaggedWith(publisher.TagPublication, pubStreamName)), nil
}

// pubCountByKind counts the publication's resources per target and kind
// ("123456789012/us-east-1 image").
func pubCountByKind(ctx context.Context) (map[string]int, error) {
	left, err := pubLeftovers(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, r := range left {
		out[r.Account+"/"+r.Region+" "+string(r.Kind)]++
	}
	return out, nil
}

// checkInventory: the publication holds, in every target of the world,
// one stream volume (unless raw), images AMIs with their snapshots, and
// its parameter when asked, and nothing else.
func (w *pubWorld) checkInventory(images int, volume, parameter bool) resource.TestCheckFunc {
	return func(*terraform.State) error {
		got, err := pubCountByKind(context.Background())
		if err != nil {
			return err
		}
		want := map[string]int{}
		for _, tg := range w.targets {
			if volume {
				want[tg.key()+" volume"] = 1
			}
			want[tg.key()+" snapshot"] = images
			want[tg.key()+" image"] = images
			if parameter {
				want[tg.key()+" parameter"] = 1
			}
		}
		if !maps.Equal(got, want) {
			return fmt.Errorf("resources of the publication: %v, want %v", got, want)
		}
		return nil
	}
}

// pubDeregister deregisters an AMI out of band, lifting deregistration
// protection first, and with deleteSnapshot deletes its snapshot too (as
// an operator cleaning up would).
func pubDeregister(t *testing.T, tg pubTarget, ami pubAMI, deleteSnapshot bool) {
	t.Helper()
	ctx := context.Background()
	c, err := pubEC2(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.DisableImageDeregistrationProtection(ctx, &ec2.DisableImageDeregistrationProtectionInput{ImageId: aws.String(ami.ImageID)})
	if _, err := c.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(ami.ImageID)}); err != nil {
		t.Fatalf("deregister %s in %s: %v", ami.ImageID, tg, err)
	}
	if !deleteSnapshot {
		return
	}
	if _, err := c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(ami.SnapshotID)}); err != nil {
		t.Fatalf("delete snapshot %s in %s: %v", ami.SnapshotID, tg, err)
	}
}

// setPublisherTestPolling makes the publisher's waits fast against the
// local AWS, where images and snapshots are ready in a few hundred
// milliseconds.
func setPublisherTestPolling(t *testing.T) {
	savedPolling, savedTimeouts := publishedAMIPolling, publishedAMITimeouts
	publishedAMIPolling = publisher.Polling{MinDelay: 20 * time.Millisecond, MaxDelay: 250 * time.Millisecond, ImageObservations: 3}
	// Bounded so a wait that never ends fails the test in minutes, not hours.
	publishedAMITimeouts = publisher.Timeouts{Volume: time.Minute, Unpack: 5 * time.Minute, Snapshot: 2 * time.Minute,
		Image: 2 * time.Minute, SSMParameter: 10 * time.Second}
	t.Cleanup(func() { publishedAMIPolling, publishedAMITimeouts = savedPolling, savedTimeouts })
}
