package unpackerinstance

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/autoami/terraform-provider-autoami/internal/awsclient"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
	"github.com/autoami/terraform-provider-autoami/internal/unpackerbinary"
)

// binaryURLExpiry is how long the presigned URL in user-data works: the
// first boot (packages, then the download) happens minutes after the
// launch, and an upgrade writes a fresh URL. With temporary credentials the
// URL ends with them, if that is sooner.
const binaryURLExpiry = 6 * time.Hour

// normalize fills spec's defaults and checks it; errors name the argument.
func (spec *Spec) normalize() error {
	if spec.Architecture == "" {
		spec.Architecture = unpackerbinary.X86_64
	}
	if _, err := unpackerbinary.GOARCH(spec.Architecture); err != nil {
		return fmt.Errorf("architecture: %w", err)
	}
	if spec.InstanceType == "" {
		spec.InstanceType, _ = defaultInstanceType(spec.Architecture)
	}
	switch spec.ConnectVia {
	case "":
		spec.ConnectVia = ConnectViaPrivateIP
	case ConnectViaPrivateIP, ConnectViaPublicIP:
	default:
		return fmt.Errorf("connect_via: %q is neither %s nor %s", spec.ConnectVia, ConnectViaPrivateIP, ConnectViaPublicIP)
	}
	if spec.Port == 0 {
		spec.Port = wire.DefaultPort
	}
	if spec.Port < 1 || spec.Port > 65535 {
		return fmt.Errorf("port: %d is not between 1 and 65535", spec.Port)
	}
	if len(spec.SecurityGroupIDs) == 0 && len(spec.AllowedCIDRs) == 0 {
		return errors.New("allowed_cidrs: required when no security_group_ids are given (the unpacker's own security group admits only them)")
	}
	for _, c := range spec.AllowedCIDRs {
		if err := ValidateCIDR(c); err != nil {
			return fmt.Errorf("allowed_cidrs: %w", err)
		}
	}
	if spec.Binary.SHA256 == "" {
		return errors.New("no unpacker binary")
	}
	if spec.Binary.Architecture != spec.Architecture {
		return fmt.Errorf("unpacker_binary is for %s, the instance is %s", spec.Binary.Architecture, spec.Architecture)
	}
	return nil
}

// stageBinary puts the binary into the content store (once per digest) and
// presigns the GET the instance downloads it with.
func (m *manager) stageBinary(ctx context.Context, bin unpackerbinary.Binary) (string, error) {
	if m.store == nil {
		return "", errors.New("no content store to upload the unpacker binary to: set content_store on the provider")
	}
	start := time.Now()
	data, err := bin.ReadAll()
	if err != nil {
		return "", err
	}
	d, uploaded, err := m.store.PutData(ctx, data)
	if err != nil {
		return "", fmt.Errorf("upload the unpacker binary (%s) to the content store: %w", bin.Source, err)
	}
	if d.String() != bin.SHA256 {
		return "", fmt.Errorf("unpacker binary (%s): stored digest %s differs from %s", bin.Source, d, bin.SHA256)
	}
	m.log.InfoContext(ctx, "unpacker binary in the content store", "sha256", bin.SHA256, "version", bin.Version,
		"uploaded", uploaded, "bytes", len(data), "key", m.store.ObjectKey(d), "seconds", time.Since(start).Seconds())
	return m.store.PresignObject(ctx, m.presigner, d, binaryURLExpiry)
}

