package testworld

import (
	"context"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/bootdisk"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/loopdev"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/qemuboot"
)

// Every region of every account has Debian's official images and a default
// VPC with a subnet per zone, as a stock AWS region has; the images' root
// snapshots hold the boot disk's bytes.
func TestStockRegionsHaveDebianImagesAndDefaultVPC(t *testing.T) {
	loopdev.RequireRoot(t)
	ctx := context.Background()
	disk, err := bootdisk.Build(ctx, bootdisk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := startWorld(t, moto.Options{BootDisk: disk.Path})
	for _, account := range []string{moto.DefaultAccountID, "222222222222"} {
		for _, region := range []string{"us-east-1", "eu-west-1"} {
			cfg, err := w.Config(ctx, region, account)
			if err != nil {
				t.Fatal(err)
			}
			c := ec2.NewFromConfig(cfg)
			for _, arch := range []string{"amd64", "arm64"} {
				out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{
					Owners:  []string{"136693071363"},
					Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{"debian-12-" + arch + "-*"}}},
				})
				if err != nil {
					t.Fatal(err)
				}
				if len(out.Images) != 1 {
					t.Fatalf("%s/%s: %d Debian 12 %s images, want 1", account, region, len(out.Images), arch)
				}
				img := out.Images[0]
				if !aws.ToBool(img.Public) || img.State != ec2types.ImageStateAvailable || !aws.ToBool(img.EnaSupport) ||
					aws.ToString(img.RootDeviceName) != "/dev/xvda" || img.ImdsSupport != ec2types.ImdsSupportValuesV20 {
					t.Errorf("%s/%s: Debian image %s: public %v state %s ENA %v root %s IMDS %s", account, region,
						aws.ToString(img.Name), aws.ToBool(img.Public), img.State, aws.ToBool(img.EnaSupport), aws.ToString(img.RootDeviceName), img.ImdsSupport)
				}
				if arch == "amd64" {
					if img.Architecture != ec2types.ArchitectureValuesX8664 || img.BootMode != ec2types.BootModeValuesUefiPreferred {
						t.Errorf("amd64 image: architecture %s boot mode %s", img.Architecture, img.BootMode)
					}
					snap := filepath.Join(w.Moto.DataDir, "136693071363", region, "snapshots", rootSnapshot(img)+".img")
					if !sameBytes(t, snap, disk.Path) {
						t.Errorf("%s: root snapshot %s does not hold the boot disk", aws.ToString(img.Name), snap)
					}
				} else if img.Architecture != ec2types.ArchitectureValuesArm64 {
					t.Errorf("arm64 image: architecture %s", img.Architecture)
				}
			}
			vpcs, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []ec2types.Filter{{Name: aws.String("is-default"), Values: []string{"true"}}}})
			if err != nil || len(vpcs.Vpcs) != 1 {
				t.Fatalf("%s/%s: default VPCs %v, %v; want one", account, region, vpcs, err)
			}
			zones, err := c.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{})
			if err != nil {
				t.Fatal(err)
			}
			subnets, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{
				{Name: aws.String("vpc-id"), Values: []string{aws.ToString(vpcs.Vpcs[0].VpcId)}},
				{Name: aws.String("default-for-az"), Values: []string{"true"}},
			}})
			if err != nil {
				t.Fatal(err)
			}
			covered := map[string]bool{}
			for _, s := range subnets.Subnets {
				covered[aws.ToString(s.AvailabilityZone)] = true
			}
			for _, z := range zones.AvailabilityZones {
				if !covered[aws.ToString(z.ZoneName)] {
					t.Errorf("%s/%s: no default subnet in zone %s", account, region, aws.ToString(z.ZoneName))
				}
			}
		}
	}
}

