// Package objects is autoami's content-addressed object store: every piece of
// image content (a regular file's bytes, or one 512 KiB block of a raw image)
// is an object named by the SHA-256 of its bytes.
//
// The patch engine consumes objects through two small interfaces: a Source
// delivers the objects the engine lacks, and a Sink (provided by the engine)
// keeps an object only after it has hashed to the digest it was asked for, so a
// corrupt, truncated or substituted object is an error and is never written
// under its name. The usual flow in the unpacker daemon is:
//
//	plan := patch.Prepare(...)          // scans the volume
//	missing := plan.Missing()           // "what do you lack": []objects.Want
//	src := objects.NewURLSource(fetcher) // provider presigns URLs for missing
//	src.Supply(batch1); src.Supply(batch2); src.Done()
//	plan.Apply(ctx, src)                // fetches as URLs arrive, verifies, patches
//
// LocalStore keeps objects in a directory (the provider's cache, tests, the
// engine's staging area); HTTPFetcher downloads one object from a presigned URL
// with retries (one layer of them: see HTTPFetcher).
package objects

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// Digest is the SHA-256 of an object's bytes; it is the object's name.
type Digest [sha256.Size]byte

// Sum returns the digest of b.
func Sum(b []byte) Digest { return sha256.Sum256(b) }

// ParseDigest parses the 64-character lower-case hex form that String returns.
func ParseDigest(s string) (Digest, error) { return parseDigest(s) }

// String is the 64-character lower-case hex form of d.
func (d Digest) String() string { return d.hex() }

// IsZero reports whether d is the all-zero value (no digest), which is not the
// digest of any content.
func (d Digest) IsZero() bool { return d == Digest{} }

// Want names one object the caller needs: its digest and exact size. The size
// bounds every download and copy, so a server that sends more (or less) is
// caught before the hash is even checked.
type Want struct {
	Digest Digest
	Size   int64
}

// MaxObjectSize bounds the size of a single object (1 TiB); a larger declared
// size is rejected as bad input rather than attempted.
const MaxObjectSize int64 = 1 << 40

// ErrMismatch is wrapped by every error that reports content whose size or
// SHA-256 differ from what was asked for.
var ErrMismatch = errors.New("object content does not match its digest")

// ErrNotFound is wrapped by errors for objects a store does not hold.
var ErrNotFound = errors.New("object not found")

// Sink receives objects. Put reads the object from r, verifies that it is
// exactly want.Size bytes hashing to want.Digest, and keeps it only then; on a
// mismatch it keeps nothing and returns an error wrapping ErrMismatch. Put is
// safe for concurrent use and idempotent.
type Sink interface {
	Put(ctx context.Context, want Want, r io.Reader) error
}

// Source delivers objects. Fetch obtains every object in want and passes each
// to sink.Put, possibly concurrently, returning the first error. Fetch returns
// only when every wanted object has been put, or with an error.
type Source interface {
	Fetch(ctx context.Context, want []Want, sink Sink) error
}

// Store is a place that holds objects.
type Store interface {
	Sink
	Source
	// Has reports whether the store holds the object.
	Has(ctx context.Context, d Digest) (bool, error)
	// Open returns the object's bytes; the error wraps ErrNotFound when the
	// store lacks it.
	Open(ctx context.Context, d Digest) (io.ReadCloser, error)
}

// Copy copies exactly want.Size bytes from r to w while hashing them and fails
// with an error wrapping ErrMismatch when r holds fewer or more bytes or their
// digest differs. Callers write to a temporary place and keep it only on success.
func Copy(w io.Writer, r io.Reader, want Want) error { return verifiedCopy(w, r, want) }

// LocalStore holds objects as files named by their hex digest in a directory
// tree (ab/abcdef…), written through a temporary file and a rename.
type LocalStore struct {
	dir string
}

// OpenLocalStore uses dir (created if missing) as a LocalStore.
func OpenLocalStore(dir string) (*LocalStore, error) { return openLocalStore(dir) }

// Dir is the store's directory.
func (s *LocalStore) Dir() string { return s.dir }

// Path is where the store keeps object d (which may not exist).
func (s *LocalStore) Path(d Digest) string { return s.path(d) }