func (m *manager) create(ctx context.Context, spec Spec, id Identity) (*Unpacker, error) {
	if err := spec.normalize(); err != nil {
		return nil, err
	}
	cert, err := id.tlsCertificate()
	if err != nil {
		return nil, err
	}
	began := time.Now()
	c, err := m.clients.For(ctx, spec.Target)
	if err != nil {
		return nil, err
	}
	where := targetName(c.AccountID, c.Target.Region)
	u := &Unpacker{
		Region: c.Target.Region, AccountID: c.AccountID, RoleARN: spec.Target.RoleARN,
		Architecture: spec.Architecture, InstanceType: spec.InstanceType, ConnectVia: spec.ConnectVia,
		Port: spec.Port, IdlePoweroff: spec.IdlePoweroff, BinarySHA256: spec.Binary.SHA256,
		ClientCACertificatePEM: id.ClientCACertificatePEM, AllowedCIDRs: slices.Clone(spec.AllowedCIDRs),
	}
	img, err := resolveImage(ctx, c, spec.ImageID, spec.Architecture)
	if err != nil {
		return nil, err
	}
	place, err := choosePlacement(ctx, c, spec.SubnetID, spec.InstanceType)
	if err != nil {
		return nil, err
	}
	m.log.InfoContext(ctx, "found image and subnet", "target", where, "image", img.ID, "subnet", place.SubnetID,
		"seconds", time.Since(began).Seconds())
	url, err := m.stageBinary(ctx, spec.Binary)
	if err != nil {
		return nil, err
	}
	userData, err := renderUserData(Bootstrap{
		Architecture: spec.Architecture, ClientCACertificatePEM: id.ClientCACertificatePEM,
		BinaryURL: url, BinarySHA256: spec.Binary.SHA256, Port: spec.Port, IdlePoweroff: spec.IdlePoweroff,
	})
	if err != nil {
		return nil, err
	}
	tags := withTarget(spec.Tags, c.AccountID, c.Target.Region)
	groups := slices.Clone(spec.SecurityGroupIDs)
	if len(groups) == 0 {
		sg, err := createSecurityGroup(ctx, c, place.VPCID, spec.Port, spec.AllowedCIDRs, tags)
		if err != nil {
			return nil, err
		}
		u.CreatedSecurityGroupID = sg
		groups = []string{sg}
		m.log.InfoContext(ctx, "created the unpacker's security group", "security_group", sg, "target", where,
			"port", spec.Port, "allowed_cidrs", strings.Join(spec.AllowedCIDRs, ","))
	}
	in := runInstancesInput(spec, img, place, groups, userData, tags)
	m.log.InfoContext(ctx, "launching unpacker instance", "target", where, "image", img.ID, "image_name", img.Name,
		"instance_type", spec.InstanceType, "subnet", place.SubnetID, "zone", place.Zone, "client_token", aws.ToString(in.ClientToken))
	out, err := c.EC2.RunInstances(ctx, in, func(o *ec2.Options) { o.Retryer = capacityIsFinal{o.Retryer} })
	if err != nil {
		err = explainLaunchError(launchContext{where: where, instanceType: spec.InstanceType, zone: place.Zone, imageID: img.ID, kmsKeyID: spec.KMSKeyID}, err)
		if u.CreatedSecurityGroupID != "" {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
			defer cancel()
			if derr := deleteSecurityGroup(cctx, c, m.log, m.poll.Health, u.CreatedSecurityGroupID); derr != nil {
				err = errors.Join(err, derr)
			}
		}
		return nil, err
	}
	if len(out.Instances) != 1 {
		return nil, fmt.Errorf("RunInstances in %s answered %d instances, want 1", where, len(out.Instances))
	}
	u.InstanceID = aws.ToString(out.Instances[0].InstanceId)
	fromInstance(out.Instances[0], u)
	m.log.InfoContext(ctx, "launched unpacker instance", "instance", u.InstanceID, "target", where)

	env := m.readyEnv()
	inst, err := env.waitInstance(ctx, c.EC2, u.InstanceID, ec2types.InstanceStateNameRunning)
	if err != nil {
		return u, fmt.Errorf("%s: %w", u.name(), err)
	}
	fromInstance(inst, u)
	if u.Endpoint == "" {
		return u, fmt.Errorf("%s has no %s to reach its daemon at", u.name(), strings.ReplaceAll(u.ConnectVia, "_", " "))
	}
	got, err := env.waitAnswering(ctx, answer{ec2: c.EC2, instanceID: u.InstanceID, endpoint: u.Endpoint, cert: cert, firstBoot: true})
	if err != nil {
		return u, fmt.Errorf("%s: %w", u.name(), err)
	}
	u.ServerCertificateFingerprint = got.fingerprint
	u.UnpackerVersion = got.health.Version
	m.log.InfoContext(ctx, "unpacker ready", "instance", u.InstanceID, "target", where, "endpoint", u.Endpoint,
		"fingerprint", u.ServerCertificateFingerprint, "version", u.UnpackerVersion, "seconds", time.Since(began).Seconds())
	return u, nil
}

