package daemon

import (
	"bytes"
	"context"
	"fmt"
	"net/url"

	"github.com/klauspost/compress/zstd"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// maxManifestBytes bounds a manifest download (a tree of millions of files
// is a few hundred MiB).
const maxManifestBytes = 1 << 30

var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// fetchManifest downloads a manifest (plain or zstd-compressed), parses it
// and checks that its digest is the revision asked for: a presigned URL is
// not trusted to name the right content. It also returns the manifest's
// canonical serialization (what it parsed: Unmarshal accepts nothing else).
func (d *daemon) fetchManifest(ctx context.Context, rawURL, revision string) (*manifest.Manifest, []byte, error) {
	where := redactURL(rawURL)
	// The same downloader, and so the same retries, as the objects.
	b, err := d.fetcher.GetBytes(ctx, rawURL, maxManifestBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("fetch manifest of revision %s: %w", revision, err)
	}
	if bytes.HasPrefix(b, zstdMagic) {
		dec, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(maxManifestBytes))
		if err != nil {
			return nil, nil, err
		}
		b, err = dec.DecodeAll(b, nil)
		dec.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("decompress manifest of revision %s from %s: %w", revision, where, err)
		}
	}
	m, err := manifest.Unmarshal(b)
	if err != nil {
		return nil, nil, fmt.Errorf("manifest of revision %s from %s: %w", revision, where, err)
	}
	got, err := m.Digest()
	if err != nil {
		return nil, nil, fmt.Errorf("digest of manifest from %s: %w", where, err)
	}
	if got.String() != revision {
		return nil, nil, wire.Errorf(wire.CodeBadRequest, "manifest from %s has digest %s, not the revision %s asked for", where, got, revision)
	}
	return m, b, nil
}

// redactURL keeps scheme, host and path: the query of a presigned URL is a
// credential and never goes into logs or errors.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host + u.Path
}
