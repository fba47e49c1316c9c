package unpackerinstance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/autoami/terraform-provider-autoami/internal/awsclient"
)

// placement is where an instance goes.
type placement struct {
	SubnetID, VPCID, Zone string
}

// choosePlacement finds the given subnet, or the default VPC's subnet in
// the first zone (by name) that offers instanceType.
func choosePlacement(ctx context.Context, c *awsclient.Clients, subnetID, instanceType string) (placement, error) {
	where := targetName(c.AccountID, c.Target.Region)
	if subnetID != "" {
		out, err := c.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{subnetID}})
		if err != nil || len(out.Subnets) == 0 {
			if err == nil || apiCode(err) == "InvalidSubnetID.NotFound" {
				return placement{}, fmt.Errorf("subnet %s does not exist in %s", subnetID, where)
			}
			return placement{}, fmt.Errorf("look up subnet %s in %s: %w", subnetID, where, err)
		}
		s := out.Subnets[0]
		return placement{SubnetID: subnetID, VPCID: aws.ToString(s.VpcId), Zone: aws.ToString(s.AvailabilityZone)}, nil
	}
	offered := map[string]bool{}
	offers := ec2.NewDescribeInstanceTypeOfferingsPaginator(c.EC2, &ec2.DescribeInstanceTypeOfferingsInput{
		LocationType: ec2types.LocationTypeAvailabilityZone,
		Filters:      []ec2types.Filter{{Name: aws.String("instance-type"), Values: []string{instanceType}}},
	})
	for offers.HasMorePages() {
		page, err := offers.NextPage(ctx)
		if err != nil {
			return placement{}, fmt.Errorf("find the zones of %s that offer %s: %w", where, instanceType, err)
		}
		for _, o := range page.InstanceTypeOfferings {
			offered[aws.ToString(o.Location)] = true
		}
	}
	var subnets []ec2types.Subnet
	pages := ec2.NewDescribeSubnetsPaginator(c.EC2, &ec2.DescribeSubnetsInput{
		Filters: []ec2types.Filter{{Name: aws.String("default-for-az"), Values: []string{"true"}}},
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return placement{}, fmt.Errorf("find the default VPC's subnets in %s: %w", where, err)
		}
		subnets = append(subnets, page.Subnets...)
	}
	if len(subnets) == 0 {
		return placement{}, fmt.Errorf("%s has no default VPC (no default subnets): set subnet_id", where)
	}
	sort.Slice(subnets, func(i, j int) bool {
		return aws.ToString(subnets[i].AvailabilityZone) < aws.ToString(subnets[j].AvailabilityZone)
	})
	var zones []string
	for _, s := range subnets {
		zone := aws.ToString(s.AvailabilityZone)
		if offered[zone] {
			return placement{SubnetID: aws.ToString(s.SubnetId), VPCID: aws.ToString(s.VpcId), Zone: zone}, nil
		}
		zones = append(zones, zone)
	}
	return placement{}, fmt.Errorf("no zone of the default VPC in %s (%s) offers %s: set instance_type or subnet_id",
		where, strings.Join(zones, ", "), instanceType)
}

// ValidateCIDR checks an allowed_cidrs entry (IPv4 or IPv6 CIDR, in its
// canonical form).
func ValidateCIDR(s string) error {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return fmt.Errorf("%q is not a CIDR block (e.g. 10.0.0.0/16): %w", s, err)
	}
	if p.Masked() != p {
		return fmt.Errorf("%q has host bits set: write %s", s, p.Masked())
	}
	return nil
}

