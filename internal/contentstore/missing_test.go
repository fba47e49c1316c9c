package contentstore

import (
	"bytes"
	"net/http"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// fakeDigest is a digest in shard 'shard' (Missing only looks at keys and
// sizes, so the objects need not hash to it).
func fakeDigest(shard byte, n int) objects.Digest {
	var d objects.Digest
	d[0] = shard
	d[30] = byte(n >> 8)
	d[31] = byte(n)
	return d
}

// A shard with many wanted objects is listed (a few ListObjectsV2 pages),
// the others probed with HeadObject; an object of the wrong size counts as
// missing; repeated wants are answered once.
func TestMissingListsCrowdedShards(t *testing.T) {
	e := newEnv(t)
	s := e.store(Options{})
	put := func(d objects.Digest, size int) {
		t.Helper()
		if _, err := e.client.PutObject(e.ctx, &s3.PutObjectInput{
			Bucket: aws.String(testBucket), Key: aws.String(s.ObjectKey(d)), Body: bytes.NewReader(make([]byte, size)),
		}); err != nil {
			t.Fatal(err)
		}
	}
	var want, wantMissing []objects.Want
	// Shard 0xab: 1500 objects present (more than one page), 40 of them
	// wanted, 20 wanted ones absent, one present with the wrong size.
	var g errgroup.Group
	g.SetLimit(8)
	for i := range 1500 {
		g.Go(func() error {
			_, err := e.client.PutObject(e.ctx, &s3.PutObjectInput{
				Bucket: aws.String(testBucket), Key: aws.String(s.ObjectKey(fakeDigest(0xab, i))), Body: bytes.NewReader(make([]byte, 3)),
			})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for i := 100; i < 140; i++ {
		want = append(want, objects.Want{Digest: fakeDigest(0xab, i), Size: 3})
	}
	for i := 2000; i < 2020; i++ {
		w := objects.Want{Digest: fakeDigest(0xab, i), Size: 3}
		want, wantMissing = append(want, w), append(wantMissing, w)
	}
	wrong := objects.Want{Digest: fakeDigest(0xab, 1400), Size: 4}
	want, wantMissing = append(want, wrong), append(wantMissing, wrong)
	// Shard 0x01: two present, one absent: HeadObject.
	put(fakeDigest(0x01, 1), 10)
	put(fakeDigest(0x01, 2), 0)
	want = append(want, objects.Want{Digest: fakeDigest(0x01, 1), Size: 10}, objects.Want{Digest: fakeDigest(0x01, 2), Size: 0})
	absent := objects.Want{Digest: fakeDigest(0x01, 3), Size: 10}
	want, wantMissing = append(want, absent), append(wantMissing, absent)
	want = append(want, want[0], want[5]) // repeats

	world.Faults.Reset()
	missing, err := s.Missing(e.ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(missing, wantMissing) {
		t.Fatalf("missing %d objects, want %d:\n got %v\nwant %v", len(missing), len(wantMissing), missing, wantMissing)
	}
	heads, lists := world.Faults.Stat("s3:HeadObject").Calls, world.Faults.Stat("s3:ListObjectsV2").Calls
	if heads != 3 {
		t.Errorf("%d HeadObject calls, want 3 (shard 01)", heads)
	}
	// The wanted keys of shard ab span ~1900 keys from the 101st present
	// one: two pages of 1000, never the first 100 keys.
	if lists < 1 || lists > 2 {
		t.Errorf("%d ListObjectsV2 calls, want 1 or 2", lists)
	}
	t.Logf("%d wanted (%d distinct): %d HeadObject, %d ListObjectsV2 calls", len(want), len(want)-2, heads, lists)

	if _, err := s.Missing(e.ctx, []objects.Want{{Digest: fakeDigest(1, 1), Size: 1}, {Digest: fakeDigest(1, 1), Size: 2}}); err == nil {
		t.Error("one digest wanted with two sizes was accepted")
	}
	if _, err := s.Missing(e.ctx, []objects.Want{{Digest: fakeDigest(1, 1), Size: -1}}); err == nil {
		t.Error("a negative size was accepted")
	}
}

// A 403 while checking names the bucket and says the credentials cannot
// read it, for HeadObject and for a listing.
func TestMissingAccessDenied(t *testing.T) {
	e := newEnv(t)
	s, _ := e.deniedStore(func(r *http.Request) bool { return r.Method == http.MethodHead || r.Method == http.MethodGet })
	few := []objects.Want{{Digest: fakeDigest(1, 1), Size: 1}}
	_, err := s.Missing(e.ctx, few)
	mustErr(t, err, ErrAccessDenied, `credentials cannot read bucket "`+testBucket+`"`)
	var many []objects.Want
	for i := range listThreshold {
		many = append(many, objects.Want{Digest: fakeDigest(2, i), Size: 1})
	}
	_, err = s.Missing(e.ctx, many)
	mustErr(t, err, ErrAccessDenied, `credentials cannot read bucket "`+testBucket+`"`, "list objects")

	// A bucket that does not exist says so.
	gone := New(e.client, Location{Bucket: "autoami-no-such-bucket"}, Options{})
	_, err = gone.Missing(e.ctx, many)
	mustErr(t, err, ErrBucketNotFound, `bucket "autoami-no-such-bucket" does not exist`)
}
