package publisher

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// share brings the image's and snapshot's tags and permissions to what the
// publication says: every asked account, organization and OU may launch the
// image, the accounts may create volumes from its snapshot, and nobody else
// (a public or extra grant made out of band is removed).
func (a *actor) share(ctx context.Context) error {
	c := a.aws.EC2
	// Tags were set at creation; tags the user changed since are set again.
	if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{a.rec.ImageID}, Tags: ec2Tags(a.allTags(roleImage, true, a.rec.Name))}); err != nil {
		return fmt.Errorf("CreateTags on image %s: %w", a.rec.ImageID, err)
	}
	if a.rec.SnapshotID != "" {
		if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{a.rec.SnapshotID}, Tags: ec2Tags(a.allTags(roleRootSnapshot, true, a.rec.Name))}); err != nil {
			return fmt.Errorf("CreateTags on snapshot %s: %w", a.rec.SnapshotID, err)
		}
	}
	if err := a.removeTags(ctx); err != nil {
		return err
	}
	// The snapshot first: an account that may launch must also be able to
	// read the snapshot by the time it tries.
	if a.rec.SnapshotID != "" {
		if err := convergeVolumePermission(ctx, c, a.rec.SnapshotID, a.pub.LaunchPermission.AccountIDs); err != nil {
			return err
		}
	}
	changed, err := convergeLaunchPermission(ctx, c, a.rec.ImageID, a.pub.LaunchPermission)
	if err != nil {
		return err
	}
	if changed != "" {
		a.info(StepShare, "launch permissions of %s: %s", a.rec.ImageID, changed)
	}
	return nil
}

// grant is one launch permission: "account:ID", "organization:ARN",
// "ou:ARN" or "group:all".
type grant string

func wantedGrants(lp LaunchPermission) map[grant]bool {
	out := map[grant]bool{}
	for _, v := range lp.AccountIDs {
		out[grant("account:"+v)] = true
	}
	for _, v := range lp.OrganizationARNs {
		out[grant("organization:"+v)] = true
	}
	for _, v := range lp.OrganizationalUnitARNs {
		out[grant("ou:"+v)] = true
	}
	return out
}

func grantsOf(perms []ec2types.LaunchPermission) map[grant]bool {
	out := map[grant]bool{}
	for _, p := range perms {
		switch {
		case p.UserId != nil:
			out[grant("account:"+aws.ToString(p.UserId))] = true
		case p.OrganizationArn != nil:
			out[grant("organization:"+aws.ToString(p.OrganizationArn))] = true
		case p.OrganizationalUnitArn != nil:
			out[grant("ou:"+aws.ToString(p.OrganizationalUnitArn))] = true
		case p.Group != "":
			out[grant("group:"+string(p.Group))] = true
		}
	}
	return out
}

func (g grant) permission() ec2types.LaunchPermission {
	kind, v, _ := strings.Cut(string(g), ":")
	switch kind {
	case "account":
		return ec2types.LaunchPermission{UserId: aws.String(v)}
	case "organization":
		return ec2types.LaunchPermission{OrganizationArn: aws.String(v)}
	case "ou":
		return ec2types.LaunchPermission{OrganizationalUnitArn: aws.String(v)}
	}
	return ec2types.LaunchPermission{Group: ec2types.PermissionGroup(v)}
}

// launchGrants reads an image's launch permissions.
func launchGrants(ctx context.Context, c *ec2.Client, imageID string) (map[grant]bool, error) {
	out, err := c.DescribeImageAttribute(ctx, &ec2.DescribeImageAttributeInput{ImageId: aws.String(imageID), Attribute: ec2types.ImageAttributeNameLaunchPermission})
	if err != nil {
		return nil, fmt.Errorf("DescribeImageAttribute launchPermission of %s: %w", imageID, err)
	}
	return grantsOf(out.LaunchPermissions), nil
}

// diffGrants lists what to add to have and what to remove from it to get want.
func diffGrants(have, want map[grant]bool) (add, remove []grant) {
	for _, g := range slices.Sorted(maps.Keys(want)) {
		if !have[g] {
			add = append(add, g)
		}
	}
	for _, g := range slices.Sorted(maps.Keys(have)) {
		if !want[g] {
			remove = append(remove, g)
		}
	}
	return add, remove
}