// createSecurityGroup makes the unpacker's group: open only on port, only
// to cidrs; egress stays as EC2 makes it (everything), for the package
// mirror and S3.
func createSecurityGroup(ctx context.Context, c *awsclient.Clients, vpcID string, port int, cidrs []string, tags map[string]string) (string, error) {
	where := targetName(c.AccountID, c.Target.Region)
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	name := "autoami-unpacker-" + hex.EncodeToString(suffix)
	out, err := c.EC2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName:   aws.String(name),
		Description: aws.String(fmt.Sprintf("autoami unpacker in %s: TCP %d from allowed_cidrs", where, port)),
		VpcId:       aws.String(vpcID),
		TagSpecifications: []ec2types.TagSpecification{{
			ResourceType: ec2types.ResourceTypeSecurityGroup, Tags: ec2Tags(tags),
		}},
	})
	if err != nil {
		return "", fmt.Errorf("create the unpacker's security group in %s (VPC %s): %w", where, vpcID, err)
	}
	id := aws.ToString(out.GroupId)
	perm := ec2types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(int32(port)), ToPort: aws.Int32(int32(port))}
	for _, cidr := range cidrs {
		desc := aws.String("autoami unpacker API")
		if p, _ := netip.ParsePrefix(cidr); p.Addr().Is6() {
			perm.Ipv6Ranges = append(perm.Ipv6Ranges, ec2types.Ipv6Range{CidrIpv6: aws.String(cidr), Description: desc})
		} else {
			perm.IpRanges = append(perm.IpRanges, ec2types.IpRange{CidrIp: aws.String(cidr), Description: desc})
		}
	}
	if _, err := c.EC2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(id), IpPermissions: []ec2types.IpPermission{perm},
	}); err != nil {
		_, _ = c.EC2.DeleteSecurityGroup(context.WithoutCancel(ctx), &ec2.DeleteSecurityGroupInput{GroupId: aws.String(id)})
		return "", fmt.Errorf("open port %d of security group %s to %s in %s: %w", port, id, strings.Join(cidrs, ", "), where, err)
	}
	return id, nil
}

// securityGroupCIDRs are the sources group id admits on port, and whether
// it is one this package made (it carries TagTarget).
func securityGroupCIDRs(ctx context.Context, c *awsclient.Clients, id string, port int) (cidrs []string, ours bool, err error) {
	out, err := c.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{id}})
	if err != nil {
		return nil, false, fmt.Errorf("read security group %s: %w", id, err)
	}
	if len(out.SecurityGroups) == 0 {
		return nil, false, nil
	}
	g := out.SecurityGroups[0]
	for _, t := range g.Tags {
		if aws.ToString(t.Key) == TagTarget {
			ours = true
		}
	}
	for _, p := range g.IpPermissions {
		if aws.ToInt32(p.FromPort) > int32(port) || aws.ToInt32(p.ToPort) < int32(port) {
			continue
		}
		for _, r := range p.IpRanges {
			cidrs = append(cidrs, aws.ToString(r.CidrIp))
		}
		for _, r := range p.Ipv6Ranges {
			cidrs = append(cidrs, aws.ToString(r.CidrIpv6))
		}
	}
	slices.Sort(cidrs)
	return slices.Compact(cidrs), ours, nil
}

// deleteSecurityGroup deletes the group made for an unpacker. EC2 refuses
// (DependencyViolation) while the terminated instance's network interface
// is still being released, so it tries again until ctx ends.
func deleteSecurityGroup(ctx context.Context, c *awsclient.Clients, log *slog.Logger, poll time.Duration, id string) error {
	if id == "" {
		return nil
	}
	done := timed(ctx, log, "delete security group", "security_group", id)
	for {
		_, err := c.EC2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(id)})
		switch code := apiCode(err); {
		case err == nil || code == "InvalidGroup.NotFound":
			done(nil)
			return nil
		case code == "DependencyViolation" || code == "InvalidGroup.InUse":
			select {
			case <-ctx.Done():
				err = fmt.Errorf("delete security group %s in %s: still in use when the time ran out: %w",
					id, targetName(c.AccountID, c.Target.Region), errors.Join(err, ctx.Err()))
				done(err)
				return err
			case <-time.After(poll):
			}
		default:
			err = fmt.Errorf("delete security group %s in %s: %w", id, targetName(c.AccountID, c.Target.Region), err)
			done(err)
			return err
		}
	}
}

// ec2Tags turns a map into EC2 tags, sorted by key.
func ec2Tags(tags map[string]string) []ec2types.Tag {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]ec2types.Tag, 0, len(keys))
	for _, k := range keys {
		out = append(out, ec2types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

// withTarget is tags plus TagTarget.
func withTarget(tags map[string]string, account, region string) map[string]string {
	out := make(map[string]string, len(tags)+1)
	for k, v := range tags {
		out[k] = v
	}
	out[TagTarget] = targetName(account, region)
	return out
}
