// Package unpackerbinary gives the provider the unpacker daemon it deploys
// on unpacker instances: by default the build of cmd/unpacker for the
// instance's architecture that the provider carries inside itself (same
// version as the provider), or a Linux build the user names by path.
//
// A provider built with `make build` or `make install` (or by goreleaser)
// carries the unpacker for linux/amd64 and linux/arm64: `go generate` in
// this directory builds them with the provider's version and gzips them into
// generated/, and the build tag autoami_embed_unpacker embeds them. A plain
// `go build .` carries none; Embedded then says so, and the user must set
// unpacker_binary.
package unpackerbinary

import (
	"errors"
	"io"
)

// Architectures an unpacker runs on, in EC2's words.
const (
	X86_64 = "x86_64"
	ARM64  = "arm64"
)

// Architectures lists the architectures an unpacker runs on.
var Architectures = []string{X86_64, ARM64}

// EmbedTag is the build tag that embeds the generated binaries.
const EmbedTag = "autoami_embed_unpacker"

// Binary is one Linux build of the unpacker for one architecture.
type Binary struct {
	// Architecture is X86_64 or ARM64.
	Architecture string
	// Version is the version the daemon reports; "" when unknown (a file
	// built without the version in its ldflags).
	Version string
	// SHA256 is the hex SHA-256 of the (uncompressed) binary.
	SHA256 string
	// Size is its size in bytes.
	Size int64
	// Source says where it came from, for messages: "embedded in the
	// provider" or the path.
	Source string

	open func() (io.ReadCloser, error)
}

// Open returns the binary's bytes.
func (b Binary) Open() (io.ReadCloser, error) {
	if b.open == nil {
		return nil, errors.New("unpacker binary: no content (zero Binary)")
	}
	return b.open()
}

// ReadAll returns the binary's bytes, checked against SHA256.
func (b Binary) ReadAll() ([]byte, error) { return readAll(b) }

// ErrNotEmbedded is wrapped by Embedded's error when this build of the
// provider carries no unpacker.
var ErrNotEmbedded = errors.New("this build of the provider carries no unpacker binary")

// Embedded returns the unpacker the provider carries for arch. providerVersion
// is the provider's own version: an embedded unpacker of another version (a
// stale generated/ directory) is an error, since provider and unpacker
// versions always match.
func Embedded(arch, providerVersion string) (Binary, error) { return embedded(arch, providerVersion) }

// FromFile returns the unpacker at path, after checking that it is a Linux
// ELF executable for arch. Its version is read from its Go build
// information (-X main.version=... in its ldflags) when it is there.
func FromFile(path, arch string) (Binary, error) { return fromFile(path, arch) }

// GOARCH is Go's name of an EC2 architecture ("amd64" for "x86_64").
func GOARCH(arch string) (string, error) { return goarch(arch) }
