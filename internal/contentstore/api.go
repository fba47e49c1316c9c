// Package contentstore keeps image-stream revisions in S3: content objects
// addressed by SHA-256, one manifest per revision, and one small record per
// stream naming its current revision. It knows no Terraform; the
// autoami_image_stream resource and the publisher use it.
//
// Layout under Location.Prefix:
//
//	objects/<hh>/<sha256-hex>                     content objects (file contents, raw image blocks)
//	streams/<stream>/revisions/<revision>.manifest  a revision's canonical manifest
//	streams/<stream>/stream.json                  the stream record (StreamRecord)
//
// Every object is written with server-side encryption. A revision's manifest
// is written only after every object it names is in the store, and the stream
// record after the manifest, so a reader never finds a manifest naming a
// missing object. Deleting a stream removes its manifests and record; content
// objects may be shared by other streams and are left for garbage collection.
package contentstore

import (
	"context"
	"errors"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// Location is a content store: a bucket and a key prefix ("" or ending in "/").
type Location struct {
	Bucket string
	Prefix string
}

// S3API is the part of the S3 client the store uses.
type S3API interface {
	s3.HeadBucketAPIClient
	s3.ListObjectsV2APIClient
	HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	DeleteObject(context.Context, *s3.DeleteObjectInput, ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
	DeleteObjects(context.Context, *s3.DeleteObjectsInput, ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error)
	CreateMultipartUpload(context.Context, *s3.CreateMultipartUploadInput, ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	UploadPart(context.Context, *s3.UploadPartInput, ...func(*s3.Options)) (*s3.UploadPartOutput, error)
	CompleteMultipartUpload(context.Context, *s3.CompleteMultipartUploadInput, ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	AbortMultipartUpload(context.Context, *s3.AbortMultipartUploadInput, ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
	GetBucketEncryption(context.Context, *s3.GetBucketEncryptionInput, ...func(*s3.Options)) (*s3.GetBucketEncryptionOutput, error)
	GetPublicAccessBlock(context.Context, *s3.GetPublicAccessBlockInput, ...func(*s3.Options)) (*s3.GetPublicAccessBlockOutput, error)
}

// Options tune a Store.
type Options struct {
	// Uploads is how many objects are uploaded at once; 0 means 8.
	Uploads int
	// MultipartThreshold: objects at least this large are uploaded in parts;
	// 0 means 16 MiB.
	MultipartThreshold int64
	// KMSKeyID, when set, encrypts objects with SSE-KMS under this key;
	// otherwise SSE-S3 (AES256).
	KMSKeyID string
	// Progress, when set, is called as objects finish uploading, one call
	// at a time; it should return quickly.
	Progress func(UploadProgress)
	// TempDir is where objects too large to verify in memory are spooled
	// before upload; empty means os.TempDir(). Spool files are unlinked at
	// once, so nothing is left behind even after a crash.
	TempDir string
}

// Errors that callers map to configuration problems (the bucket attribute).
var (
	// ErrBucketNotFound is wrapped by errors for a bucket that does not exist.
	ErrBucketNotFound = errors.New("bucket does not exist")
	// ErrAccessDenied is wrapped by errors for a bucket or key these
	// credentials may not read or write (HTTP 403).
	ErrAccessDenied = errors.New("access denied")
)

// UploadProgress reports an upload in flight.
type UploadProgress struct {
	ObjectsDone, ObjectsTotal int
	BytesDone, BytesTotal     int64
}

// Store is a content store in one bucket. Safe for concurrent use.
type Store struct{ store }

// New returns the store at loc, using client (in the bucket's region).
func New(client S3API, loc Location, opts Options) *Store { return newStore(client, loc, opts) }

// Location returns where the store is.
func (s *Store) Location() Location { return s.loc }

// BucketCheck is what Check learned about the bucket.
type BucketCheck struct {
	// Warnings are problems that do not stop autoami: no default encryption,
	// public access not fully blocked. Each is one sentence naming the bucket.
	Warnings []string
}

// Check verifies that the bucket exists and is reachable with these
// credentials (an error says which), and reports weaker settings as warnings.
func (s *Store) Check(ctx context.Context) (BucketCheck, error) { return s.check(ctx) }

// Missing returns the wanted objects the store lacks, checking existence in
// batches (listing a shard of keys when many objects fall in it, HeadObject
// otherwise), with bounded concurrency.
func (s *Store) Missing(ctx context.Context, want []objects.Want) ([]objects.Want, error) {
	return s.missing(ctx, want)
}

// UploadResult counts what an upload sent.
type UploadResult struct {
	Objects int
	Bytes   int64
}

// Upload copies the wanted objects from src into the store (bounded parallel
// uploads, multipart for large objects). Each object is verified against its
// digest before it is stored under its name; a mismatch (the source changed
// since its manifest was built) is an error wrapping objects.ErrMismatch and
// stores nothing under that name.
func (s *Store) Upload(ctx context.Context, src objects.Source, want []objects.Want) (UploadResult, error) {
	return s.upload(ctx, src, want)
}

// StreamRecord is the stream.json of a stream.
type StreamRecord struct {
	Name     string `json:"name"`
	Revision string `json:"revision"`
	// ManifestDigest is the SHA-256 of the revision's manifest (for layered
	// streams: the overlay's), hex.
	ManifestDigest string    `json:"manifest_digest"`
	CreatedAt      time.Time `json:"created_at"`
	Kind           string    `json:"kind"` // StreamKindTree, StreamKindRawImage or StreamKindLayered
	SizeBytes      int64     `json:"size_bytes"`
	FileCount      int64     `json:"file_count"`
	// BaseImageName is the base image of a layered stream.
	BaseImageName string `json:"base_image_name,omitempty"`
	// Extra carries resource-specific fields the store does not interpret.
	Extra map[string]string `json:"extra,omitempty"`
}

// Stream kinds (StreamRecord.Kind).
const (
	StreamKindTree     = "tree"
	StreamKindRawImage = "raw_image"
	StreamKindLayered  = "layered"
)

// PutRevision writes a revision's manifest (after checking that every object
// it names is in the store) and then the stream record. It returns the
// manifest's s3:// URI. rec.Name is the stream; rec.Revision is 1–128
// characters of [A-Za-z0-9._-] (a hex digest in practice); an empty
// ManifestDigest is filled in, a wrong one is an error; Kind must suit m.
// A missing object is an error wrapping objects.ErrNotFound, and then
// nothing is written.
func (s *Store) PutRevision(ctx context.Context, rec StreamRecord, m *manifest.Manifest) (string, error) {
	return s.putRevision(ctx, rec, m)
}

// GetStream reads a stream record; found is false when the stream has none.
func (s *Store) GetStream(ctx context.Context, name string) (rec StreamRecord, found bool, err error) {
	return s.getStream(ctx, name)
}

// GetManifest reads and validates a revision's manifest.
func (s *Store) GetManifest(ctx context.Context, stream, revision string) (*manifest.Manifest, error) {
	return s.getManifest(ctx, stream, revision)
}

// RevisionTime is when a revision of a stream was made: the stream
// record's creation time while the revision is the stream's current one,
// else when its manifest was written. A revision the store does not hold
// is an error wrapping objects.ErrNotFound.
func (s *Store) RevisionTime(ctx context.Context, stream, revision string) (time.Time, error) {
	return s.revisionTime(ctx, stream, revision)
}

// ManifestURI is the s3:// URI of a revision's manifest.
func (s *Store) ManifestURI(stream, revision string) string { return s.manifestURI(stream, revision) }

// ObjectKey is the key of a content object (for presigning GETs).
func (s *Store) ObjectKey(d objects.Digest) string { return s.objectKey(d) }

// PutData stores data as a content object under its digest, unless the
// store holds it already, and returns the digest and whether it uploaded.
// For single objects that are not part of a revision (the unpacker binary).
func (s *Store) PutData(ctx context.Context, data []byte) (d objects.Digest, uploaded bool, err error) {
	return s.putData(ctx, data)
}

// GetPresigner presigns S3 GETs; *s3.PresignClient is one.
type GetPresigner interface {
	PresignGetObject(ctx context.Context, params *s3.GetObjectInput, optFns ...func(*s3.PresignOptions)) (*v4.PresignedHTTPRequest, error)
}

// PresignObject returns a URL that GETs content object d for expires (at
// most MaxPresignExpiry; with temporary credentials the URL also ends when
// they do). It grants that one GET and nothing else; whoever holds it needs
// no AWS credentials.
func (s *Store) PresignObject(ctx context.Context, p GetPresigner, d objects.Digest, expires time.Duration) (string, error) {
	return s.presignObject(ctx, p, d, expires)
}

// PresignManifest returns a URL that GETs a revision's manifest for expires
// (at most MaxPresignExpiry): the manifest URL of an unpack request. Like
// PresignObject it grants that one GET and nothing else.
func (s *Store) PresignManifest(ctx context.Context, p GetPresigner, stream, revision string, expires time.Duration) (string, error) {
	return s.presignManifest(ctx, p, stream, revision, expires)
}

// DeleteStream removes a stream's manifests and record; objects stay. It
// deletes the record first, so an interrupted delete leaves no record naming
// a deleted manifest, and a repeated delete finishes the rest. Streams nested
// under the name ("web" and "web/al2023") are left alone.
func (s *Store) DeleteStream(ctx context.Context, name string) error {
	return s.deleteStream(ctx, name)
}

// ValidateStreamName checks a stream name: 1–128 characters of [a-z0-9._-]
// in slash-separated segments, no empty, "." or ".." segment.
func ValidateStreamName(name string) error { return validateStreamName(name) }
