//go:build autoami_embed_unpacker

package unpackerbinary

import "embed"

// The binaries `go generate` made (see generate.go). Building with the tag
// but without generating first fails here, naming the missing pattern.
//
//go:embed generated/manifest.json generated/*.gz
var generated embed.FS

func init() { embeddedFS = generated }
