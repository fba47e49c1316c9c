package moto

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// ssmAs is an SSM client acting as account in region.
func ssmAs(t *testing.T, ctx context.Context, account, region string) *ssm.Client {
	t.Helper()
	cfg, err := AccountConfig(ctx, world.URL, region, account)
	if err != nil {
		t.Fatal(err)
	}
	return ssm.NewFromConfig(cfg)
}

// registerOn registers an arm64 image named name whose devices are the
// snapshots given, the first one the root.
func registerOn(t *testing.T, ctx context.Context, c *ec2.Client, name string, snapshotIDs ...string) string {
	t.Helper()
	var mappings []types.BlockDeviceMapping
	for i, id := range snapshotIDs {
		mappings = append(mappings, types.BlockDeviceMapping{
			DeviceName: aws.String("/dev/xvd" + string(rune('a'+i))),
			Ebs:        &types.EbsBlockDevice{SnapshotId: aws.String(id)},
		})
	}
	out, err := c.RegisterImage(ctx, &ec2.RegisterImageInput{
		Name: aws.String(name), Architecture: types.ArchitectureValuesArm64, VirtualizationType: aws.String("hvm"),
		RootDeviceName: aws.String("/dev/xvda"), BlockDeviceMappings: mappings,
	})
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	return aws.ToString(out.ImageId)
}

func snapshotExists(t *testing.T, ctx context.Context, c *ec2.Client, id string) bool {
	t.Helper()
	out, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range out.Snapshots {
		if aws.ToString(s.SnapshotId) == id {
			return true
		}
	}
	return false
}

func share(t *testing.T, ctx context.Context, c *ec2.Client, imageID string, perms ...types.LaunchPermission) error {
	t.Helper()
	_, err := c.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(imageID),
		LaunchPermission: &types.LaunchPermissionModifications{Add: perms}})
	return err
}

// launch starts one arm64 instance of imageID.
func launch(ctx context.Context, c *ec2.Client, imageID string) (*ec2.RunInstancesOutput, error) {
	return c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(imageID), InstanceType: types.InstanceTypeT4gNano,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
}

// GAP: DeregisterImage ignored DeleteAssociatedSnapshots, so snapshots leaked.
func TestDeregisterImageDeletesAssociatedSnapshots(t *testing.T) {
	ctx := fresh(t)
	c := ec2As(t, ctx, DefaultAccountID, region)
	root, shared := snapshot(t, ctx, c, 8, false, ""), snapshot(t, ctx, c, 4, false, "")
	first := registerOn(t, ctx, c, "first", root, shared)
	second := registerOn(t, ctx, c, "second", shared)

	out, err := c.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(first), DeleteAssociatedSnapshots: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]types.SnapshotReturnCodes{}
	for _, r := range out.DeleteSnapshotResults {
		got[aws.ToString(r.SnapshotId)] = r.ReturnCode
	}
	want := map[string]types.SnapshotReturnCodes{root: types.SnapshotReturnCodesSuccess, shared: types.SnapshotReturnCodesWarnSkipped}
	if len(got) != 2 || got[root] != want[root] || got[shared] != want[shared] {
		t.Fatalf("DeleteSnapshotResults %v, want %v (the second image still uses %s)", got, want, shared)
	}
	if snapshotExists(t, ctx, c, root) || !snapshotExists(t, ctx, c, shared) {
		t.Fatalf("after deregistering %s: root snapshot kept %v, shared snapshot kept %v; want false, true",
			first, snapshotExists(t, ctx, c, root), snapshotExists(t, ctx, c, shared))
	}
	// The snapshot went through delete_snapshot, so its bytes went too.
	bytesOf := func(id string) string {
		return filepath.Join(world.DataDir, DefaultAccountID, region, "snapshots", id+".img")
	}
	if _, err := os.Stat(bytesOf(root)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("bytes of the deleted snapshot %s: %v, want them gone", root, err)
	}
	if _, err := os.Stat(bytesOf(shared)); err != nil {
		t.Errorf("bytes of the kept snapshot %s: %v", shared, err)
	}

	// Without the flag the snapshots stay, as before.
	out, err = c.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(second)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.DeleteSnapshotResults) != 0 || !snapshotExists(t, ctx, c, shared) {
		t.Fatalf("plain DeregisterImage: results %v, snapshot kept %v", out.DeleteSnapshotResults, snapshotExists(t, ctx, c, shared))
	}
}

