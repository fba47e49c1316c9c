package imagestream

import (
	"context"
	"fmt"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/contentstore"
)

func upload(ctx context.Context, store *contentstore.Store, stream string, c *Content, createdAt time.Time, extra map[string]string) (Uploaded, error) {
	want := c.Manifest.Objects()
	missing, err := store.Missing(ctx, want)
	if err != nil {
		return Uploaded{}, fmt.Errorf("check which objects of stream %q the store lacks: %w", stream, err)
	}
	up, err := store.Upload(ctx, c.Objects, missing)
	if err != nil {
		return Uploaded{}, fmt.Errorf("upload %d objects of stream %q from %s: %w", len(missing), stream, c.Path, err)
	}
	rec := contentstore.StreamRecord{
		Name:           stream,
		Revision:       c.Revision,
		ManifestDigest: c.ManifestDigest.String(),
		CreatedAt:      createdAt.UTC().Truncate(time.Second),
		Kind:           string(c.Source.Kind),
		SizeBytes:      c.Summary.Bytes,
		FileCount:      int64(c.Summary.Regular),
		BaseImageName:  c.Source.BaseImageName,
		Extra:          extra,
	}
	if c.Source.Kind == KindRawImage {
		rec.FileCount = 0
	}
	uri, err := store.PutRevision(ctx, rec, c.Manifest)
	if err != nil {
		return Uploaded{}, fmt.Errorf("write revision %s of stream %q: %w", c.Revision, stream, err)
	}
	return Uploaded{ManifestURI: uri, ObjectsUploaded: up.Objects, BytesUploaded: up.Bytes, Record: rec}, nil
}
