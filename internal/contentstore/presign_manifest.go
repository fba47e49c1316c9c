package contentstore

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func (s *store) presignManifest(ctx context.Context, p GetPresigner, stream, revision string, expires time.Duration) (string, error) {
	if err := s.valid(); err != nil {
		return "", err
	}
	if err := validateStreamName(stream); err != nil {
		return "", err
	}
	if err := validateRevision(revision); err != nil {
		return "", fmt.Errorf("stream %q: %w", stream, err)
	}
	if expires <= 0 || expires > MaxPresignExpiry {
		return "", fmt.Errorf("presign manifest of stream %q revision %s: expiry %s is not between 0 and %s", stream, revision, expires, MaxPresignExpiry)
	}
	key := s.manifestKey(stream, revision)
	req, err := p.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.loc.Bucket), Key: aws.String(key)},
		s3.WithPresignExpires(expires))
	if err != nil {
		return "", fmt.Errorf("presign GET of %s: %w", s.uri(key), err)
	}
	return req.URL, nil
}
