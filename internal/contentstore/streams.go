package contentstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

const (
	// maxRecordSize bounds a stream record read back (they are a few
	// hundred bytes; Extra is the caller's).
	maxRecordSize = 1 << 20
	// maxManifestSize bounds a manifest read back.
	maxManifestSize = 16 << 30
	// deleteBatch is DeleteObjects' limit.
	deleteBatch = 1000
)

func (s *store) putRevision(ctx context.Context, rec StreamRecord, m *manifest.Manifest) (string, error) {
	if err := s.valid(); err != nil {
		return "", err
	}
	if err := validateStreamName(rec.Name); err != nil {
		return "", fmt.Errorf("write revision: %w", err)
	}
	if err := validateRevision(rec.Revision); err != nil {
		return "", fmt.Errorf("write a revision of stream %q: %w", rec.Name, err)
	}
	what := fmt.Sprintf("revision %s of stream %q", rec.Revision, rec.Name)
	if m == nil {
		return "", fmt.Errorf("write %s: no manifest", what)
	}
	body, err := m.Marshal()
	if err != nil {
		return "", fmt.Errorf("write %s: manifest: %w", what, err)
	}
	sum := objects.Sum(body)
	switch rec.ManifestDigest {
	case "":
		rec.ManifestDigest = sum.String()
	case sum.String():
	default:
		return "", fmt.Errorf("write %s: the record's manifest digest %s is not the manifest's (%s)", what, rec.ManifestDigest, sum)
	}
	if err := checkKind(&rec, m); err != nil {
		return "", fmt.Errorf("write %s: %w", what, err)
	}
	// The manifest may only name objects the store holds.
	missing, err := s.missing(ctx, m.Objects())
	if err != nil {
		return "", fmt.Errorf("write %s: %w", what, err)
	}
	if len(missing) > 0 {
		var bytesMissing int64
		for _, w := range missing {
			bytesMissing += w.Size
		}
		return "", fmt.Errorf("write %s: the store lacks %d of the objects it names (%d bytes; e.g. %s), so the manifest was not written; upload them first: %w",
			what, len(missing), bytesMissing, s.uri(s.objectKey(missing[0].Digest)), objects.ErrNotFound)
	}
	if rec.CreatedAt.IsZero() {
		rec.CreatedAt = time.Now().UTC().Truncate(time.Second)
	}
	recBody, err := json.Marshal(rec)
	if err != nil {
		return "", fmt.Errorf("write %s: encode the stream record: %w", what, err)
	}
	recBody = append(recBody, '\n')

	key := s.manifestKey(rec.Name, rec.Revision)
	if err := s.putBytes(ctx, key, bytes.NewReader(body), int64(len(body)), sum, "application/octet-stream"); err != nil {
		return "", fmt.Errorf("write the manifest of %s to %s: %w", what, s.uri(key), s.bucketError("write to", err))
	}
	recKey := s.recordKey(rec.Name)
	if err := s.putBytes(ctx, recKey, bytes.NewReader(recBody), int64(len(recBody)), objects.Sum(recBody), "application/json"); err != nil {
		return "", fmt.Errorf("write the stream record of %s to %s: %w", what, s.uri(recKey), s.bucketError("write to", err))
	}
	return s.uri(key), nil
}

// checkKind fills in an empty Kind from the manifest and refuses one that
// does not suit it.
func checkKind(rec *StreamRecord, m *manifest.Manifest) error {
	want := manifest.KindTree
	switch rec.Kind {
	case "":
		rec.Kind = StreamKindTree
		if m.Kind == manifest.KindRawImage {
			rec.Kind = StreamKindRawImage
		}
		return nil
	case StreamKindTree, StreamKindLayered:
	case StreamKindRawImage:
		want = manifest.KindRawImage
	default:
		return fmt.Errorf("kind %q is none of %q, %q, %q", rec.Kind, StreamKindTree, StreamKindRawImage, StreamKindLayered)
	}
	if m.Kind != want {
		return fmt.Errorf("kind %q does not suit a manifest of kind %q", rec.Kind, string(rune(m.Kind)))
	}
	return nil
}

