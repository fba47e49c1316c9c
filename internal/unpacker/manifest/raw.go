package manifest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"runtime"

	"golang.org/x/sync/errgroup"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

func fromRawImage(ctx context.Context, r io.ReaderAt, size int64) (*Manifest, error) {
	if size <= 0 || size > MaxImageSize {
		return nil, fmt.Errorf("raw image size %d is outside 1..%d", size, int64(MaxImageSize))
	}
	img := &RawImage{Size: size, Blocks: make([]objects.Digest, (size+BlockSize-1)/BlockSize)}
	g, ctx := errgroup.WithContext(ctx)
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		g.Go(func() error {
			buf := make([]byte, BlockSize)
			for i := w; i < len(img.Blocks); i += workers {
				if err := ctx.Err(); err != nil {
					return err
				}
				n := img.blockSize(i)
				if _, err := r.ReadAt(buf[:n], int64(i)*BlockSize); err != nil {
					return fmt.Errorf("read raw image block %d (offset %d): %w", i, int64(i)*BlockSize, err)
				}
				img.Blocks[i] = sha256.Sum256(buf[:n])
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return &Manifest{Kind: KindRawImage, Image: img}, nil
}