// Has reports whether the store holds d.
func (s *LocalStore) Has(ctx context.Context, d Digest) (bool, error) { return s.has(d) }

// Open opens object d for reading.
func (s *LocalStore) Open(ctx context.Context, d Digest) (io.ReadCloser, error) { return s.open(d) }

// Put stores an object after verifying it (see Sink).
func (s *LocalStore) Put(ctx context.Context, want Want, r io.Reader) error {
	return s.put(ctx, want, r)
}

// Ingest stores content whose digest is not known in advance and returns its
// digest and size.
func (s *LocalStore) Ingest(ctx context.Context, r io.Reader) (Want, error) { return s.ingest(ctx, r) }

// Fetch puts the wanted objects from this store into sink (see Source).
func (s *LocalStore) Fetch(ctx context.Context, want []Want, sink Sink) error {
	return fetchFromStore(ctx, s, want, sink)
}

// HTTPFetcher downloads objects (and other content-store files, such as
// manifests) from presigned HTTP(S) URLs and verifies each object on
// arrival. It retries transient failures in one place (go-retryablehttp):
// transport errors, a body that broke off, 408, 429 and 5xx but 501, with
// jittered exponential backoff, longer when the server throttles (S3's 503
// SlowDown, 429), and the pause a Retry-After asks for (up to a minute; a
// longer one is not retried). A refusal (other 4xx) or wrong content is
// final. Errors and logs never show a URL's query, a credential.
type HTTPFetcher struct {
	httpClient *http.Client
	retryMax   int
	log        *slog.Logger
	now        func() time.Time
	// pause turns the wait the retry policy computed into the one
	// retryablehttp sleeps: the same in production; tests record it and
	// sleep not at all.
	pause func(time.Duration) time.Duration
}

// FetcherOptions configure NewHTTPFetcher.
type FetcherOptions struct {
	// HTTPClient is the underlying client (TLS settings, timeouts); nil means a
	// pooled client from go-cleanhttp.
	HTTPClient *http.Client
	// RetryMax is the number of retries per download after its first
	// attempt; 0 means 5, a negative number none.
	RetryMax int
	// Logger receives a line per retry; nil discards them.
	Logger *slog.Logger
}

// NewHTTPFetcher returns a fetcher using opts.
func NewHTTPFetcher(opts FetcherOptions) *HTTPFetcher { return newHTTPFetcher(opts) }

// Get downloads one object from url into sink. The response body is bounded
// by want.Size and verified by the sink. An error response is reported as a
// *StatusError (wrapped).
func (f *HTTPFetcher) Get(ctx context.Context, url string, want Want, sink Sink) error {
	return f.get(ctx, url, want, sink)
}

// GetBytes downloads the whole body of url, at most limit bytes (a larger
// body is an error), with the same retries as Get.
func (f *HTTPFetcher) GetBytes(ctx context.Context, url string, limit int64) ([]byte, error) {
	return f.getBytes(ctx, url, limit)
}

// URLSource is a Source fed with presigned URLs in batches: the caller learns
// what is missing (patch.Plan.Missing), obtains URLs for those objects from the
// provider, and calls Supply with each batch while Fetch runs; Fetch downloads
// objects as their URLs arrive, with bounded parallelism, and returns when all
// wanted objects are in the sink.
type URLSource struct {
	impl *urlSource
}

// NewURLSource returns an empty URLSource that downloads through f with at
// most parallel concurrent requests (0 means 8).
func NewURLSource(f *HTTPFetcher, parallel int) *URLSource { return newURLSource(f, parallel) }

// Supply adds URLs for objects; it may be called any number of times, before
// or during Fetch. A URL for an object nobody wants is ignored.
func (s *URLSource) Supply(urls map[Digest]string) error { return s.impl.supply(urls) }

// Done says no more URLs will come: a running Fetch still lacking URLs for
// some objects then fails, naming how many and one of them.
func (s *URLSource) Done() { s.impl.done() }

// Pending lists the objects a running Fetch still waits for a URL for, so a
// daemon can tell the provider what to presign next.
func (s *URLSource) Pending() []Want { return s.impl.pending() }

// Fetch implements Source.
func (s *URLSource) Fetch(ctx context.Context, want []Want, sink Sink) error {
	return s.impl.fetch(ctx, want, sink)
}