func runInstancesInput(spec Spec, img image, place placement, groups []string, userData []byte, tags map[string]string) *ec2.RunInstancesInput {
	in := &ec2.RunInstancesInput{
		// One token per launch: the SDK's retries of this call (a dropped
		// answer, throttling) send the same, so EC2 launches once.
		ClientToken:                       aws.String(clientToken()),
		ImageId:                           aws.String(img.ID),
		InstanceType:                      ec2types.InstanceType(spec.InstanceType),
		MinCount:                          aws.Int32(1),
		MaxCount:                          aws.Int32(1),
		UserData:                          aws.String(base64.StdEncoding.EncodeToString(userData)),
		InstanceInitiatedShutdownBehavior: ec2types.ShutdownBehaviorStop,
		MetadataOptions: &ec2types.InstanceMetadataOptionsRequest{
			HttpTokens:              ec2types.HttpTokensStateRequired,
			HttpPutResponseHopLimit: aws.Int32(1),
			HttpEndpoint:            ec2types.InstanceMetadataEndpointStateEnabled,
		},
		TagSpecifications: []ec2types.TagSpecification{
			{ResourceType: ec2types.ResourceTypeInstance, Tags: ec2Tags(tags)},
			{ResourceType: ec2types.ResourceTypeVolume, Tags: ec2Tags(tags)},
		},
	}
	if img.RootDeviceName != "" {
		ebs := &ec2types.EbsBlockDevice{Encrypted: aws.Bool(true)}
		if spec.KMSKeyID != "" {
			ebs.KmsKeyId = aws.String(spec.KMSKeyID)
		}
		in.BlockDeviceMappings = []ec2types.BlockDeviceMapping{{DeviceName: aws.String(img.RootDeviceName), Ebs: ebs}}
	}
	if spec.ConnectVia == ConnectViaPublicIP {
		in.NetworkInterfaces = []ec2types.InstanceNetworkInterfaceSpecification{{
			DeviceIndex: aws.Int32(0), SubnetId: aws.String(place.SubnetID), Groups: groups,
			AssociatePublicIpAddress: aws.Bool(true), DeleteOnTermination: aws.Bool(true),
		}}
	} else {
		in.SubnetId = aws.String(place.SubnetID)
		in.SecurityGroupIds = groups
	}
	return in
}

// capacityIsFinal is the SDK's retryer except that a capacity or quota
// refusal is not retried: the SDK retries it as a server error, with backoff
// for minutes, but AWS advises another zone or type or a later try, which is
// the user's call (explainLaunchError says so).
type capacityIsFinal struct{ aws.Retryer }

func (r capacityIsFinal) IsErrorRetryable(err error) bool {
	switch code := apiCode(err); {
	case strings.HasPrefix(code, "Insufficient") && strings.HasSuffix(code, "Capacity"),
		code == "InstanceLimitExceeded", code == "VcpuLimitExceeded":
		return false
	}
	return r.Retryer.IsErrorRetryable(err)
}

// GetAttemptToken keeps the retry quota of the wrapped retryer (aws.RetryerV2).
func (r capacityIsFinal) GetAttemptToken(ctx context.Context) (func(error) error, error) {
	if v2, ok := r.Retryer.(aws.RetryerV2); ok {
		return v2.GetAttemptToken(ctx)
	}
	return r.Retryer.GetInitialToken(), nil
}

func clientToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "autoami-" + hex.EncodeToString(b)
}

// fromInstance copies what EC2 says about the instance into u.
func fromInstance(inst ec2types.Instance, u *Unpacker) {
	u.State = string(stateOf(inst))
	if v := aws.ToString(inst.ImageId); v != "" {
		u.ImageID = v
	}
	if v := string(inst.Architecture); v != "" {
		u.Architecture = v
	}
	if v := string(inst.InstanceType); v != "" {
		u.InstanceType = v
	}
	if inst.Placement != nil && aws.ToString(inst.Placement.AvailabilityZone) != "" {
		u.AvailabilityZone = aws.ToString(inst.Placement.AvailabilityZone)
	}
	if v := aws.ToString(inst.SubnetId); v != "" {
		u.SubnetID = v
	}
	if len(inst.SecurityGroups) > 0 {
		u.SecurityGroupIDs = nil
		for _, g := range inst.SecurityGroups {
			u.SecurityGroupIDs = append(u.SecurityGroupIDs, aws.ToString(g.GroupId))
		}
		slices.Sort(u.SecurityGroupIDs)
	}
	u.PrivateIP = aws.ToString(inst.PrivateIpAddress)
	u.PublicIP = aws.ToString(inst.PublicIpAddress)
	u.Tags = map[string]string{}
	for _, t := range inst.Tags {
		if k := aws.ToString(t.Key); k != TagTarget {
			u.Tags[k] = aws.ToString(t.Value)
		}
	}
	// A stopped instance has no public IP: the endpoint keeps the last
	// one (EnsureReady follows the new one after a start).
	if ep := endpointOf(u); ep != "" {
		u.Endpoint = ep
	}
}

// forTarget is the clients of u's target.
func (m *manager) forTarget(ctx context.Context, u *Unpacker) (*awsclient.Clients, error) {
	return clientsFor(ctx, m.clients, u.RoleARN, u.Region, u.AccountID)
}

// clientsFor is the clients of (role, region), checked to reach account.
func clientsFor(ctx context.Context, f *awsclient.Factory, role, region, account string) (*awsclient.Clients, error) {
	c, err := f.For(ctx, awsclient.Target{RoleARN: role, Region: region})
	if err != nil {
		return nil, err
	}
	if account != "" && c.AccountID != account {
		via := "the provider's credentials reach"
		if role != "" {
			via = "role " + role + " reaches"
		}
		return nil, fmt.Errorf("the unpacker is in account %s, but %s account %s", account, via, c.AccountID)
	}
	return c, nil
}
