package contentstore

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// PutData stores one object under its digest once; a presigned URL GETs
// exactly those bytes without credentials.
func TestPutDataOnceAndPresignedGet(t *testing.T) {
	e := newEnv(t)
	s := e.store(Options{})
	data := content(7, 5<<20+3) // above the in-memory verification limit
	d, uploaded, err := s.PutData(e.ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	if !uploaded || d != objects.Sum(data) {
		t.Fatalf("PutData = %s, uploaded %v; want %s, uploaded", d, uploaded, objects.Sum(data))
	}
	if got := e.get(s.ObjectKey(d)); !bytes.Equal(got, data) {
		t.Fatalf("stored %d bytes, want the %d given", len(got), len(data))
	}
	before := world.Faults.Stat("s3:PutObject").Calls + world.Faults.Stat("s3:UploadPart").Calls
	if _, uploaded, err := s.PutData(e.ctx, data); err != nil || uploaded {
		t.Fatalf("second PutData: uploaded %v, %v; want no upload", uploaded, err)
	}
	if after := world.Faults.Stat("s3:PutObject").Calls + world.Faults.Stat("s3:UploadPart").Calls; after != before {
		t.Fatalf("the second PutData sent %d more uploads", after-before)
	}

	url, err := s.PresignObject(e.ctx, s3.NewPresignClient(e.client), d, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(url, "X-Amz-Signature=") || !strings.Contains(url, d.String()) {
		t.Fatalf("presigned URL %q: want a signed GET of the object's key", url)
	}
	resp, err := http.Get(url) // no credentials: the URL is the grant
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
		t.Fatalf("GET of the presigned URL: %s, %d bytes; want 200 with the object", resp.Status, len(got))
	}
}

func TestPresignObjectRefusesBadExpiry(t *testing.T) {
	e := newEnv(t)
	s := e.store(Options{})
	p := s3.NewPresignClient(e.client)
	for _, d := range []time.Duration{0, -time.Minute, MaxPresignExpiry + time.Second} {
		_, err := s.PresignObject(e.ctx, p, objects.Sum([]byte("x")), d)
		mustErr(t, err, nil, "expiry", d.String())
	}
}
