package publisher

import (
	"context"
	"errors"
	"fmt"

	"github.com/autoami/terraform-provider-autoami/internal/contentstore"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// ErrLayeredStream is wrapped by the error for a layered stream's revision,
// which this version does not publish.
var ErrLayeredStream = errors.New("layered streams cannot be published yet")

// revision is what every target needs to know of the revision, read once.
type revision struct {
	manifest *manifest.Manifest
	kind     manifest.Kind
	// contentBytes is what the volume holds: regular files, or the image.
	contentBytes int64
	// volumeGiB is the size of a stream volume (and so of its snapshot).
	volumeGiB int32
}

const gib = 1 << 30

// Room a from-scratch stream volume needs besides its files: the BIOS boot
// and EFI system partitions, the ext4 journal and inode tables.
const volumeOverhead = 256 << 20

// streamVolumeGiB sizes a stream volume for a tree of contentBytes: 25 %
// headroom (fetched objects are staged on the volume before they replace
// the files they change) plus the overhead, rounded up to GiB.
func streamVolumeGiB(contentBytes int64) int32 {
	need := contentBytes + contentBytes/4 + volumeOverhead
	return int32((need + gib - 1) / gib)
}

// loadRevision reads the revision's manifest from the content store and
// refuses what this version cannot publish.
func loadRevision(ctx context.Context, store *contentstore.Store, stream, rev string) (*revision, error) {
	m, err := store.GetManifest(ctx, stream, rev)
	if err != nil {
		return nil, fmt.Errorf("revision %s of stream %q: %w", rev, stream, err)
	}
	d, err := m.Digest()
	if err != nil {
		return nil, fmt.Errorf("revision %s of stream %q: %w", rev, stream, err)
	}
	if d.String() != rev {
		// A tree or raw revision is its manifest's digest; a layered
		// revision is a digest over base image, overlay and trigger.
		if rec, found, err := store.GetStream(ctx, stream); err == nil && found && rec.Revision == rev && rec.Kind != contentstore.StreamKindLayered {
			return nil, fmt.Errorf("revision %s of stream %q: the manifest's digest is %s (stream kind %s)", rev, stream, d, rec.Kind)
		}
		return nil, fmt.Errorf("revision %s of stream %q is a layered stream's revision: %w (a later version will)", rev, stream, ErrLayeredStream)
	}
	sum := m.Summarize()
	r := &revision{manifest: m, kind: m.Kind, contentBytes: sum.Bytes}
	switch m.Kind {
	case manifest.KindTree:
		r.volumeGiB = streamVolumeGiB(sum.Bytes)
	case manifest.KindRawImage:
		r.volumeGiB = int32((m.Image.Size + gib - 1) / gib)
	default:
		return nil, fmt.Errorf("revision %s of stream %q: manifest of unknown kind %q", rev, stream, m.Kind)
	}
	return r, nil
}

// objectDigests parses the hex digests a daemon asks for.
func objectDigests(hashes []string) ([]objects.Digest, error) {
	out := make([]objects.Digest, len(hashes))
	for i, h := range hashes {
		d, err := objects.ParseDigest(h)
		if err != nil {
			return nil, fmt.Errorf("the unpacker asked for %q: %w", h, err)
		}
		out[i] = d
	}
	return out, nil
}
