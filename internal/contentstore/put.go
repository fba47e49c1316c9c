package contentstore

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// putObject stores one verified object under its name.
func (s *store) putObject(ctx context.Context, j *uploadJob) error {
	key := s.objectKey(j.want.Digest)
	var err error
	if j.want.Size >= s.opts.MultipartThreshold {
		err = s.putMultipart(ctx, key, j)
	} else {
		err = s.putBytes(ctx, key, j.body(), j.want.Size, j.want.Digest, "application/octet-stream")
	}
	if err != nil {
		return fmt.Errorf("upload object %s (%d bytes): %w", s.uri(key), j.want.Size, s.bucketError("write to", err))
	}
	return nil
}

// putBytes writes one object in a single PutObject. The body is seekable and
// its length and SHA-256 are given, so the SDK neither computes another
// checksum nor frames the body (aws-chunked): what goes on the wire is the
// object, and S3 itself checks it against its digest.
func (s *store) putBytes(ctx context.Context, key string, body io.ReadSeeker, size int64, sum objects.Digest, contentType string) error {
	in := &s3.PutObjectInput{
		Bucket:         aws.String(s.loc.Bucket),
		Key:            aws.String(key),
		Body:           body,
		ContentLength:  aws.Int64(size),
		ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum[:])),
		ContentType:    aws.String(contentType),
	}
	in.ServerSideEncryption, in.SSEKMSKeyId = s.encryption()
	_, err := s.client.PutObject(ctx, in)
	return err
}

// putMultipart uploads a large object in parts through the SDK's transfer
// manager, which sizes the parts (at most 10 000), sends them in parallel
// with per-part checksums, completes the upload and aborts it on failure.
func (s *store) putMultipart(ctx context.Context, key string, j *uploadJob) error {
	select {
	case s.multipart <- struct{}{}:
		defer func() { <-s.multipart }()
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	sse, kmsKey := s.encryption()
	_, err := s.transfers.UploadObject(ctx, &transfermanager.UploadObjectInput{
		Bucket:               aws.String(s.loc.Bucket),
		Key:                  aws.String(key),
		Body:                 j.body(),
		ContentType:          aws.String("application/octet-stream"),
		ServerSideEncryption: tmtypes.ServerSideEncryption(sse),
		SSEKMSKeyID:          kmsKey,
	})
	return err
}

// encryption is the server-side encryption of every object the store writes.
func (s *store) encryption() (types.ServerSideEncryption, *string) {
	if s.opts.KMSKeyID != "" {
		return types.ServerSideEncryptionAwsKms, aws.String(s.opts.KMSKeyID)
	}
	return types.ServerSideEncryptionAes256, nil
}
