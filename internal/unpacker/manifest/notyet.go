package manifest

import (
	"context"
	"errors"
	"io"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

var errNotYet = errors.New("manifest: not implemented yet")

func typeName(t Type) string                     { return string(t) }
func marshal(m *Manifest) ([]byte, error)        { return nil, errNotYet }
func unmarshal(b []byte) (*Manifest, error)      { return nil, errNotYet }
func digest(m *Manifest) (objects.Digest, error) { return objects.Digest{}, errNotYet }
func validate(m *Manifest) error                 { return errNotYet }
func sortManifest(m *Manifest)                   {}
func objectsOf(m *Manifest) []objects.Want       { return nil }
func summarize(m *Manifest) Summary              { return Summary{} }
func lookup(m *Manifest, p string) int           { return -1 }
func fromDirectory(ctx context.Context, root string, opts DirOptions) (*Manifest, error) {
	return nil, errNotYet
}
func fromTar(ctx context.Context, r io.Reader, opts TarOptions) (*Manifest, error) {
	return nil, errNotYet
}
func fromRawImage(ctx context.Context, r io.ReaderAt, size int64) (*Manifest, error) {
	return nil, errNotYet
}
func newDirectorySource(root string, m *Manifest) objects.Source  { return nil }
func newTarSource(path string, m *Manifest) objects.Source        { return nil }
func newRawImageSource(r io.ReaderAt, m *Manifest) objects.Source { return nil }
