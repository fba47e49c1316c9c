// Package manifest is autoami's content model: a Manifest describes a whole
// root filesystem (every entry with its type, mode, owner, mtime, size,
// content digest, link target, device numbers and extended attributes) or a
// raw disk image (one SHA-256 per 512 KiB block).
//
// A manifest has one canonical binary serialization (Marshal); the revision
// digest is the SHA-256 of it, so it is the same on every machine and run and
// does not depend on directory read order. Unmarshal accepts only canonical
// input, so Marshal(Unmarshal(b)) == b for every b it accepts.
//
// Manifests are built from a directory (FromDirectory, with a persistent stat
// cache that makes an unchanged rescan near-instant), a tarball (FromTar: plain,
// gzip or zstd; GNU or PAX, including PAX xattr records) or a raw image
// (FromRawImage). DirectorySource, TarSource and RawImageSource serve the
// content objects of a manifest from the place it was built from.
//
// Everything but reading a directory tree works on every system. The
// directory scan and its stat cache (the *_linux.go files) need Linux; on
// other systems FromDirectory, ScanDirectory, WriteStatCache and
// DirectorySource refuse with ErrDirectoryUnsupported (see DirectorySupport).
package manifest

import (
	"context"
	"io"
	"log/slog"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// Kind says what a manifest describes.
type Kind uint8

const (
	// KindTree is a file tree (Entries).
	KindTree Kind = 't'
	// KindRawImage is a raw disk image (Image).
	KindRawImage Kind = 'r'
)

// Type is the type of a tree entry.
type Type uint8

// Entry types. The values are part of the serialization; never renumber.
const (
	TypeDirectory   Type = 'd'
	TypeRegular     Type = 'f'
	TypeSymlink     Type = 'l'
	TypeHardLink    Type = 'h'
	TypeCharDevice  Type = 'c'
	TypeBlockDevice Type = 'b'
	TypeFIFO        Type = 'p'
)

// String names the type ("directory", "regular file", ...).
func (t Type) String() string { return typeName(t) }

// BlockSize is the block size of raw image manifests: 512 KiB, the EBS direct
// API block size, so a changed block maps to exactly one snapshot block.
const BlockSize = 512 << 10

// Limits of a valid manifest; larger values are rejected as bad input.
const (
	MaxPathLen       = 4096    // bytes in an entry path
	MaxNameLen       = 255     // bytes in one path component
	MaxXattrNameLen  = 255     // bytes in an xattr name
	MaxXattrValueLen = 65536   // bytes in one xattr value
	MaxXattrs        = 1024    // xattrs on one entry
	MaxEntries       = 1 << 26 // entries in one tree
	MaxImageSize     = 1 << 44 // bytes in a raw image (16 TiB, the EBS maximum)
)

// RootPath is the path of the root directory entry. Every other path is
// relative to it, slash-separated, without "." or ".." components.
const RootPath = "."

// Xattr is one extended attribute. Names carry their namespace
// ("security.capability", "system.posix_acl_access", "user.x", "trusted.y").
// POSIX ACLs are kept in their kernel xattr encoding.
type Xattr struct {
	Name  string
	Value []byte
}

// Entry is one file-system object of a tree.
type Entry struct {
	// Path is RootPath or a slash-separated path relative to the root.
	Path string
	Type Type
	// Mode holds the permission bits including setuid, setgid and sticky
	// (07777); the type is in Type. Zero for hard links, which share their
	// target's metadata.
	Mode uint32
	UID  uint32
	GID  uint32
	// MtimeNs is the modification time in nanoseconds since the Unix epoch.
	MtimeNs int64
	// Size is the content size of a regular file; zero otherwise.
	Size int64
	// Digest is the SHA-256 of a regular file's content; zero otherwise.
	Digest objects.Digest
	// Sparse says a regular file (of nonzero size) has holes: the patch
	// engine leaves its all-zero blocks unallocated. A file that is not
	// sparse gets every block allocated (a swap file, a preallocated
	// database), whatever its content. From a directory: fewer bytes
	// allocated than its size; from a tarball: a GNU or PAX sparse member.
	Sparse bool
	// Link is a symlink's target, or for a hard link the Path of the entry it
	// links to, which comes earlier in canonical order and is not a directory
	// or another hard link.
	Link string
	// DevMajor and DevMinor are a device node's numbers.
	DevMajor uint32
	DevMinor uint32
	// Xattrs are sorted by name; names are unique.
	Xattrs []Xattr
}

// RawImage is the content of a raw image manifest.
type RawImage struct {
	// Size is the image size in bytes.
	Size int64
	// Blocks holds one digest per BlockSize block; the last block may be
	// shorter (Size % BlockSize bytes).
	Blocks []objects.Digest
}

// Manifest describes one revision of content.
type Manifest struct {
	Kind Kind
	// Entries, for KindTree, in canonical order: sorted by path component by
	// component, so the root comes first and every directory comes right
	// before its descendants.
	Entries []Entry
	// Image, for KindRawImage.
	Image *RawImage
}

// Marshal returns the canonical serialization of m, after validating it.
func (m *Manifest) Marshal() ([]byte, error) { return marshal(m) }

// Unmarshal parses and validates a canonical serialization.
func Unmarshal(b []byte) (*Manifest, error) { return unmarshal(b) }

// Digest is the revision digest: the SHA-256 of the canonical serialization.
func (m *Manifest) Digest() (objects.Digest, error) { return digest(m) }

// Validate checks every rule of a well-formed manifest and names the first
// offending path and attribute.
func (m *Manifest) Validate() error { return validate(m) }

// Sort puts Entries (and each entry's Xattrs) in canonical order; builders
// call it, and so should code that assembles a manifest by hand.
func (m *Manifest) Sort() { sortManifest(m) }

// Objects lists the distinct objects of m (regular file contents or image
// blocks) in canonical order with their sizes.
func (m *Manifest) Objects() []objects.Want { return objectsOf(m) }

// Summary counts the contents of a manifest.
type Summary struct {
	Kind        Kind
	Entries     int
	Directories int
	Regular     int
	Symlinks    int
	HardLinks   int
	Devices     int
	FIFOs       int
	Xattrs      int
	// Bytes is the sum of regular file sizes (tree) or the image size.
	Bytes int64
	// Objects and ObjectBytes count distinct objects.
	Objects     int
	ObjectBytes int64
}

// Summarize counts the contents of m.
func (m *Manifest) Summarize() Summary { return summarize(m) }

// Lookup returns the index of the entry with path p, or -1.
func (m *Manifest) Lookup(p string) int { return lookup(m, p) }

// DirOptions configure FromDirectory.
type DirOptions struct {
	// StatCachePath is a file remembering, per regular file, its inode, size,
	// mtime, ctime and digest; a file whose stat matches is not read again.
	// The file is created or replaced atomically. Empty disables the cache.
	StatCachePath string
	// KeepStatCache reads the stat cache but leaves the file as it was (for
	// a caller that records it itself afterwards, as the patch engine does).
	KeepStatCache bool
	// Exclude lists root-level names to leave out of the manifest (e.g. the
	// patch engine's staging directory).
	Exclude []string
	// Workers is the number of files hashed concurrently; 0 means GOMAXPROCS.
	Workers int
	// Logger receives warnings (skipped sockets) and timings; nil discards.
	Logger *slog.Logger
}

// FromDirectory builds the manifest of the tree at root. It never follows a
// symlink and never crosses into another mount: an entry on another mount
// than root (a mount point inside the tree, bind mounts included) is an
// error naming it. Sockets (as tar does) and entries of types the manifest
// has no name for are skipped, with a warning. Linux only: elsewhere the
// error wraps ErrDirectoryUnsupported.
func FromDirectory(ctx context.Context, root string, opts DirOptions) (*Manifest, error) {
	return fromDirectory(ctx, root, opts)
}

// Scan is FromDirectory's manifest plus what it saw of the tree that a
// manifest does not carry; the patch engine needs both to leave nothing of
// an older revision behind.
type Scan struct {
	Manifest *Manifest
	// Other lists the paths of the entries skipped because the manifest
	// cannot describe them (sockets, unknown types), in canonical order.
	Other []string
	// Flagged lists the paths of entries (of Manifest or Other) whose inode
	// carries the immutable or append-only flag (chattr +i, +a), which make
	// the entry refuse changes; in canonical order. Manifests carry no
	// inode flags.
	Flagged []string
}

// ScanDirectory is FromDirectory returning the whole Scan.
func ScanDirectory(ctx context.Context, root string, opts DirOptions) (*Scan, error) {
	return scanDirectory(ctx, root, opts)
}

// TarOptions configure FromTar.
type TarOptions struct {
	// Ingest, when set, receives every regular file's content while the tarball
	// is read (e.g. a LocalStore to stage or upload objects in one pass).
	Ingest Ingester
	// MaxSize bounds the sum of the regular files' sizes the tarball may
	// declare (a defence against tar bombs such as huge sparse members);
	// 0 means DefaultMaxTarSize.
	MaxSize int64
	// Logger receives warnings; nil discards.
	Logger *slog.Logger
}

// DefaultMaxTarSize is the default TarOptions.MaxSize: 256 GiB of content.
const DefaultMaxTarSize = 256 << 30

// Ingester stores content whose digest is not known in advance;
// objects.LocalStore is one.
type Ingester interface {
	Ingest(ctx context.Context, r io.Reader) (objects.Want, error)
}

// FromTar builds the manifest of a tarball read from r: plain, gzip or zstd
// (detected from the first bytes), GNU or PAX format. Member names are
// cleaned ("./a" is "a"); directories missing from the tarball are added with
// mode 0755, root owner and mtime 0. Bad members (".." paths, duplicates, a
// path through a symlink or file, links to missing targets, gigantic sizes)
// are errors naming the member.
func FromTar(ctx context.Context, r io.Reader, opts TarOptions) (*Manifest, error) {
	return fromTar(ctx, r, opts)
}

// FromRawImage builds the manifest of a raw disk image of size bytes read
// from r, one SHA-256 per BlockSize block.
func FromRawImage(ctx context.Context, r io.ReaderAt, size int64) (*Manifest, error) {
	return fromRawImage(ctx, r, size)
}

// DirectorySource serves the objects of m from the directory tree at root
// that m was built from (it opens files by path, never following symlinks;
// the sink verifies every object).
func DirectorySource(root string, m *Manifest) objects.Source { return newDirectorySource(root, m) }

// TarSource serves the objects of m by reading the tarball at path again (one
// sequential pass per Fetch). A hard-linked file's object is read from the
// member that carries the data, whichever name of the group m gives it to.
func TarSource(path string, m *Manifest) objects.Source { return newTarSource(path, m) }

// RawImageSource serves the blocks of a raw image manifest m from r.
func RawImageSource(r io.ReaderAt, m *Manifest) objects.Source { return newRawImageSource(r, m) }

// WriteStatCache records in the stat cache at cachePath the current stat of
// every regular file of m under root, with m's digest, so that the next
// FromDirectory of root reads nothing. Only a caller that has just made root
// equal to m (the patch engine) may vouch for that.
func WriteStatCache(root string, m *Manifest, cachePath string) error {
	return writeStatCache(root, m, cachePath)
}