// An image registered on an imported boot disk boots, from its root
// snapshot's bytes, under BIOS and UEFI (its boot mode is uefi-preferred),
// as another account that it is shared with sees it.
func TestBootImage(t *testing.T) {
	loopdev.RequireRoot(t)
	ctx := context.Background()
	disk, err := bootdisk.Build(ctx, bootdisk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := startWorld(t, moto.Options{})
	const vendor, user, region = "111122223333", "222222222222", "eu-west-1"
	snap, err := w.Moto.ImportSnapshot(ctx, region, vendor, disk.Path, "vendor root")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := w.Config(ctx, region, vendor)
	if err != nil {
		t.Fatal(err)
	}
	c := ec2.NewFromConfig(cfg)
	reg, err := c.RegisterImage(ctx, &ec2.RegisterImageInput{
		Name: aws.String("vendor-linux-1"), Architecture: ec2types.ArchitectureValuesX8664,
		VirtualizationType: aws.String("hvm"), RootDeviceName: aws.String("/dev/xvda"), EnaSupport: aws.Bool(true),
		BootMode: ec2types.BootModeValuesUefiPreferred,
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{{DeviceName: aws.String("/dev/xvda"),
			Ebs: &ec2types.EbsBlockDevice{SnapshotId: aws.String(snap), VolumeType: ec2types.VolumeTypeGp3}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: reg.ImageId,
		LaunchPermission: &ec2types.LaunchPermissionModifications{Add: []ec2types.LaunchPermission{{UserId: aws.String(user)}}}}); err != nil {
		t.Fatal(err)
	}
	booted, err := w.BootImage(ctx, region, user, aws.ToString(reg.ImageId), BootOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, fw := range []qemuboot.Firmware{qemuboot.BIOS, qemuboot.UEFI} {
		r := booted.Boots[fw]
		if r == nil {
			t.Fatalf("no %s boot of a uefi-preferred image; got %v", fw, booted.Boots)
		}
		t.Logf("%s booted with %s (%s) to %q in %s", booted.ImageID, fw, r.Accel, r.Match, r.Elapsed)
	}
	if booted.SnapshotID != snap {
		t.Errorf("booted snapshot %s, want %s", booted.SnapshotID, snap)
	}
}

// A snapshot without a bootable disk fails to boot, with the console's last
// lines in the error: BootImage passes only on the ready text.
func TestBootImageFailsOnAnEmptyDisk(t *testing.T) {
	loopdev.RequireRoot(t)
	ctx := context.Background()
	w := startWorld(t, moto.Options{})
	empty := filepath.Join(t.TempDir(), "empty.img")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(empty, 1<<30); err != nil {
		t.Fatal(err)
	}
	const region = "us-east-1"
	snap, err := w.Moto.ImportSnapshot(ctx, region, moto.DefaultAccountID, empty, "empty")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := w.Config(ctx, region, moto.DefaultAccountID)
	if err != nil {
		t.Fatal(err)
	}
	c := ec2.NewFromConfig(cfg)
	reg, err := c.RegisterImage(ctx, &ec2.RegisterImageInput{
		Name: aws.String("empty"), Architecture: ec2types.ArchitectureValuesX8664, VirtualizationType: aws.String("hvm"),
		RootDeviceName: aws.String("/dev/xvda"), BootMode: ec2types.BootModeValuesLegacyBios,
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{{DeviceName: aws.String("/dev/xvda"),
			Ebs: &ec2types.EbsBlockDevice{SnapshotId: aws.String(snap)}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.BootImage(ctx, region, moto.DefaultAccountID, aws.ToString(reg.ImageId), BootOptions{
		Boot: qemuboot.Options{Timeout: 10e9},
	})
	if err == nil {
		t.Fatal("an empty disk booted")
	}
	t.Logf("as expected: %v", err)
}

func TestFirmwaresForBootModes(t *testing.T) {
	for _, c := range []struct {
		mode ec2types.BootModeValues
		only qemuboot.Firmware
		want []qemuboot.Firmware
		ok   bool
	}{
		{ec2types.BootModeValuesLegacyBios, "", []qemuboot.Firmware{qemuboot.BIOS}, true},
		{ec2types.BootModeValuesUefi, "", []qemuboot.Firmware{qemuboot.UEFI}, true},
		{ec2types.BootModeValuesUefiPreferred, "", []qemuboot.Firmware{qemuboot.BIOS, qemuboot.UEFI}, true},
		{"", "", []qemuboot.Firmware{qemuboot.BIOS, qemuboot.UEFI}, true},
		{ec2types.BootModeValuesUefiPreferred, qemuboot.UEFI, []qemuboot.Firmware{qemuboot.UEFI}, true},
		{ec2types.BootModeValuesLegacyBios, qemuboot.UEFI, nil, false},
		{"pxe", "", nil, false},
	} {
		got, err := firmwaresFor(c.mode, c.only)
		if (err == nil) != c.ok || len(got) != len(c.want) {
			t.Errorf("firmwaresFor(%q, %q) = %v, %v; want %v (ok %v)", c.mode, c.only, got, err, c.want, c.ok)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("firmwaresFor(%q, %q) = %v, want %v", c.mode, c.only, got, c.want)
			}
		}
	}
}

// sameBytes reports whether two files hold the same bytes.
func sameBytes(t *testing.T, a, b string) bool {
	t.Helper()
	return fileHash(t, a) == fileHash(t, b)
}

func fileHash(t *testing.T, path string) [32]byte {
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
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}
