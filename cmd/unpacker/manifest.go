package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

func init() {
	register(command{
		name:    "manifest",
		usage:   "[-raw] [-cache FILE] [-o FILE] [-json] SOURCE",
		summary: "print the revision digest and a summary of a directory, tarball or raw image",
		run:     runManifest,
	})
}

func runManifest(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet("manifest", env.stderr)
	raw := fs.Bool("raw", false, "SOURCE is a raw disk image (512 KiB block digests)")
	cache := fs.String("cache", "", "stat cache `file` for a SOURCE directory")
	out := fs.String("o", "", "also write the serialized manifest to `file`")
	asJSON := fs.Bool("json", false, "print the digest and summary as one JSON object (described below)")
	flagUsage := fs.Usage
	fs.Usage = func() {
		flagUsage()
		fmt.Fprint(env.stderr, manifestJSONHelp)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errUsage
	}
	src, err := loadSource(ctx, fs.Arg(0), *raw, *cache, env.log)
	if err != nil {
		return err
	}
	defer src.close()
	b, err := src.manifest.Marshal()
	if err != nil {
		return err
	}
	d, err := src.manifest.Digest()
	if err != nil {
		return err
	}
	if *out != "" {
		if err := os.WriteFile(*out, b, 0o644); err != nil {
			return fmt.Errorf("write manifest: %w", err)
		}
	}
	if *asJSON {
		r, err := newManifestReport(src.manifest, src.kind, d, len(b))
		if err != nil {
			return err
		}
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	s := src.manifest.Summarize()
	w := env.stdout
	fmt.Fprintf(w, "revision  sha256:%s\n", d)
	fmt.Fprintf(w, "source    %s\n", src.kind)
	if s.Kind == manifest.KindRawImage {
		fmt.Fprintf(w, "image     %d bytes in %d blocks of %d bytes\n", s.Bytes, s.Entries, manifest.BlockSize)
		fmt.Fprintf(w, "objects   %d distinct blocks (%d bytes)\n", s.Objects, s.ObjectBytes)
	} else {
		fmt.Fprintf(w, "entries   %d: %d directories, %d regular files, %d symlinks, %d hard links, %d devices, %d fifos\n",
			s.Entries, s.Directories, s.Regular, s.Symlinks, s.HardLinks, s.Devices, s.FIFOs)
		fmt.Fprintf(w, "content   %d bytes in %d distinct objects (%d bytes)\n", s.Bytes, s.Objects, s.ObjectBytes)
		fmt.Fprintf(w, "xattrs    %d\n", s.Xattrs)
	}
	fmt.Fprintf(w, "manifest  %d bytes serialized\n", len(b))
	return nil
}

// loadedSource is a revision read from the command line's SOURCE argument.
type loadedSource struct {
	manifest *manifest.Manifest
	objects  objects.Source
	kind     string // "directory", "tarball" or "raw image"
	close    func()
}

// loadSource builds the manifest of a directory, a tarball (plain, gzip or
// zstd) or, with raw, a raw disk image, and the source of its objects.
func loadSource(ctx context.Context, path string, raw bool, statCache string, log *slog.Logger) (*loadedSource, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	switch {
	case fi.IsDir():
		if raw {
			return nil, fmt.Errorf("source %s: -raw needs an image file, not a directory", path)
		}
		m, err := manifest.FromDirectory(ctx, path, manifest.DirOptions{StatCachePath: statCache, Logger: log})
		if err != nil {
			return nil, err
		}
		return &loadedSource{manifest: m, objects: manifest.DirectorySource(path, m), kind: "directory", close: func() {}}, nil
	case !fi.Mode().IsRegular() && !(raw && fi.Mode()&os.ModeDevice != 0):
		return nil, fmt.Errorf("source %s: neither a directory nor a file (%s)", path, fi.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if raw {
		size, err := f.Seek(0, 2)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("source %s: size: %w", path, err)
		}
		m, err := manifest.FromRawImage(ctx, f, size)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("source %s: %w", path, err)
		}
		return &loadedSource{manifest: m, objects: manifest.RawImageSource(f, m), kind: "raw image",
			close: func() { f.Close() }}, nil
	}
	defer f.Close()
	m, err := manifest.FromTar(ctx, f, manifest.TarOptions{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", path, err)
	}
	return &loadedSource{manifest: m, objects: manifest.TarSource(path, m), kind: "tarball", close: func() {}}, nil
}
