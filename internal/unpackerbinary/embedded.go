package unpackerbinary

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
)

// generatedDir is where `go generate` puts the binaries (gitignored).
const generatedDir = "generated"

// manifestName is the file in generatedDir describing the binaries.
const manifestName = "manifest.json"

// manifest describes the generated binaries.
type manifest struct {
	Version  string                   `json:"version"`
	Binaries map[string]manifestEntry `json:"binaries"`
}

type manifestEntry struct {
	// File is the gzip'd binary's name in generatedDir.
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// embeddedFS is the generated directory when the build embeds it (see
// embed_on.go), else nil.
var embeddedFS fs.FS

func embedded(arch, providerVersion string) (Binary, error) {
	if _, err := goarch(arch); err != nil {
		return Binary{}, err
	}
	if embeddedFS == nil {
		return Binary{}, fmt.Errorf("%w (it was built without the %s tag, e.g. by a plain `go build`): "+
			"set unpacker_binary to a Linux %s build of cmd/unpacker, or build the provider with `make build`",
			ErrNotEmbedded, EmbedTag, arch)
	}
	return embeddedFrom(embeddedFS, arch, providerVersion)
}

func embeddedFrom(fsys fs.FS, arch, providerVersion string) (Binary, error) {
	data, err := fs.ReadFile(fsys, generatedDir+"/"+manifestName)
	if err != nil {
		return Binary{}, fmt.Errorf("embedded unpacker: %w", err)
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return Binary{}, fmt.Errorf("embedded unpacker: %s: %w", manifestName, err)
	}
	if m.Version != providerVersion {
		return Binary{}, fmt.Errorf("this provider (version %s) carries an unpacker of version %s; provider and unpacker "+
			"versions must match: rebuild the provider with `make build` (which regenerates it)", providerVersion, m.Version)
	}
	e, ok := m.Binaries[arch]
	if !ok {
		return Binary{}, fmt.Errorf("%w for %s (it has %s)", ErrNotEmbedded, arch, keys(m.Binaries))
	}
	path := generatedDir + "/" + e.File
	if _, err := fs.Stat(fsys, path); err != nil {
		return Binary{}, fmt.Errorf("embedded unpacker for %s: %w", arch, err)
	}
	return Binary{
		Architecture: arch,
		Version:      m.Version,
		SHA256:       e.SHA256,
		Size:         e.Size,
		Source:       "embedded in the provider",
		open: func() (io.ReadCloser, error) {
			gz, err := fs.ReadFile(fsys, path)
			if err != nil {
				return nil, err
			}
			zr, err := gzip.NewReader(bytes.NewReader(gz))
			if err != nil {
				return nil, fmt.Errorf("embedded unpacker for %s: %w", arch, err)
			}
			return zr, nil
		},
	}, nil
}

func keys(m map[string]manifestEntry) []string {
	var out []string
	for _, a := range Architectures {
		if _, ok := m[a]; ok {
			out = append(out, a)
		}
	}
	return out
}
