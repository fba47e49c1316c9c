package moto

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// AWSConfig is an SDK configuration for endpoint (the server's URL or a fault
// proxy's) in region, with static credentials of DefaultAccountID. S3 clients
// made from it need UsePathStyle = true.
func AWSConfig(endpoint, region string) aws.Config {
	return aws.Config{
		Region:       region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	}
}

// AccountConfig is like AWSConfig but acts as accountID: it assumes a role
// there through the server's STS (the role need not exist), which is how moto
// tells accounts apart. The credentials fall back to DefaultAccountID after a
// Reset, so make them again in each test.
func AccountConfig(ctx context.Context, endpoint, region, accountID string) (aws.Config, error) {
	cfg := AWSConfig(endpoint, region)
	if accountID == DefaultAccountID {
		return cfg, nil
	}
	out, err := sts.NewFromConfig(cfg).AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn:         aws.String(fmt.Sprintf("arn:aws:iam::%s:role/autoami-test", accountID)),
		RoleSessionName: aws.String("autoami-test"),
	})
	if err != nil {
		return aws.Config{}, fmt.Errorf("assume a role in account %s at %s: %w", accountID, endpoint, err)
	}
	c := out.Credentials
	cfg.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))
	return cfg, nil
}
