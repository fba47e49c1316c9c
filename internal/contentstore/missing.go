package contentstore

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// listThreshold: a shard with at least this many wanted objects is listed
// (one ListObjectsV2 page covers up to 1000 keys) rather than probed with
// one HeadObject per object. Listing wins while a shard holds fewer than
// about 1000 × listThreshold objects, i.e. for stores below ~4 million
// objects; above that it still costs no more than a few pages per shard.
const listThreshold = 16

// dedupe drops repeated digests, keeping the first occurrence, and rejects
// impossible sizes and one digest declared with two sizes.
func dedupe(want []objects.Want) ([]objects.Want, error) {
	seen := make(map[objects.Digest]int64, len(want))
	out := make([]objects.Want, 0, len(want))
	for _, w := range want {
		if w.Size < 0 || w.Size > objects.MaxObjectSize {
			return nil, fmt.Errorf("object %s: size %d is outside 0..%d", w.Digest, w.Size, objects.MaxObjectSize)
		}
		if size, ok := seen[w.Digest]; ok {
			if size != w.Size {
				return nil, fmt.Errorf("object %s is wanted with two sizes, %d and %d", w.Digest, size, w.Size)
			}
			continue
		}
		seen[w.Digest] = w.Size
		out = append(out, w)
	}
	return out, nil
}

func (s *store) missing(ctx context.Context, want []objects.Want) ([]objects.Want, error) {
	if err := s.valid(); err != nil {
		return nil, err
	}
	want, err := dedupe(want)
	if err != nil {
		return nil, err
	}
	shards := map[byte][]objects.Want{}
	for _, w := range want {
		shards[w.Digest[0]] = append(shards[w.Digest[0]], w)
	}
	var (
		mu      sync.Mutex
		present = make(map[objects.Digest]bool, len(want))
	)
	found := func(d objects.Digest) {
		mu.Lock()
		present[d] = true
		mu.Unlock()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(checkConcurrency)
	for shard, ws := range shards {
		if len(ws) >= listThreshold {
			g.Go(func() error { return s.listShard(gctx, shard, ws, found) })
			continue
		}
		for _, w := range ws {
			g.Go(func() error {
				ok, err := s.has(gctx, w)
				if ok {
					found(w.Digest)
				}
				return err
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var out []objects.Want
	for _, w := range want {
		if !present[w.Digest] {
			out = append(out, w)
		}
	}
	return out, nil
}

// has reports whether the store holds w at its size; an object of another
// size is damaged and counts as missing, so it is uploaded again.
func (s *store) has(ctx context.Context, w objects.Want) (bool, error) {
	key := s.objectKey(w.Digest)
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.loc.Bucket), Key: aws.String(key)})
	if err != nil {
		if isNotFound(err) {
			return false, nil
		}
		if httpStatus(err) == http.StatusForbidden {
			// Without s3:ListBucket, S3 answers 403 instead of 404 for
			// a key that does not exist.
			return false, fmt.Errorf("check for object %s: %w; the credentials need s3:GetObject and s3:ListBucket on it", s.uri(key), s.bucketError("read", err))
		}
		return false, fmt.Errorf("check for object %s: %w", s.uri(key), s.bucketError("read", err))
	}
	return aws.ToInt64(out.ContentLength) == w.Size, nil
}

// listShard lists the keys of one shard between the smallest and the largest
// wanted key (keys sort like their digests) and marks the wanted ones found.
func (s *store) listShard(ctx context.Context, shard byte, ws []objects.Want, found func(objects.Digest)) error {
	prefix := s.shardPrefix(shard)
	bySize := make(map[string]int64, len(ws))
	keys := make([]string, 0, len(ws))
	for _, w := range ws {
		k := s.objectKey(w.Digest)
		bySize[k] = w.Size
		keys = append(keys, k)
	}
	slices.Sort(keys)
	first, last := keys[0], keys[len(keys)-1]
	in := &s3.ListObjectsV2Input{
		Bucket: aws.String(s.loc.Bucket),
		Prefix: aws.String(prefix),
		// A proper prefix of the first key sorts before it and after
		// nothing else we want.
		StartAfter: aws.String(first[:len(first)-1]),
	}
	p := s3.NewListObjectsV2Paginator(s.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list objects under %s: %w", s.uri(prefix), s.bucketError("read", err))
		}
		for _, o := range page.Contents {
			k := aws.ToString(o.Key)
			if size, ok := bySize[k]; ok && aws.ToInt64(o.Size) == size {
				d, err := objects.ParseDigest(strings.TrimPrefix(k, prefix))
				if err != nil {
					return fmt.Errorf("list objects under %s: key %q: %w", s.uri(prefix), k, err)
				}
				found(d)
			}
		}
		if n := len(page.Contents); n > 0 && aws.ToString(page.Contents[n-1].Key) >= last {
			break
		}
	}
	return nil
}