// GAP: deregistration protection answered 500 and protected nothing.
func TestDeregistrationProtection(t *testing.T) {
	ctx := fresh(t)
	c := ec2As(t, ctx, DefaultAccountID, region)
	protection := func(id string) string {
		t.Helper()
		return aws.ToString(describeImage(t, ctx, c, id).DeregistrationProtection)
	}
	deregister := func(id string) error {
		_, err := c.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(id)})
		return err
	}

	plain := register(t, ctx, c, "plain", snapshot(t, ctx, c, 8, false, ""))
	if got := protection(plain); got != "disabled" {
		t.Fatalf("new image: DeregistrationProtection %q, want disabled", got)
	}
	on, err := c.EnableImageDeregistrationProtection(ctx, &ec2.EnableImageDeregistrationProtectionInput{ImageId: aws.String(plain)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(on.Return) != "enabled-without-cooldown" || protection(plain) != "enabled-without-cooldown" {
		t.Fatalf("enabled: Return %q, DescribeImages %q", aws.ToString(on.Return), protection(plain))
	}
	attr, err := c.DescribeImageAttribute(ctx, &ec2.DescribeImageAttributeInput{ImageId: aws.String(plain),
		Attribute: types.ImageAttributeNameDeregistrationProtection})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(attr.DeregistrationProtection.Value); got != "enabled-without-cooldown" {
		t.Fatalf("DescribeImageAttribute deregistrationProtection %q", got)
	}
	wantCode(t, deregister(plain), "OperationNotPermitted")
	_, err = ec2As(t, ctx, otherAccount, region).DisableImageDeregistrationProtection(ctx,
		&ec2.DisableImageDeregistrationProtectionInput{ImageId: aws.String(plain)})
	wantCode(t, err, "InvalidAMIID.NotFound") // a private image of another account
	off, err := c.DisableImageDeregistrationProtection(ctx, &ec2.DisableImageDeregistrationProtectionInput{ImageId: aws.String(plain)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(off.Return) != "disabled" {
		t.Fatalf("disabled: Return %q", aws.ToString(off.Return))
	}
	if err := deregister(plain); err != nil {
		t.Fatalf("deregister after protection is off: %v", err)
	}

	// With a cooldown the image stays protected after the protection is off.
	cooled := register(t, ctx, c, "cooled", snapshot(t, ctx, c, 8, false, ""))
	if _, err := c.EnableImageDeregistrationProtection(ctx, &ec2.EnableImageDeregistrationProtectionInput{
		ImageId: aws.String(cooled), WithCooldown: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if got := protection(cooled); got != "enabled-with-cooldown" {
		t.Fatalf("DeregistrationProtection %q, want enabled-with-cooldown", got)
	}
	if _, err := c.DisableImageDeregistrationProtection(ctx, &ec2.DisableImageDeregistrationProtectionInput{ImageId: aws.String(cooled)}); err != nil {
		t.Fatal(err)
	}
	if got := protection(cooled); !strings.HasPrefix(got, "disabled after 20") {
		t.Fatalf("during the cooldown: DeregistrationProtection %q, want \"disabled after <time>\"", got)
	}
	wantCode(t, deregister(cooled), "OperationNotPermitted")
	if err := world.SetDeregistrationCooldown(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if got := protection(cooled); got != "disabled" {
		t.Fatalf("after the cooldown: DeregistrationProtection %q", got)
	}
	if err := deregister(cooled); err != nil {
		t.Fatalf("deregister after the cooldown: %v", err)
	}
}

// GAP: DisableImage and EnableImage answered 500; IncludeDisabled was ignored.
func TestDisableImage(t *testing.T) {
	ctx := fresh(t)
	owner, other := ec2As(t, ctx, DefaultAccountID, region), ec2As(t, ctx, otherAccount, region)
	id := register(t, ctx, owner, "to-disable", snapshot(t, ctx, owner, 8, false, ""))
	if err := share(t, ctx, owner, id, types.LaunchPermission{UserId: aws.String(otherAccount)}, types.LaunchPermission{Group: types.PermissionGroupAll}); err != nil {
		t.Fatal(err)
	}
	_, err := other.DisableImage(ctx, &ec2.DisableImageInput{ImageId: aws.String(id)})
	wantCode(t, err, "AuthFailure")
	if _, err := owner.DisableImage(ctx, &ec2.DisableImageInput{ImageId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}

	own, err := owner.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}})
	if err != nil {
		t.Fatal(err)
	}
	if imageIDs(own.Images)[id] {
		t.Fatalf("a disabled image is listed without IncludeDisabled")
	}
	byID, err := owner.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil || len(byID.Images) != 0 {
		t.Fatalf("disabled image by ID without IncludeDisabled: %v, %v", byID, err)
	}
	all, err := owner.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}, IncludeDisabled: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Images) != 1 || all.Images[0].State != types.ImageStateDisabled || aws.ToBool(all.Images[0].Public) {
		t.Fatalf("with IncludeDisabled: %+v", all.Images)
	}
	perms, err := owner.DescribeImageAttribute(ctx, &ec2.DescribeImageAttributeInput{ImageId: aws.String(id), Attribute: types.ImageAttributeNameLaunchPermission})
	if err != nil {
		t.Fatal(err)
	}
	if len(perms.LaunchPermissions) != 0 {
		t.Fatalf("a disabled image keeps launch permissions %+v", perms.LaunchPermissions)
	}
	_, err = other.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}, IncludeDisabled: aws.Bool(true)})
	wantCode(t, err, "InvalidAMIID.NotFound")
	_, err = launch(ctx, owner, id)
	wantCode(t, err, "InvalidAMIID.Unavailable")
	wantCode(t, share(t, ctx, owner, id, types.LaunchPermission{UserId: aws.String(otherAccount)}), "OperationNotPermitted")

	if _, err := owner.EnableImage(ctx, &ec2.EnableImageInput{ImageId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	if im := describeImage(t, ctx, owner, id); im.State != types.ImageStateAvailable {
		t.Fatalf("re-enabled image is %s", im.State)
	}
	// The lost permissions do not come back.
	_, err = other.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
	wantCode(t, err, "InvalidAMIID.NotFound")
}

// GAP: moto wrote any value of an aws:ec2:image parameter and turned the data
// type to text on an overwrite without DataType.
func TestSSMImageParameterValidated(t *testing.T) {
	ctx := fresh(t)
	c := ec2As(t, ctx, DefaultAccountID, region)
	mine := register(t, ctx, c, "mine", snapshot(t, ctx, c, 8, false, ""))
	newer := register(t, ctx, c, "newer", snapshot(t, ctx, c, 8, false, ""))
	vendor := ec2As(t, ctx, otherAccount, region)
	shared := register(t, ctx, vendor, "shared", snapshot(t, ctx, vendor, 8, false, ""))
	private := register(t, ctx, vendor, "private", snapshot(t, ctx, vendor, 8, false, ""))
	if err := share(t, ctx, vendor, shared, types.LaunchPermission{UserId: aws.String(DefaultAccountID)}); err != nil {
		t.Fatal(err)
	}
	elsewhere := ec2As(t, ctx, DefaultAccountID, "eu-west-1")
	otherRegion := register(t, ctx, elsewhere, "elsewhere", snapshot(t, ctx, elsewhere, 8, false, ""))
	s := ssmAs(t, ctx, DefaultAccountID, region)

	put := func(name, value string, dataType *string, overwrite bool) int64 {
		t.Helper()
		in := &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(value), DataType: dataType, Overwrite: aws.Bool(overwrite)}
		if !overwrite {
			in.Type = ssmtypes.ParameterTypeString
		}
		out, err := s.PutParameter(ctx, in)
		if err != nil {
			t.Fatalf("put %s = %s: %v (AWS answers 200 and validates later)", name, value, err)
		}
		return out.Version
	}
	get := func(name string) (*ssmtypes.Parameter, error) {
		out, err := s.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
		if err != nil {
			return nil, err
		}
		return out.Parameter, nil
	}
	image := aws.String("aws:ec2:image")

	// Values that are no AMI this account sees here are not written.
	for value, why := range map[string]string{
		"ami-0123456789abcdef0": "no such image",
		"not-an-ami":            "malformed",
		private:                 "another account's private image",
		otherRegion:             "an image of another region",
	} {
		name := "/test/dropped/" + strings.ReplaceAll(why, " ", "-")
		if v := put(name, value, image, false); v != 1 {
			t.Errorf("%s: version %d, want 1", why, v)
		}
		var nf *ssmtypes.ParameterNotFound
		if _, err := get(name); !errors.As(err, &nf) {
			t.Errorf("%s (%s): GetParameter %v, want ParameterNotFound", why, value, err)
		}
	}

	for _, value := range []string{mine, shared} {
		name := "/test/ok/" + value
		put(name, value, image, false)
		p, err := get(name)
		if err != nil {
			t.Fatalf("%s: %v", value, err)
		}
		if aws.ToString(p.Value) != value || aws.ToString(p.DataType) != "aws:ec2:image" || p.Version != 1 {
			t.Fatalf("%s: parameter %s = %s (%s) v%d", value, name, aws.ToString(p.Value), aws.ToString(p.DataType), p.Version)
		}
	}

	// An invalid update keeps the old version; a valid one without DataType
	// keeps the data type.
	name := "/test/ok/" + mine
	if v := put(name, "ami-0123456789abcdef0", nil, true); v != 2 {
		t.Fatalf("invalid update: version %d, want 2", v)
	}
	if p, err := get(name); err != nil || aws.ToString(p.Value) != mine || p.Version != 1 {
		t.Fatalf("after an invalid update: %+v, %v; want %s at version 1", p, err, mine)
	}
	put(name, newer, nil, true)
	if p, err := get(name); err != nil || aws.ToString(p.Value) != newer || p.Version != 2 || aws.ToString(p.DataType) != "aws:ec2:image" {
		t.Fatalf("after an update without DataType: %+v, %v; want %s, version 2, aws:ec2:image", p, err, newer)
	}
	_, err := s.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String("hello"), DataType: aws.String("text"), Overwrite: aws.Bool(true)})
	if apiCode(err) != "ValidationException" {
		t.Fatalf("change from aws:ec2:image to text: %v, want ValidationException", err)
	}

	// Plain text parameters are untouched, and keep text on overwrite.
	put("/test/text", "anything", nil, false)
	put("/test/text", "else", nil, true)
	if p, err := get("/test/text"); err != nil || aws.ToString(p.Value) != "else" || aws.ToString(p.DataType) != "text" {
		t.Fatalf("text parameter: %+v, %v", p, err)
	}
}