func (s *store) getStream(ctx context.Context, name string) (StreamRecord, bool, error) {
	if err := s.valid(); err != nil {
		return StreamRecord{}, false, err
	}
	if err := validateStreamName(name); err != nil {
		return StreamRecord{}, false, err
	}
	key := s.recordKey(name)
	body, found, err := s.read(ctx, key, maxRecordSize)
	if err != nil || !found {
		return StreamRecord{}, false, err
	}
	var rec StreamRecord
	if err := json.Unmarshal(body, &rec); err != nil {
		return StreamRecord{}, false, fmt.Errorf("stream record %s: %w", s.uri(key), err)
	}
	if rec.Name != name {
		return StreamRecord{}, false, fmt.Errorf("stream record %s names stream %q, not %q", s.uri(key), rec.Name, name)
	}
	return rec, true, nil
}

func (s *store) getManifest(ctx context.Context, stream, revision string) (*manifest.Manifest, error) {
	if err := s.valid(); err != nil {
		return nil, err
	}
	if err := validateStreamName(stream); err != nil {
		return nil, err
	}
	if err := validateRevision(revision); err != nil {
		return nil, fmt.Errorf("stream %q: %w", stream, err)
	}
	key := s.manifestKey(stream, revision)
	body, found, err := s.read(ctx, key, maxManifestSize)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("stream %q has no revision %s (no %s): %w", stream, revision, s.uri(key), objects.ErrNotFound)
	}
	m, err := manifest.Unmarshal(body)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", s.uri(key), err)
	}
	return m, nil
}

// read gets a small object whole; found is false when the key is missing.
// The SDK checks the SHA-256 S3 stored with it.
func (s *store) read(ctx context.Context, key string, limit int64) ([]byte, bool, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket:       aws.String(s.loc.Bucket),
		Key:          aws.String(key),
		ChecksumMode: types.ChecksumModeEnabled,
	})
	if err != nil {
		if isNotFound(err) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("read %s: %w", s.uri(key), s.bucketError("read", err))
	}
	defer out.Body.Close()
	if n := aws.ToInt64(out.ContentLength); n > limit {
		return nil, false, fmt.Errorf("read %s: %d bytes is more than the %d allowed", s.uri(key), n, limit)
	}
	body, err := io.ReadAll(io.LimitReader(out.Body, limit+1))
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", s.uri(key), err)
	}
	if int64(len(body)) > limit {
		return nil, false, fmt.Errorf("read %s: more than the %d bytes allowed", s.uri(key), limit)
	}
	return body, true, nil
}

func (s *store) deleteStream(ctx context.Context, name string) error {
	if err := s.valid(); err != nil {
		return err
	}
	if err := validateStreamName(name); err != nil {
		return err
	}
	manifests, err := s.listManifests(ctx, name)
	if err != nil {
		return fmt.Errorf("delete stream %q: %w", name, err)
	}
	recKey := s.recordKey(name)
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.loc.Bucket), Key: aws.String(recKey)}); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete stream %q: delete %s: %w", name, s.uri(recKey), s.bucketError("delete from", err))
	}
	for start := 0; start < len(manifests); start += deleteBatch {
		batch := manifests[start:min(start+deleteBatch, len(manifests))]
		ids := make([]types.ObjectIdentifier, len(batch))
		for i, k := range batch {
			ids[i] = types.ObjectIdentifier{Key: aws.String(k)}
		}
		out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(s.loc.Bucket),
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return fmt.Errorf("delete stream %q: delete %d manifests: %w", name, len(batch), s.bucketError("delete from", err))
		}
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			return fmt.Errorf("delete stream %q: %d manifests were not deleted; %s: %s: %s",
				name, len(out.Errors), s.uri(aws.ToString(e.Key)), aws.ToString(e.Code), aws.ToString(e.Message))
		}
	}
	return nil
}

// listManifests lists the keys of a stream's manifests: the direct children
// of its revisions/ that end in .manifest. The delimiter keeps out nested
// streams (a stream "web/revisions" lives in "web"'s revisions/ folder, but
// in sub-folders and under names that are not manifests).
func (s *store) listManifests(ctx context.Context, name string) ([]string, error) {
	prefix := s.revisionsPrefix(name)
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket:    aws.String(s.loc.Bucket),
		Prefix:    aws.String(prefix),
		Delimiter: aws.String("/"),
	})
	var keys []string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", s.uri(prefix), s.bucketError("read", err))
		}
		for _, o := range page.Contents {
			k := aws.ToString(o.Key)
			rest := strings.TrimPrefix(k, prefix)
			if strings.HasSuffix(rest, manifestSuffix) && !strings.Contains(rest, "/") {
				keys = append(keys, k)
			}
		}
	}
	return keys, nil
}
