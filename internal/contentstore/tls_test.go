package contentstore

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// fakeTLSS3 stands in for S3 behind an https:// endpoint (the SDK frames
// bodies differently over TLS) and records each request's body size and
// framing. It answers just enough for uploads to succeed.
type fakeTLSS3 struct {
	mu        sync.Mutex
	bodyBytes int64
	chunked   map[string]int // operation → requests with aws-chunked bodies
	calls     map[string]int
}

func (f *fakeTLSS3) Do(r *http.Request) (*http.Response, error) {
	q := r.URL.Query()
	op := "PutObject"
	switch {
	case r.Method == http.MethodPost && q.Has("uploads"):
		op = "CreateMultipartUpload"
	case r.Method == http.MethodPost && q.Has("uploadId"):
		op = "CompleteMultipartUpload"
	case r.Method == http.MethodPut && q.Has("partNumber"):
		op = "UploadPart"
	case r.Method != http.MethodPut:
		return nil, fmt.Errorf("fake S3: unexpected %s %s", r.Method, r.URL)
	}
	var n int64
	if r.Body != nil {
		n, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	f.mu.Lock()
	f.bodyBytes += n
	f.calls[op]++
	if strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked") {
		f.chunked[op]++
	}
	f.mu.Unlock()
	body := ""
	switch op {
	case "CreateMultipartUpload":
		body = `<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>u1</UploadId></InitiateMultipartUploadResult>`
	case "CompleteMultipartUpload":
		body = `<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><ETag>"e"</ETag></CompleteMultipartUploadResult>`
	}
	return &http.Response{
		StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Etag": {`"e"`}, "Content-Type": {"application/xml"}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       r,
	}, nil
}

// Over TLS the SDK would send a trailing checksum in an aws-chunked body; a
// single PutObject carries its SHA-256 in a header instead and goes
// unframed. Parts of a multipart upload are framed (a few dozen bytes per
// part). Measured without a network: the fake answers for S3.
func TestUploadOverTLSFraming(t *testing.T) {
	fake := &fakeTLSS3{chunked: map[string]int{}, calls: map[string]int{}}
	client := s3.New(s3.Options{
		Region:       region,
		BaseEndpoint: aws.String("https://s3.example.invalid"),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("k", "s", ""),
		HTTPClient:   fake,
	})
	var blobs [][]byte
	for i := range 30 {
		blobs = append(blobs, content(uint64(i), 200+i*1000))
	}
	blobs = append(blobs, content(99, 11<<20+3))
	src, want := newMemSource(blobs...)
	s := New(client, Location{Bucket: "b"}, Options{MultipartThreshold: 5 << 20, TempDir: t.TempDir()})
	res, err := s.Upload(context.Background(), src, want)
	if err != nil {
		t.Fatal(err)
	}
	if fake.calls["PutObject"] != 30 || fake.calls["UploadPart"] != 3 {
		t.Fatalf("calls %v", fake.calls)
	}
	if fake.chunked["PutObject"] != 0 {
		t.Fatalf("%d PutObject bodies were aws-chunked", fake.chunked["PutObject"])
	}
	ratio := float64(fake.bodyBytes) / float64(res.Bytes)
	t.Logf("over TLS: %d body bytes for %d object bytes (ratio %.6f); aws-chunked requests %v", fake.bodyBytes, res.Bytes, ratio, fake.chunked)
	if ratio > 1.001 {
		t.Fatalf("ratio %.5f over TLS", ratio)
	}
}
