package contentstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/autoami/terraform-provider-autoami/internal/testworld"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// world is the test AWS, one per test binary.
var world *testworld.World

const (
	region     = "eu-west-1"
	testBucket = "autoami-content"
	testPrefix = "store/"
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "autoami-contentstore-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	world, err = testworld.Start(ctx, moto.Options{LogPath: filepath.Join(dir, "moto.log")})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start the test world:", err)
		return 1
	}
	defer world.Stop()
	return m.Run()
}

// env is one test's view of the world: an empty AWS with one bucket.
type env struct {
	t      *testing.T
	ctx    context.Context
	cfg    aws.Config
	client *s3.Client
}

// newEnv resets the world and creates testBucket. The SDK's retryer waits
// at most 20 ms between attempts, so throttling tests stay fast.
func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	if err := world.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	cfg, err := world.Config(ctx, region, moto.DefaultAccountID)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 6
			o.MaxBackoff = 20 * time.Millisecond
		})
	}
	e := &env{t: t, ctx: ctx, cfg: cfg, client: e2client(cfg)}
	if _, err := e.client.CreateBucket(ctx, &s3.CreateBucketInput{
		Bucket:                    aws.String(testBucket),
		CreateBucketConfiguration: &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(region)},
	}); err != nil {
		t.Fatal(err)
	}
	return e
}

func e2client(cfg aws.Config, opts ...func(*s3.Options)) *s3.Client {
	return s3.NewFromConfig(cfg, append([]func(*s3.Options){func(o *s3.Options) { o.UsePathStyle = true }}, opts...)...)
}

func (e *env) store(opts Options) *Store {
	return New(e.client, Location{Bucket: testBucket, Prefix: testPrefix}, opts)
}

// head returns the object's metadata, or nil when it does not exist.
func (e *env) head(key string) *s3.HeadObjectOutput {
	e.t.Helper()
	out, err := e.client.HeadObject(e.ctx, &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key)})
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) get(key string) []byte {
	e.t.Helper()
	out, err := e.client.GetObject(e.ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key)})
	if err != nil {
		e.t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// keys lists every key under prefix.
func (e *env) keys(prefix string) []string {
	e.t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(e.client, &s3.ListObjectsV2Input{Bucket: aws.String(testBucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(e.ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

// s3RequestBytes sums the request bodies the proxy forwarded to S3, over
// every S3 action, since the last Reset.
func s3RequestBytes() int64 {
	var n int64
	for action, st := range world.Faults.Stats() {
		if strings.HasPrefix(action, "s3:") {
			n += st.RequestBytes
		}
	}
	return n
}

// content is deterministic pseudo-random bytes.
func content(seed uint64, size int) []byte {
	b := make([]byte, size)
	_, _ = rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)}).Read(b)
	return b
}

// memSource serves objects from memory, concurrently like the real sources;
// corrupt maps a digest to the wrong bytes it serves instead.
type memSource struct {
	objects map[objects.Digest][]byte
	corrupt map[objects.Digest][]byte
}

func newMemSource(blobs ...[]byte) (*memSource, []objects.Want) {
	s := &memSource{objects: map[objects.Digest][]byte{}, corrupt: map[objects.Digest][]byte{}}
	var want []objects.Want
	for _, b := range blobs {
		d := objects.Sum(b)
		if _, ok := s.objects[d]; !ok {
			want = append(want, objects.Want{Digest: d, Size: int64(len(b))})
		}
		s.objects[d] = b
	}
	return s, want
}

func (s *memSource) Fetch(ctx context.Context, want []objects.Want, sink objects.Sink) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, w := range want {
		g.Go(func() error {
			b, ok := s.corrupt[w.Digest]
			if !ok {
				b, ok = s.objects[w.Digest]
			}
			if !ok {
				return fmt.Errorf("memSource: no object %s: %w", w.Digest, objects.ErrNotFound)
			}
			return sink.Put(ctx, w, bytes.NewReader(b))
		})
	}
	return g.Wait()
}

// writeTree writes files (path → content) under a new directory and returns
// it with its manifest.
func writeTree(t *testing.T, files map[string][]byte) (string, *manifest.Manifest) {
	t.Helper()
	root := t.TempDir()
	for p, b := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root, buildManifest(t, root)
}

func buildManifest(t *testing.T, root string) *manifest.Manifest {
	t.Helper()
	m, err := manifest.FromDirectory(context.Background(), root, manifest.DirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// deniedClient answers the requests deny picks with S3's 403 AccessDenied
// (an empty body for HEAD, as S3 sends), so the SDK parses a real S3 error.
// moto grants every caller everything, so denial is simulated here.
type deniedClient struct {
	base aws.HTTPClient
	deny func(*http.Request) bool

	mu     sync.Mutex
	denied int
}

func (c *deniedClient) Do(r *http.Request) (*http.Response, error) {
	if !c.deny(r) {
		return c.base.Do(r)
	}
	c.mu.Lock()
	c.denied++
	c.mu.Unlock()
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	body := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>TEST</RequestId></Error>`
	if r.Method == http.MethodHead {
		body = ""
	}
	return &http.Response{
		Status:        "403 Forbidden",
		StatusCode:    http.StatusForbidden,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/xml"}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       r,
	}, nil
}

// deniedStore is a store whose client is refused the requests deny picks.
func (e *env) deniedStore(deny func(*http.Request) bool) (*Store, *deniedClient) {
	dc := &deniedClient{base: awshttp.NewBuildableClient(), deny: deny}
	c := e2client(e.cfg, func(o *s3.Options) { o.HTTPClient = dc })
	return New(c, Location{Bucket: testBucket, Prefix: testPrefix}, Options{}), dc
}

// mustErr fails unless err is non-nil, wraps target (when given) and its
// message contains every fragment.
func mustErr(t *testing.T, err error, target error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one containing %q", fragments)
	}
	if target != nil && !errors.Is(err, target) {
		t.Errorf("error %q does not wrap %v", err, target)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not contain %q", err, f)
		}
	}
}

func writeFile(root, p string, b []byte) error {
	return os.WriteFile(filepath.Join(root, p), b, 0o644)
}
