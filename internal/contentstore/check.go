package contentstore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func (s *store) check(ctx context.Context) (BucketCheck, error) {
	var out BucketCheck
	if err := s.valid(); err != nil {
		return out, err
	}
	if err := s.headBucket(ctx); err != nil {
		return out, err
	}
	w, err := s.encryptionWarning(ctx)
	if err != nil {
		return out, err
	}
	if w != "" {
		out.Warnings = append(out.Warnings, w)
	}
	w, err = s.publicAccessWarning(ctx)
	if err != nil {
		return out, err
	}
	if w != "" {
		out.Warnings = append(out.Warnings, w)
	}
	return out, nil
}

// headBucket tells a missing bucket, a forbidden one and one in another
// region apart; HeadBucket answers them with bare status codes.
func (s *store) headBucket(ctx context.Context) error {
	b := s.loc.Bucket
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(b)})
	if err == nil {
		return nil
	}
	switch status := httpStatus(err); {
	case status == http.StatusNotFound || isNoSuchBucket(err):
		return fmt.Errorf("bucket %q does not exist: %w", b, ErrBucketNotFound)
	case status == http.StatusForbidden:
		return fmt.Errorf("credentials cannot access bucket %q (HeadBucket was refused): %w", b, ErrAccessDenied)
	case status == http.StatusMovedPermanently:
		if region := bucketRegion(err); region != "" {
			return fmt.Errorf("bucket %q is in region %s; the content store must be reached in its own region (the provider's home region or the stream's content_store region): %w", b, region, err)
		}
	}
	return fmt.Errorf("check bucket %q: %w", b, err)
}

// bucketRegion reads the region S3 names in a redirect.
func bucketRegion(err error) string {
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.Header.Get("X-Amz-Bucket-Region")
	}
	return ""
}

func (s *store) encryptionWarning(ctx context.Context) (string, error) {
	b := s.loc.Bucket
	out, err := s.client.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String(b)})
	switch {
	case err == nil:
		if out.ServerSideEncryptionConfiguration != nil {
			for _, r := range out.ServerSideEncryptionConfiguration.Rules {
				if r.ApplyServerSideEncryptionByDefault != nil && r.ApplyServerSideEncryptionByDefault.SSEAlgorithm != "" {
					return "", nil
				}
			}
		}
	case apiCode(err) == "ServerSideEncryptionConfigurationNotFoundError":
	case httpStatus(err) == http.StatusForbidden:
		return fmt.Sprintf("Cannot read the default encryption of bucket %q (access denied); autoami encrypts every object it writes, but cannot tell whether the bucket does.", b), nil
	case isAPIError(err):
		// S3-compatible stores may not implement the call; that is no
		// reason to refuse the bucket.
		return fmt.Sprintf("Cannot read the default encryption of bucket %q (%s); autoami encrypts every object it writes, but cannot tell whether the bucket does.", b, apiCode(err)), nil
	default:
		return "", fmt.Errorf("read the default encryption of bucket %q: %w", b, err)
	}
	return fmt.Sprintf("Bucket %q has no default encryption: autoami encrypts every object it writes, but anything else written to the bucket is stored unencrypted.", b), nil
}

func (s *store) publicAccessWarning(ctx context.Context) (string, error) {
	b := s.loc.Bucket
	out, err := s.client.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: aws.String(b)})
	switch {
	case err == nil:
	case apiCode(err) == "NoSuchPublicAccessBlockConfiguration":
		return fmt.Sprintf("Bucket %q has no public access block: unless the account blocks public access, a bucket policy or ACL could make image content public.", b), nil
	case httpStatus(err) == http.StatusForbidden:
		return fmt.Sprintf("Cannot read the public access block of bucket %q (access denied); make sure public access is blocked.", b), nil
	case isAPIError(err):
		return fmt.Sprintf("Cannot read the public access block of bucket %q (%s); make sure public access is blocked.", b, apiCode(err)), nil
	default:
		return "", fmt.Errorf("read the public access block of bucket %q: %w", b, err)
	}
	off := publicAccessOff(out.PublicAccessBlockConfiguration)
	if len(off) == 0 {
		return "", nil
	}
	return fmt.Sprintf("Bucket %q does not fully block public access (%s off): unless the account blocks it, a bucket policy or ACL could make image content public.", b, strings.Join(off, ", ")), nil
}

// publicAccessOff lists the public access block settings that are not on.
func publicAccessOff(c *types.PublicAccessBlockConfiguration) []string {
	if c == nil {
		c = &types.PublicAccessBlockConfiguration{}
	}
	var off []string
	for _, f := range []struct {
		name string
		on   *bool
	}{
		{"BlockPublicAcls", c.BlockPublicAcls},
		{"IgnorePublicAcls", c.IgnorePublicAcls},
		{"BlockPublicPolicy", c.BlockPublicPolicy},
		{"RestrictPublicBuckets", c.RestrictPublicBuckets},
	} {
		if !aws.ToBool(f.on) {
			off = append(off, f.name)
		}
	}
	return off
}
