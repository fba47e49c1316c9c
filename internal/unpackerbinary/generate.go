package unpackerbinary

// Builds cmd/unpacker for linux/amd64 and linux/arm64 with the provider's
// version (AUTOAMI_VERSION, as the Makefile and goreleaser set it) into
// generated/, for builds with the autoami_embed_unpacker tag.
//go:generate go run ./gen -version=${AUTOAMI_VERSION} -out=generated
