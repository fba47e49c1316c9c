package contentstore

import (
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// Defaults for Options.
const (
	defaultUploads            = 8
	defaultMultipartThreshold = 16 << 20
	// minPartSize is S3's smallest part (all but the last); a smaller
	// MultipartThreshold is raised to it.
	minPartSize = 5 << 20
	// maxPartSize bounds the part size (and so the transfer manager's part
	// buffers) for ordinary objects; the manager raises it for objects that
	// would need more than 10 000 parts.
	maxPartSize = 8 << 20
	// partConcurrency is how many parts of one object are sent at once, and
	// multipartObjects how many multipart objects are in flight at once:
	// together they bound the transfer manager's buffers to about
	// multipartObjects × (partConcurrency+1) × part size.
	partConcurrency  = 4
	multipartObjects = 2
	// memoryObjectLimit: objects up to this size are verified in memory,
	// larger ones in a spool file.
	memoryObjectLimit = 4 << 20
	// checkConcurrency bounds concurrent existence checks.
	checkConcurrency = 16
)

type store struct {
	client S3API
	loc    Location
	opts   Options

	partSize  int64
	transfers *transfermanager.Client
	// multipart limits the multipart uploads in flight.
	multipart chan struct{}
}

func newStore(client S3API, loc Location, opts Options) *Store {
	loc.Prefix = normalizePrefix(loc.Prefix)
	if opts.Uploads <= 0 {
		opts.Uploads = defaultUploads
	}
	if opts.MultipartThreshold <= 0 {
		opts.MultipartThreshold = defaultMultipartThreshold
	}
	opts.MultipartThreshold = max(opts.MultipartThreshold, minPartSize)
	partSize := min(opts.MultipartThreshold, maxPartSize)
	s := &Store{store{
		client:    client,
		loc:       loc,
		opts:      opts,
		partSize:  partSize,
		multipart: make(chan struct{}, multipartObjects),
	}}
	s.transfers = transfermanager.New(client, func(o *transfermanager.Options) {
		o.PartSizeBytes = partSize
		o.MultipartUploadThreshold = opts.MultipartThreshold
		o.Concurrency = partConcurrency
		// Abort a failed multipart upload even when the caller's context
		// is what failed, so no parts are left to be billed.
		o.FailTimeout = abortTimeout
	})
	return s
}

// normalizePrefix makes a prefix "" or end in exactly one "/", without a
// leading "/" (an S3 key starting with "/" is almost always a mistake).
func normalizePrefix(p string) string {
	p = strings.TrimLeft(p, "/")
	if p == "" {
		return ""
	}
	return strings.TrimRight(p, "/") + "/"
}

// valid checks the location before any request is made.
func (s *store) valid() error {
	if s.loc.Bucket == "" {
		return fmt.Errorf("content store: no bucket given")
	}
	if strings.ContainsAny(s.loc.Bucket, "/ ") {
		return fmt.Errorf("content store: bucket name %q is not a bucket name", s.loc.Bucket)
	}
	return nil
}

func (s *store) uri(key string) string { return "s3://" + s.loc.Bucket + "/" + key }

func (s *store) objectsPrefix() string { return s.loc.Prefix + "objects/" }

func (s *store) shardPrefix(shard byte) string {
	return fmt.Sprintf("%s%02x/", s.objectsPrefix(), shard)
}

func (s *store) objectKey(d objects.Digest) string {
	return s.shardPrefix(d[0]) + d.String()
}

func (s *store) streamPrefix(stream string) string { return s.loc.Prefix + "streams/" + stream + "/" }

func (s *store) revisionsPrefix(stream string) string { return s.streamPrefix(stream) + "revisions/" }

func (s *store) manifestKey(stream, revision string) string {
	return s.revisionsPrefix(stream) + revision + manifestSuffix
}

func (s *store) recordKey(stream string) string { return s.streamPrefix(stream) + "stream.json" }

func (s *store) manifestURI(stream, revision string) string {
	return s.uri(s.manifestKey(stream, revision))
}

const manifestSuffix = ".manifest"
