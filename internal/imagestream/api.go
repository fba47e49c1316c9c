// Package imagestream turns the content on the machine that runs Terraform
// into image-stream revisions: it reads a source (a root filesystem directory
// or tarball, an overlay on a base image, or a raw disk image), computes the
// revision digest, and uploads the revision to a content store, sending only
// the objects the store lacks. It knows no Terraform; the
// autoami_image_stream resource is a thin layer over it. (Publishing, making
// a revision an AMI in targets, is the publisher's job, not this package's.)
//
// Plans and applies both call Load: plans to show the revision that apply
// will upload, applies to upload it. Load is fast on unchanged sources: a
// directory is rescanned through the content model's stat cache, and a
// tarball's or raw image's manifest is cached by the file's identity (path,
// size, mtime, ctime, inode), all under a cache directory.
package imagestream

import (
	"context"
	"io"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/contentstore"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// SourceKind says where a stream's content comes from.
type SourceKind string

// The source kinds (also the stream record's Kind).
const (
	KindTree     SourceKind = "tree"      // a complete root filesystem
	KindLayered  SourceKind = "layered"   // a base AMI plus an optional overlay
	KindRawImage SourceKind = "raw_image" // a raw disk image, in 512 KiB blocks
)

// Source says what a revision is made of. Exactly one of Directory,
// Tarball and RawImage is set for KindTree and KindRawImage; for KindLayered,
// BaseImageName is set and Directory or Tarball (the overlay) may be.
type Source struct {
	Kind      SourceKind
	Directory string
	Tarball   string
	RawImage  string
	// BaseImageName identifies the base image of a layered stream by name
	// (AMI IDs differ per region for the same content).
	BaseImageName string
	// RebuildTrigger, for layered streams, is part of the revision: changing
	// it makes a new revision from the same content.
	RebuildTrigger string
}

// Content is a loaded source: its manifest (the overlay's, for a layered
// stream), revision and a way to read its objects.
type Content struct {
	Source   Source
	Manifest *manifest.Manifest
	// ManifestDigest is Manifest's digest.
	ManifestDigest objects.Digest
	// Revision is the stream revision: the manifest digest for tree and raw
	// streams, a digest over base image name, overlay and trigger for
	// layered ones. Hex.
	Revision string
	Summary  manifest.Summary
	// Objects serves the content objects from the source.
	Objects objects.Source
	// Path names the source for messages ("root_filesystem.directory /srv/rootfs").
	Path string

	closers []io.Closer
}

// Close releases what Load opened (a raw image's file).
func (c *Content) Close() error { return c.close() }

// LoadOptions tune Load.
type LoadOptions struct {
	// CacheDir holds stat caches and cached manifests; empty disables caching.
	CacheDir string
	// MaxTarSize bounds the content a tarball may declare; 0 is the content
	// model's default.
	MaxTarSize int64
}

// Load reads a source. Errors name the source path and what is wrong with it
// (missing, unreadable, an unsafe tarball member).
func Load(ctx context.Context, src Source, opts LoadOptions) (*Content, error) {
	return load(ctx, src, opts)
}

// CheckDirectorySource says whether a directory source given in block
// ("root_filesystem" or "overlay") can be read on this system: nil on
// Linux; elsewhere (ownership, xattrs and device nodes cannot be read as a
// Linux root filesystem holds them) an error naming block.directory and
// suggesting a tarball. Plans call it before reading anything; Load refuses
// a directory source with the same error.
func CheckDirectorySource(block string) error {
	return directorySourceError(block, manifest.DirectorySupport())
}

// Uploaded is what Upload did.
type Uploaded struct {
	ManifestURI     string
	ObjectsUploaded int
	BytesUploaded   int64
	Record          contentstore.StreamRecord
}

// Upload puts the revision c into store: it uploads the objects of c that
// store lacks, then writes the revision's manifest and the stream record,
// dated createdAt.
func Upload(ctx context.Context, store *contentstore.Store, stream string, c *Content, createdAt time.Time, extra map[string]string) (Uploaded, error) {
	return upload(ctx, store, stream, c, createdAt, extra)
}

// LayeredRevision is the revision of a layered stream.
func LayeredRevision(baseImageName string, overlay objects.Digest, trigger string) string {
	return layeredRevision(baseImageName, overlay, trigger)
}
