package contentstore

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

func (s *store) revisionTime(ctx context.Context, stream, revision string) (time.Time, error) {
	rec, found, err := s.getStream(ctx, stream)
	if err != nil {
		return time.Time{}, err
	}
	if found && rec.Revision == revision && !rec.CreatedAt.IsZero() {
		return rec.CreatedAt.UTC(), nil
	}
	if err := validateRevision(revision); err != nil {
		return time.Time{}, fmt.Errorf("stream %q: %w", stream, err)
	}
	// An older revision: its manifest is written once per upload of the
	// revision, so its time is when the revision was (last) made.
	key := s.manifestKey(stream, revision)
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.loc.Bucket), Key: aws.String(key)})
	if err != nil {
		if isNotFound(err) {
			return time.Time{}, fmt.Errorf("stream %q has no revision %s (no %s): %w", stream, revision, s.uri(key), objects.ErrNotFound)
		}
		return time.Time{}, fmt.Errorf("read %s: %w", s.uri(key), s.bucketError("read", err))
	}
	if out.LastModified == nil {
		return time.Time{}, fmt.Errorf("read %s: S3 gave no LastModified", s.uri(key))
	}
	return out.LastModified.UTC(), nil
}
