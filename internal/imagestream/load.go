package imagestream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

func load(ctx context.Context, src Source, opts LoadOptions) (*Content, error) {
	c := &Content{Source: src}
	var err error
	switch {
	case src.Kind == KindRawImage:
		c.Path = "raw_image.path " + src.RawImage
		var f *os.File
		c.Manifest, c.Objects, f, err = loadRaw(ctx, src.RawImage, opts)
		if f != nil {
			c.closers = append(c.closers, f)
		}
	case src.Directory != "":
		c.Path = describe(src.Kind, "directory", src.Directory)
		if err := CheckDirectorySource(sourceBlock(src.Kind)); err != nil {
			return nil, err // names the attribute already
		}
		c.Manifest, c.Objects, err = loadDirectory(ctx, src.Directory, opts)
	case src.Tarball != "":
		c.Path = describe(src.Kind, "tarball", src.Tarball)
		c.Manifest, c.Objects, err = loadTarball(ctx, src.Tarball, opts)
	case src.Kind == KindLayered:
		c.Path = "base_image " + src.BaseImageName
		c.Manifest, c.Objects = emptyOverlay(), emptySource{}
	default:
		return nil, errors.New("no source: set root_filesystem, base_image or raw_image")
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Path, err)
	}
	if c.ManifestDigest, err = c.Manifest.Digest(); err != nil {
		return nil, fmt.Errorf("%s: %w", c.Path, err)
	}
	c.Summary = c.Manifest.Summarize()
	c.Revision = c.ManifestDigest.String()
	if src.Kind == KindLayered {
		if src.BaseImageName == "" {
			return nil, errors.New("a layered stream needs its base image name")
		}
		c.Revision = layeredRevision(src.BaseImageName, c.ManifestDigest, src.RebuildTrigger)
	}
	return c, nil
}

func describe(kind SourceKind, field, path string) string {
	return fmt.Sprintf("%s.%s %s", sourceBlock(kind), field, path)
}

func loadDirectory(ctx context.Context, dir string, opts LoadOptions) (*manifest.Manifest, objects.Source, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read the directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, nil, errors.New("not a directory")
	}
	dopts := manifest.DirOptions{}
	if opts.CacheDir != "" {
		dopts.StatCachePath = filepath.Join(opts.CacheDir, "statcache", cacheName(abs)+".statcache")
		if err := os.MkdirAll(filepath.Dir(dopts.StatCachePath), 0o700); err != nil {
			return nil, nil, fmt.Errorf("cache directory: %w", err)
		}
	}
	m, err := manifest.FromDirectory(ctx, abs, dopts)
	if err != nil {
		return nil, nil, err
	}
	return m, manifest.DirectorySource(abs, m), nil
}

func loadTarball(ctx context.Context, path string, opts LoadOptions) (*manifest.Manifest, objects.Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	m, err := cachedManifest(path, f, fi, opts, func() (*manifest.Manifest, error) {
		return manifest.FromTar(ctx, f, manifest.TarOptions{MaxSize: opts.MaxTarSize})
	})
	if err != nil {
		return nil, nil, err
	}
	return m, manifest.TarSource(path, m), nil
}

// loadRaw opens the image once: the manifest (cached by the identity of the
// open file) and the objects served later come from the same file.
func loadRaw(ctx context.Context, path string, opts LoadOptions) (*manifest.Manifest, objects.Source, *os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, nil, err
	}
	m, err := cachedManifest(path, f, fi, opts, func() (*manifest.Manifest, error) {
		return manifest.FromRawImage(ctx, f, fi.Size())
	})
	if err != nil {
		f.Close()
		return nil, nil, nil, err
	}
	return m, manifest.RawImageSource(f, m), f, nil
}

// manifestCacheVersion is part of every cache key: a provider whose content
// model or tar checks changed must not trust manifests an older one cached.
const manifestCacheVersion = "autoami-manifest-cache-v1"

// cachedManifest returns the manifest of the open file f (fi is its stat)
// from the cache when the file's identity is unchanged, else builds and
// caches it. Where the system offers no file identity, nothing is cached.
func cachedManifest(path string, f *os.File, fi os.FileInfo, opts LoadOptions, build func() (*manifest.Manifest, error)) (*manifest.Manifest, error) {
	if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	cachePath := ""
	if opts.CacheDir != "" {
		abs, _ := filepath.Abs(path)
		if id, err := fileIdentity(f); err == nil {
			key := fmt.Sprintf("%s\x00%s\x00%d\x00%d\x00%s\x00max=%d", manifestCacheVersion, abs, fi.Size(),
				fi.ModTime().UnixNano(), id, opts.MaxTarSize)
			cachePath = filepath.Join(opts.CacheDir, "manifests", cacheName(key)+".manifest")
			if b, err := os.ReadFile(cachePath); err == nil {
				if m, err := manifest.Unmarshal(b); err == nil {
					return m, nil
				}
			}
		}
	}
	m, err := build()
	if err != nil {
		return nil, err
	}
	if cachePath != "" {
		if b, err := m.Marshal(); err == nil {
			_ = writeFileAtomic(cachePath, b)
		}
	}
	return m, nil
}

func writeFileAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func cacheName(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

// emptyOverlay is the overlay of a layered stream without one: just a root
// directory entry.
func emptyOverlay() *manifest.Manifest {
	return &manifest.Manifest{Kind: manifest.KindTree, Entries: []manifest.Entry{
		{Path: manifest.RootPath, Type: manifest.TypeDirectory, Mode: 0o755},
	}}
}

type emptySource struct{}

func (emptySource) Fetch(_ context.Context, want []objects.Want, _ objects.Sink) error {
	if len(want) > 0 {
		return fmt.Errorf("an empty overlay has no objects, %d asked for", len(want))
	}
	return nil
}

func layeredRevision(baseImageName string, overlay objects.Digest, trigger string) string {
	h := sha256.New()
	fmt.Fprintf(h, "autoami layered revision v1\x00base=%s\x00overlay=%s\x00trigger=%s", baseImageName, overlay, trigger)
	return hex.EncodeToString(h.Sum(nil))
}

func (c *Content) close() error {
	var errs []error
	for _, cl := range c.closers {
		errs = append(errs, cl.Close())
	}
	c.closers = nil
	return errors.Join(errs...)
}
