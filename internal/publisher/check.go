package publisher

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/autoami/terraform-provider-autoami/internal/awsclient"
)

// check gets the target's clients, makes sure they act in the target's
// account, resolves the KMS key and renders the AMI name.
func (a *actor) check(ctx context.Context) error {
	c, err := clientsFor(ctx, a.p.cfg.Clients, a.t)
	if err != nil {
		return err
	}
	a.aws = c
	key, err := resolveKey(ctx, c, a.pub.KMSKeyID)
	if err != nil {
		return err
	}
	if key.manager == kmstypes.KeyManagerTypeAws && !a.pub.LaunchPermission.Empty() {
		return fmt.Errorf("launch_permission shares the AMI, but its key %s is the AWS managed EBS key, which other accounts cannot use: "+
			"set kms_key_id to a customer managed key (an alias each target defines), or make one the account's default EBS key (ModifyEbsDefaultKmsKeyId)", key.arn)
	}
	a.keyARN = key.arn
	a.name = renderName(a.pub.NameTemplate, a.pub.Stream, a.pub.Revision, a.pub.Date)
	a.rec.Name = a.name
	return nil
}

// clientsFor returns the target's clients after checking that they act in
// the target's account (a wrong role would publish into another account).
func clientsFor(ctx context.Context, src ClientSource, t Target) (*awsclient.Clients, error) {
	c, err := src.For(ctx, awsclient.Target{RoleARN: t.RoleARN, Region: t.Region})
	if err != nil {
		return nil, fmt.Errorf("AWS clients: %w", err)
	}
	if c.AccountID != t.AccountID {
		who := "the provider's credentials act"
		if t.RoleARN != "" {
			who = "role " + t.RoleARN + " acts"
		}
		return nil, fmt.Errorf("%s in account %s, not in the target's account %s", who, c.AccountID, t.AccountID)
	}
	return c, nil
}

// key is a resolved KMS key.
type key struct {
	arn     string
	manager kmstypes.KeyManagerType
}

// resolveKey finds the key volumes are encrypted with: keyID resolved in the
// target's account and region, or the account's default EBS key.
func resolveKey(ctx context.Context, c *awsclient.Clients, keyID string) (key, error) {
	source := "kms_key_id " + keyID
	if keyID == "" {
		out, err := c.EC2.GetEbsDefaultKmsKeyId(ctx, &ec2.GetEbsDefaultKmsKeyIdInput{})
		if err != nil {
			return key{}, fmt.Errorf("GetEbsDefaultKmsKeyId: %w", err)
		}
		keyID = aws.ToString(out.KmsKeyId)
		source = "the default EBS key " + keyID
	}
	out, err := c.KMS.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
	if err != nil {
		return key{}, fmt.Errorf("%s: DescribeKey: %w", source, err)
	}
	md := out.KeyMetadata
	if md == nil || md.Arn == nil {
		return key{}, fmt.Errorf("%s: DescribeKey answered no key", source)
	}
	if a, err := arn.Parse(aws.ToString(md.Arn)); err == nil && (a.AccountID != c.AccountID || a.Region != c.Target.Region) {
		return key{}, fmt.Errorf("%s is key %s of account %s in %s: autoami encrypts with a key of the target's own account and region, never a shared one",
			source, aws.ToString(md.Arn), a.AccountID, a.Region)
	}
	if md.KeyState != kmstypes.KeyStateEnabled {
		return key{}, fmt.Errorf("%s (%s) is %s, not enabled", source, aws.ToString(md.Arn), md.KeyState)
	}
	return key{arn: aws.ToString(md.Arn), manager: md.KeyManager}, nil
}