// pages collects the IDs a paginator yields and counts its pages.
func pages[T any](t *testing.T, more func() bool, next func() ([]T, error), id func(T) string) (ids []string, n int) {
	t.Helper()
	for more() {
		items, err := next()
		if err != nil {
			t.Fatal(err)
		}
		n++
		for _, it := range items {
			ids = append(ids, id(it))
		}
	}
	sort.Strings(ids)
	return ids, n
}

func sameIDs(t *testing.T, what string, got, want []string, gotPages, wantPages int) {
	t.Helper()
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") || gotPages != wantPages {
		t.Fatalf("%s: %d pages of %v, want %d pages of %v", what, gotPages, got, wantPages, want)
	}
}

// GAP: MaxResults/NextToken were ignored, so paginator code never ran.
func TestDescribePaginatedWithSDKPaginators(t *testing.T) {
	ctx := fresh(t)
	c := ec2As(t, ctx, DefaultAccountID, region)
	var volumes, snapshots, images, reservations []string
	for i := range 11 {
		vol, err := c.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(region + "a"), Size: aws.Int32(1)})
		if err != nil {
			t.Fatal(err)
		}
		volumes = append(volumes, aws.ToString(vol.VolumeId))
		snap, err := c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: vol.VolumeId})
		if err != nil {
			t.Fatal(err)
		}
		snapshots = append(snapshots, aws.ToString(snap.SnapshotId))
		images = append(images, registerOn(t, ctx, c, "paged-"+string(rune('a'+i)), aws.ToString(snap.SnapshotId)))
	}
	for range 7 {
		out, err := launch(ctx, c, images[0])
		if err != nil {
			t.Fatal(err)
		}
		reservations = append(reservations, aws.ToString(out.ReservationId))
		volumes = append(volumes, rootVolumes(t, ctx, c, out.Instances)...)
	}

	vp := ec2.NewDescribeVolumesPaginator(c, &ec2.DescribeVolumesInput{MaxResults: aws.Int32(5)})
	got, n := pages(t, vp.HasMorePages, func() ([]types.Volume, error) {
		out, err := vp.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		return out.Volumes, nil
	}, func(v types.Volume) string { return aws.ToString(v.VolumeId) })
	sameIDs(t, "volumes", got, volumes, n, (len(volumes)+4)/5)

	sp := ec2.NewDescribeSnapshotsPaginator(c, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, MaxResults: aws.Int32(5)})
	got, n = pages(t, sp.HasMorePages, func() ([]types.Snapshot, error) {
		out, err := sp.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		return out.Snapshots, nil
	}, func(s types.Snapshot) string { return aws.ToString(s.SnapshotId) })
	sameIDs(t, "snapshots", got, snapshots, n, 3)

	ip := ec2.NewDescribeImagesPaginator(c, &ec2.DescribeImagesInput{Owners: []string{"self"}, MaxResults: aws.Int32(5)})
	got, n = pages(t, ip.HasMorePages, func() ([]types.Image, error) {
		out, err := ip.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		return out.Images, nil
	}, func(im types.Image) string { return aws.ToString(im.ImageId) })
	sameIDs(t, "images", got, images, n, 3)

	rp := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(5)})
	got, n = pages(t, rp.HasMorePages, func() ([]types.Reservation, error) {
		out, err := rp.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		return out.Reservations, nil
	}, func(r types.Reservation) string { return aws.ToString(r.ReservationId) })
	sameIDs(t, "reservations", got, reservations, n, 2)

	// Without MaxResults everything comes in one answer.
	all, err := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{})
	if err != nil || len(all.Volumes) != len(volumes) || all.NextToken != nil {
		t.Fatalf("unpaged DescribeVolumes: %d volumes, token %v, %v", len(all.Volumes), all.NextToken, err)
	}
	// Above the maximum, DescribeVolumes answers at most 500 instead of failing.
	if out, err := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{MaxResults: aws.Int32(501)}); err != nil || len(out.Volumes) != len(volumes) {
		t.Fatalf("DescribeVolumes MaxResults 501: %v", err)
	}

	refused := []struct {
		name string
		call func() error
		code string
	}{
		{"images below 5", func() error {
			_, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{MaxResults: aws.Int32(4)})
			return err
		}, "InvalidParameterValue"},
		{"images above 1000", func() error {
			_, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{MaxResults: aws.Int32(1001)})
			return err
		}, "InvalidParameterValue"},
		{"instances above 1000", func() error {
			_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(1001)})
			return err
		}, "InvalidParameterValue"},
		{"snapshots below 5", func() error {
			_, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{MaxResults: aws.Int32(1)})
			return err
		}, "InvalidParameterValue"},
		{"volumes with IDs", func() error {
			_, err := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: volumes[:1], MaxResults: aws.Int32(5)})
			return err
		}, "InvalidParameterCombination"},
		{"snapshots with IDs", func() error {
			_, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: snapshots[:1], MaxResults: aws.Int32(5)})
			return err
		}, "InvalidParameterCombination"},
		{"images with IDs", func() error {
			_, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: images[:1], MaxResults: aws.Int32(5)})
			return err
		}, "InvalidParameterCombination"},
		{"a made-up token", func() error {
			_, err := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{MaxResults: aws.Int32(5), NextToken: aws.String("bm90LWEtdG9rZW4")})
			return err
		}, "InvalidPaginationToken"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.call(), tc.code) })
	}
	// A token of one operation is no good for another.
	first, err := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{MaxResults: aws.Int32(5)})
	if err != nil || first.NextToken == nil {
		t.Fatalf("first volume page: %v", err)
	}
	_, err = c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{MaxResults: aws.Int32(5), NextToken: first.NextToken})
	wantCode(t, err, "InvalidPaginationToken")
}

