package contentstore

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
)

// A presigned manifest URL GETs exactly the revision's canonical manifest
// without credentials; bad expiries, streams and revisions are refused
// before anything is signed.
func TestPresignManifest(t *testing.T) {
	e := newEnv(t)
	s := e.store(Options{})
	root, m := writeTree(t, map[string][]byte{"etc/hostname": []byte("web\n")})
	rec, _ := uploadRevision(t, e, s, "web/al2023", root, m)
	presigner := s3.NewPresignClient(e.client)

	url, err := s.PresignManifest(e.ctx, presigner, "web/al2023", rec.Revision, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(url, "X-Amz-Signature=") || !strings.Contains(url, "streams/web/al2023/revisions/"+rec.Revision+".manifest") {
		t.Fatalf("presigned URL %q: want a signed GET of the manifest's key", url)
	}
	resp, err := http.Get(url) // no credentials: the URL is the grant
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET of the presigned manifest URL: %s, %v", resp.Status, err)
	}
	got, err := manifest.Unmarshal(body)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := got.Digest(); d.String() != rec.Revision {
		t.Fatalf("the URL served a manifest of digest %s, want revision %s", d, rec.Revision)
	}

	for _, tc := range []struct {
		name, stream, revision string
		expires                time.Duration
		says                   string
	}{
		{"no expiry", "web/al2023", rec.Revision, 0, "expiry"},
		{"beyond a week", "web/al2023", rec.Revision, MaxPresignExpiry + time.Second, "expiry"},
		{"bad stream", "Web//x", rec.Revision, time.Hour, "Web//x"},
		{"bad revision", "web/al2023", "../x", time.Hour, "../x"},
	} {
		if _, err := s.PresignManifest(e.ctx, presigner, tc.stream, tc.revision, tc.expires); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want an error naming %q", tc.name, err, tc.says)
		}
	}
}
