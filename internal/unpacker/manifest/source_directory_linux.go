package manifest

import (
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// pathsByDigest lists, per digest, the paths of regular files holding it.
func pathsByDigest(m *Manifest) map[objects.Digest][]string {
	out := map[objects.Digest][]string{}
	for _, e := range m.Entries {
		if e.Type == TypeRegular {
			out[e.Digest] = append(out[e.Digest], e.Path)
		}
	}
	return out
}

type directorySource struct {
	root string
	m    *Manifest
}

func newDirectorySource(root string, m *Manifest) objects.Source {
	return &directorySource{root: root, m: m}
}

// Fetch reads each wanted object from a file of the tree that holds it,
// trying the next such file if one changed since the manifest was built.
func (s *directorySource) Fetch(ctx context.Context, want []objects.Want, sink objects.Sink) error {
	rootfd, err := unix.Open(s.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("read objects from %s: %w", s.root, err)
	}
	defer unix.Close(rootfd)
	paths := pathsByDigest(s.m)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, w := range want {
		g.Go(func() error {
			candidates := paths[w.Digest]
			if len(candidates) == 0 {
				return fmt.Errorf("read object %s from %s: no file of the manifest holds it: %w", w.Digest, s.root, objects.ErrNotFound)
			}
			var last error
			for _, p := range candidates {
				fd, err := openBeneath(rootfd, p, unix.O_RDONLY)
				if err != nil {
					last = fmt.Errorf("open %s: %w", p, err)
					continue
				}
				f := os.NewFile(uintptr(fd), p)
				err = sink.Put(ctx, w, f)
				f.Close()
				if err == nil {
					return nil
				}
				if !errors.Is(err, objects.ErrMismatch) {
					return fmt.Errorf("read object %s from %s/%s: %w", w.Digest, s.root, p, err)
				}
				last = fmt.Errorf("%s: %w", p, err)
			}
			return fmt.Errorf("read object %s from %s: no file still holds it (last: %w)", w.Digest, s.root, last)
		})
	}
	return g.Wait()
}