// rootVolumes are the IDs of the EBS volumes attached to instances.
func rootVolumes(t *testing.T, ctx context.Context, c *ec2.Client, instances []types.Instance) []string {
	t.Helper()
	var ids []string
	for _, in := range instances {
		out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{aws.ToString(in.InstanceId)}})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				for _, m := range i.BlockDeviceMappings {
					if m.Ebs != nil {
						ids = append(ids, aws.ToString(m.Ebs.VolumeId))
					}
				}
			}
		}
	}
	return ids
}

// GAP: organization and OU launch permissions were stored but granted nothing,
// and malformed ARNs were accepted.
func TestOrganizationLaunchPermissions(t *testing.T) {
	ctx := fresh(t)
	const (
		orgARN    = "arn:aws:organizations::111111111111:organization/o-abcdef1234"
		ouARN     = "arn:aws:organizations::111111111111:ou/o-abcdef1234/ou-ab12-cdef3456"
		inOrg     = otherAccount   // member outside any OU
		inOU      = thirdAccount   // member of the OU
		outsider  = "444444444444" // in no organization
		otherOrgs = "arn:aws:organizations::555555555555:organization/o-zzzzzzzzzz"
	)
	if err := world.SetOrganizations(ctx,
		Organization{ARN: orgARN, Accounts: []string{inOrg}, OUs: []OrganizationalUnit{{ARN: ouARN, Accounts: []string{inOU}}}},
		Organization{ARN: otherOrgs, Accounts: []string{outsider}}); err != nil {
		t.Fatal(err)
	}
	owner := ec2As(t, ctx, DefaultAccountID, region)
	forOrg := register(t, ctx, owner, "for-org", snapshot(t, ctx, owner, 8, false, ""))
	forOU := register(t, ctx, owner, "for-ou", snapshot(t, ctx, owner, 8, false, ""))
	if err := share(t, ctx, owner, forOrg, types.LaunchPermission{OrganizationArn: aws.String(orgARN)}); err != nil {
		t.Fatal(err)
	}
	if err := share(t, ctx, owner, forOU, types.LaunchPermission{OrganizationalUnitArn: aws.String(ouARN)}); err != nil {
		t.Fatal(err)
	}

	visible := map[string]map[string]bool{
		inOrg:    {forOrg: true},
		inOU:     {forOrg: true, forOU: true},
		outsider: {},
	}
	for account, want := range visible {
		c := ec2As(t, ctx, account, region)
		for _, id := range []string{forOrg, forOU} {
			_, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
			if want[id] && err != nil {
				t.Errorf("%s cannot describe %s: %v", account, id, err)
			}
			if !want[id] && apiCode(err) != "InvalidAMIID.NotFound" {
				t.Errorf("%s describes %s: %v, want InvalidAMIID.NotFound", account, id, err)
			}
		}
		for _, in := range []ec2.DescribeImagesInput{{Owners: []string{DefaultAccountID}}, {ExecutableUsers: []string{"self"}}} {
			out, err := c.DescribeImages(ctx, &in)
			if err != nil {
				t.Fatal(err)
			}
			if got := imageIDs(out.Images); len(got) != len(want) || (len(want) > 0 && !got[forOrg]) {
				t.Errorf("%s lists %v with %+v, want %v", account, got, in, want)
			}
		}
		_, err := c.CopyImage(ctx, &ec2.CopyImageInput{SourceImageId: aws.String(forOrg), SourceRegion: aws.String(region), Name: aws.String("copy")})
		if want[forOrg] && err != nil {
			t.Errorf("%s cannot copy %s: %v", account, forOrg, err)
		}
		if !want[forOrg] && err == nil {
			t.Errorf("%s copied %s shared with an organization it is not in", account, forOrg)
		}
	}
	// The launch builds the root volume from the owner's snapshot, which is
	// not shared with the member: AWS needs no createVolumePermission to
	// launch a shared image.
	if _, err := launch(ctx, ec2As(t, ctx, inOU, region), forOU); err != nil {
		t.Errorf("a member of the OU cannot launch %s: %v", forOU, err)
	}
	_, err := launch(ctx, ec2As(t, ctx, inOrg, region), forOU)
	wantCode(t, err, "InvalidAMIID.NotFound") // in the organization, not in the OU

	for _, perm := range []types.LaunchPermission{
		{OrganizationArn: aws.String("arn:aws:organizations::111111111111:account/o-abcdef1234")},
		{OrganizationArn: aws.String("o-abcdef1234")},
		{OrganizationalUnitArn: aws.String("arn:aws:organizations::111111111111:ou/o-abcdef1234/path/to")},
	} {
		wantCode(t, share(t, ctx, owner, forOrg, perm), "InvalidAMIAttributeItemValue")
	}

	// Reset forgets the organizations.
	ctx = fresh(t)
	owner = ec2As(t, ctx, DefaultAccountID, region)
	again := register(t, ctx, owner, "again", snapshot(t, ctx, owner, 8, false, ""))
	if err := share(t, ctx, owner, again, types.LaunchPermission{OrganizationArn: aws.String(orgARN)}); err != nil {
		t.Fatal(err)
	}
	_, err = ec2As(t, ctx, inOrg, region).DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{again}})
	wantCode(t, err, "InvalidAMIID.NotFound")
}

// The organizations knob refuses what could never be granted, naming the field.
func TestSetOrganizationsRefusesBadMembership(t *testing.T) {
	ctx := fresh(t)
	const org = "arn:aws:organizations::111111111111:organization/o-abcdef1234"
	cases := []struct {
		name string
		orgs []Organization
		want string
	}{
		{"short organization ID", []Organization{{ARN: "arn:aws:organizations::111111111111:organization/o-abc123"}}, "organizations[0].arn"},
		{"OU of another organization", []Organization{{ARN: org, OUs: []OrganizationalUnit{{ARN: "arn:aws:organizations::111111111111:ou/o-zzzzzzzzzz/ou-ab12-cdef3456"}}}}, "organizations[0].ous[0].arn"},
		{"bad account", []Organization{{ARN: org, Accounts: []string{"12345"}}}, "organizations[0].accounts"},
		{"account in two organizations", []Organization{
			{ARN: org, Accounts: []string{"222222222222"}},
			{ARN: "arn:aws:organizations::333333333333:organization/o-zzzzzzzzzz", Accounts: []string{"222222222222"}},
		}, "organizations[1]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := world.SetOrganizations(ctx, tc.orgs...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %s", err, tc.want)
			}
		})
	}
}
