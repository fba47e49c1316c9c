package contentstore

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// MaxPresignExpiry is the longest validity S3 gives a presigned URL
// (Signature Version 4: seven days).
const MaxPresignExpiry = 7 * 24 * time.Hour

func (s *store) putData(ctx context.Context, data []byte) (objects.Digest, bool, error) {
	want := objects.Want{Digest: objects.Sum(data), Size: int64(len(data))}
	missing, err := s.missing(ctx, []objects.Want{want})
	if err != nil {
		return want.Digest, false, err
	}
	if len(missing) == 0 {
		return want.Digest, false, nil
	}
	if _, err := s.upload(ctx, dataSource{data}, missing); err != nil {
		return want.Digest, false, err
	}
	return want.Digest, true, nil
}

// dataSource is an objects.Source of one object held in memory.
type dataSource struct{ data []byte }

func (src dataSource) Fetch(ctx context.Context, want []objects.Want, sink objects.Sink) error {
	for _, w := range want {
		if err := sink.Put(ctx, w, bytes.NewReader(src.data)); err != nil {
			return err
		}
	}
	return nil
}

func (s *store) presignObject(ctx context.Context, p GetPresigner, d objects.Digest, expires time.Duration) (string, error) {
	if err := s.valid(); err != nil {
		return "", err
	}
	if expires <= 0 || expires > MaxPresignExpiry {
		return "", fmt.Errorf("presign object %s: expiry %s is not between 0 and %s", d, expires, MaxPresignExpiry)
	}
	key := s.objectKey(d)
	req, err := p.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.loc.Bucket), Key: aws.String(key)},
		s3.WithPresignExpires(expires))
	if err != nil {
		return "", fmt.Errorf("presign GET of %s: %w", s.uri(key), err)
	}
	return req.URL, nil
}