// convergeLaunchPermission makes the image's launch permissions exactly lp's
// and says what it changed ("" for nothing).
func convergeLaunchPermission(ctx context.Context, c *ec2.Client, imageID string, lp LaunchPermission) (string, error) {
	have, err := launchGrants(ctx, c, imageID)
	if err != nil {
		return "", err
	}
	add, remove := diffGrants(have, wantedGrants(lp))
	perms := func(gs []grant) []ec2types.LaunchPermission {
		out := make([]ec2types.LaunchPermission, len(gs))
		for i, g := range gs {
			out[i] = g.permission()
		}
		return out
	}
	if len(remove) > 0 {
		if _, err := c.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(imageID),
			LaunchPermission: &ec2types.LaunchPermissionModifications{Remove: perms(remove)}}); err != nil {
			return "", fmt.Errorf("ModifyImageAttribute %s: remove launch permissions %v: %w", imageID, remove, err)
		}
	}
	if len(add) > 0 {
		if _, err := c.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(imageID),
			LaunchPermission: &ec2types.LaunchPermissionModifications{Add: perms(add)}}); err != nil {
			return "", fmt.Errorf("ModifyImageAttribute %s: add launch permissions %v: %w", imageID, add, err)
		}
	}
	var parts []string
	if len(add) > 0 {
		parts = append(parts, fmt.Sprintf("added %v", add))
	}
	if len(remove) > 0 {
		parts = append(parts, fmt.Sprintf("removed %v", remove))
	}
	return strings.Join(parts, ", "), nil
}

// volumeAccounts reads who may create volumes from a snapshot ("all" for public).
func volumeAccounts(ctx context.Context, c *ec2.Client, snapshotID string) (map[string]bool, error) {
	out, err := c.DescribeSnapshotAttribute(ctx, &ec2.DescribeSnapshotAttributeInput{SnapshotId: aws.String(snapshotID), Attribute: ec2types.SnapshotAttributeNameCreateVolumePermission})
	if err != nil {
		return nil, fmt.Errorf("DescribeSnapshotAttribute createVolumePermission of %s: %w", snapshotID, err)
	}
	have := map[string]bool{}
	for _, p := range out.CreateVolumePermissions {
		switch {
		case p.UserId != nil:
			have[aws.ToString(p.UserId)] = true
		case p.Group != "":
			have[string(p.Group)] = true
		}
	}
	return have, nil
}

// convergeVolumePermission makes the accounts that may create volumes from
// the snapshot exactly accounts.
func convergeVolumePermission(ctx context.Context, c *ec2.Client, snapshotID string, accounts []string) error {
	have, err := volumeAccounts(ctx, c, snapshotID)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, a := range accounts {
		want[a] = true
	}
	var add, remove []ec2types.CreateVolumePermission
	for _, a := range slices.Sorted(maps.Keys(want)) {
		if !have[a] {
			add = append(add, ec2types.CreateVolumePermission{UserId: aws.String(a)})
		}
	}
	for _, a := range slices.Sorted(maps.Keys(have)) {
		if want[a] {
			continue
		}
		if a == string(ec2types.PermissionGroupAll) {
			remove = append(remove, ec2types.CreateVolumePermission{Group: ec2types.PermissionGroupAll})
		} else {
			remove = append(remove, ec2types.CreateVolumePermission{UserId: aws.String(a)})
		}
	}
	if len(remove) > 0 {
		if _, err := c.ModifySnapshotAttribute(ctx, &ec2.ModifySnapshotAttributeInput{SnapshotId: aws.String(snapshotID),
			CreateVolumePermission: &ec2types.CreateVolumePermissionModifications{Remove: remove}}); err != nil {
			return fmt.Errorf("ModifySnapshotAttribute %s: remove createVolumePermission: %w", snapshotID, err)
		}
	}
	if len(add) > 0 {
		if _, err := c.ModifySnapshotAttribute(ctx, &ec2.ModifySnapshotAttributeInput{SnapshotId: aws.String(snapshotID),
			CreateVolumePermission: &ec2types.CreateVolumePermissionModifications{Add: add}}); err != nil {
			return fmt.Errorf("ModifySnapshotAttribute %s: add createVolumePermission: %w", snapshotID, err)
		}
	}
	return nil
}
