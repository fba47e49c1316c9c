package manifest

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/objects"
)

// PAX record prefixes carrying extended attributes: GNU tar and star write
// SCHILY.xattr.NAME with the raw value; bsdtar writes LIBARCHIVE.xattr.NAME
// with a URL-encoded name and base64 value. GNU tar --acls writes text ACLs.
const (
	paxSchilyXattr     = "SCHILY.xattr."
	paxLibarchiveXattr = "LIBARCHIVE.xattr."
	paxACLAccess       = "SCHILY.acl.access"
	paxACLDefault      = "SCHILY.acl.default"
)

// tarBuilder accumulates members into entries keyed by path.
type tarBuilder struct {
	ctx      context.Context
	opts     TarOptions
	log      *slog.Logger
	index    map[string]int  // path -> entry index
	implicit map[string]bool // directories created because a member needed them
	entries  []Entry
	member   int
	total    int64 // declared bytes of regular files so far
	maxSize  int64
}

func fromTar(ctx context.Context, r io.Reader, opts TarOptions) (*Manifest, error) {
	stream, release, err := decompressed(r)
	if err != nil {
		return nil, err
	}
	defer release()
	b := &tarBuilder{ctx: ctx, opts: opts, log: opts.Logger,
		index: map[string]int{}, implicit: map[string]bool{}}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.maxSize = opts.MaxSize
	if b.maxSize <= 0 {
		b.maxSize = DefaultMaxTarSize
	}
	b.addImplicitDir(RootPath)
	tr := tar.NewReader(stream)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if b.member == 0 {
				return nil, fmt.Errorf("not a tarball (or a corrupt one): %w", err)
			}
			return nil, fmt.Errorf("read tarball after member %d: %w", b.member, err)
		}
		b.member++
		if err := b.add(hdr, tr); err != nil {
			return nil, fmt.Errorf("tarball member %d %q: %w", b.member, hdr.Name, err)
		}
	}
	if b.member == 0 {
		return nil, fmt.Errorf("not a tarball: no members")
	}
	m := &Manifest{Kind: KindTree, Entries: b.entries}
	if err := resolveHardLinks(m); err != nil {
		return nil, fmt.Errorf("tarball: %w", err)
	}
	sortManifest(m)
	if err := validate(m); err != nil {
		return nil, fmt.Errorf("tarball: %w", err)
	}
	return m, nil
}

// cleanMemberName turns a member name into a manifest path: a leading "./"
// and a trailing "/" are dropped, "." and "" mean the root; anything else
// that is not a clean relative path is an error.
func cleanMemberName(name string) (string, error) {
	p := name
	for strings.HasPrefix(p, "./") {
		p = p[2:]
	}
	p = strings.TrimSuffix(p, "/")
	if p == "" || p == "." {
		return RootPath, nil
	}
	if err := validatePath(p); err != nil {
		return "", err
	}
	return p, nil
}

func (b *tarBuilder) addImplicitDir(p string) {
	b.index[p] = len(b.entries)
	b.implicit[p] = true
	b.entries = append(b.entries, Entry{Path: p, Type: TypeDirectory, Mode: 0o755})
}

// ensureParents creates missing parent directories and rejects a member
// whose parent is not a directory (e.g. written through a symlink).
func (b *tarBuilder) ensureParents(p string) error {
	if p == RootPath {
		return nil
	}
	parent := parentOf(p)
	if i, ok := b.index[parent]; ok {
		if t := b.entries[i].Type; t != TypeDirectory {
			return fmt.Errorf("parent %q is a %s, not a directory", parent, t)
		}
		return nil
	}
	if err := b.ensureParents(parent); err != nil {
		return err
	}
	b.addImplicitDir(parent)
	return nil
}

func (b *tarBuilder) add(hdr *tar.Header, tr io.Reader) error {
	p, err := cleanMemberName(hdr.Name)
	if err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	if hdr.Uid < 0 || int64(hdr.Uid) > 1<<32-1 || hdr.Gid < 0 || int64(hdr.Gid) > 1<<32-1 {
		return fmt.Errorf("uid %d or gid %d out of range", hdr.Uid, hdr.Gid)
	}
	e := Entry{Path: p, Mode: uint32(hdr.Mode) & 0o7777, UID: uint32(hdr.Uid), GID: uint32(hdr.Gid),
		MtimeNs: hdr.ModTime.UnixNano()}
	if hdr.Mode&^0o7777 & ^int64(0o170000) != 0 || hdr.Mode < 0 {
		return fmt.Errorf("mode %#o has unknown bits", hdr.Mode)
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		e.Type = TypeRegular
		if hdr.Size < 0 || hdr.Size > objects.MaxObjectSize {
			return fmt.Errorf("declared size %d is outside 0..%d", hdr.Size, objects.MaxObjectSize)
		}
		e.Size = hdr.Size
		e.Sparse = hdr.Size > 0 && isSparseMember(hdr)
		if b.total += hdr.Size; b.total > b.maxSize {
			return fmt.Errorf("the tarball declares more than %d bytes of content (MaxSize)", b.maxSize)
		}
	case tar.TypeDir:
		e.Type = TypeDirectory
	case tar.TypeSymlink:
		e.Type = TypeSymlink
		e.Link = hdr.Linkname
	case tar.TypeLink:
		target, err := cleanMemberName(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hard link target: %w", err)
		}
		i, ok := b.index[target]
		if !ok || b.implicit[target] {
			return fmt.Errorf("hard link to %q, which is not an earlier member", hdr.Linkname)
		}
		if t := b.entries[i].Type; t == TypeDirectory {
			return fmt.Errorf("hard link to %q, which is a directory", hdr.Linkname)
		}
		e = Entry{Path: p, Type: TypeHardLink, Link: target}
	case tar.TypeChar:
		e.Type = TypeCharDevice
	case tar.TypeBlock:
		e.Type = TypeBlockDevice
	case tar.TypeFifo:
		e.Type = TypeFIFO
	default:
		return fmt.Errorf("unsupported member type %q", hdr.Typeflag)
	}
	if e.Type == TypeCharDevice || e.Type == TypeBlockDevice {
		if hdr.Devmajor < 0 || hdr.Devmajor > 1<<32-1 || hdr.Devminor < 0 || hdr.Devminor > 1<<32-1 {
			return fmt.Errorf("device numbers %d:%d out of range", hdr.Devmajor, hdr.Devminor)
		}
		e.DevMajor, e.DevMinor = uint32(hdr.Devmajor), uint32(hdr.Devminor)
	}
	if e.Type != TypeHardLink {
		xs, err := paxXattrs(hdr.PAXRecords, e.Type == TypeDirectory)
		if err != nil {
			return err
		}
		e.Xattrs = xs
	}
	if p == RootPath && e.Type != TypeDirectory {
		return fmt.Errorf("the root must be a directory, not a %s", e.Type)
	}
	if i, ok := b.index[p]; ok {
		if !b.implicit[p] || e.Type != TypeDirectory {
			return fmt.Errorf("duplicate entry (also a %s earlier in the tarball)", b.entries[i].Type)
		}
		// An explicit member for a directory its children already implied.
		delete(b.implicit, p)
		b.entries[i] = e
		return nil
	}
	if err := b.ensureParents(p); err != nil {
		return err
	}
	if e.Type == TypeRegular {
		d, err := b.content(tr, e.Size)
		if err != nil {
			return err
		}
		e.Digest = d
	}
	if len(b.entries) >= MaxEntries {
		return fmt.Errorf("more than %d entries", MaxEntries)
	}
	b.index[p] = len(b.entries)
	b.entries = append(b.entries, e)
	return nil
}

// content hashes a regular member (and hands it to the ingester, if any).
func (b *tarBuilder) content(tr io.Reader, size int64) (objects.Digest, error) {
	var d objects.Digest
	h := sha256.New()
	r := io.TeeReader(tr, h)
	var n int64
	var err error
	if b.opts.Ingest != nil {
		var w objects.Want
		w, err = b.opts.Ingest.Ingest(b.ctx, r)
		n = w.Size
	} else {
		n, err = io.Copy(io.Discard, r)
	}
	if err != nil {
		return d, fmt.Errorf("read content: %w", err)
	}
	if n != size {
		return d, fmt.Errorf("content is %d bytes, header says %d", n, size)
	}
	h.Sum(d[:0])
	return d, nil
}

// paxXattrs extracts extended attributes from PAX records.
func paxXattrs(recs map[string]string, isDir bool) ([]Xattr, error) {
	var xs, acls []Xattr
	for k, v := range recs {
		switch {
		case strings.HasPrefix(k, paxSchilyXattr):
			xs = append(xs, Xattr{Name: strings.TrimPrefix(k, paxSchilyXattr), Value: []byte(v)})
		case strings.HasPrefix(k, paxLibarchiveXattr):
			name, err := url.PathUnescape(strings.TrimPrefix(k, paxLibarchiveXattr))
			if err != nil {
				return nil, fmt.Errorf("PAX record %q: bad xattr name: %w", k, err)
			}
			val, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				val, err = base64.RawStdEncoding.DecodeString(v)
			}
			if err != nil {
				return nil, fmt.Errorf("PAX record %q: bad base64 value: %w", k, err)
			}
			xs = append(xs, Xattr{Name: name, Value: val})
		case k == paxACLAccess || k == paxACLDefault:
			name := aclAccess
			if k == paxACLDefault {
				name = aclDefault
			}
			val, err := aclFromText(v, k == paxACLDefault)
			if err != nil {
				return nil, fmt.Errorf("PAX record %s: %w", k, err)
			}
			if val != nil {
				acls = append(acls, Xattr{Name: name, Value: val})
			}
		}
	}
	// tar --acls --xattrs-include='*' stores an ACL both ways; the raw
	// xattr is exact, the text form only fills in when it is absent.
	for _, a := range acls {
		if !slices.ContainsFunc(xs, func(x Xattr) bool { return x.Name == a.Name }) {
			xs = append(xs, a)
		}
	}
	slices.SortFunc(xs, func(a, b Xattr) int { return strings.Compare(a.Name, b.Name) })
	for i := 1; i < len(xs); i++ {
		if xs[i].Name == xs[i-1].Name {
			return nil, fmt.Errorf("xattr %q given twice", xs[i].Name)
		}
	}
	return xs, nil
}

// resolveHardLinks makes each group of hard links point at the canonically
// first name, which takes the inode's metadata and content.
func resolveHardLinks(m *Manifest) error {
	index := make(map[string]int, len(m.Entries))
	for i := range m.Entries {
		index[m.Entries[i].Path] = i
	}
	// root follows links to the entry holding the data (tar links may chain
	// through other links).
	root := func(i int) (int, error) {
		for hops := 0; m.Entries[i].Type == TypeHardLink; hops++ {
			j, ok := index[m.Entries[i].Link]
			if !ok || hops > len(m.Entries) {
				return 0, fmt.Errorf("hard link %q: target %q is missing", m.Entries[i].Path, m.Entries[i].Link)
			}
			i = j
		}
		return i, nil
	}
	groups := map[int][]int{}
	for i := range m.Entries {
		if m.Entries[i].Type == TypeHardLink {
			r, err := root(i)
			if err != nil {
				return err
			}
			groups[r] = append(groups[r], i)
		}
	}
	for data, links := range groups {
		best := data
		for _, li := range links {
			if comparePaths(m.Entries[li].Path, m.Entries[best].Path) < 0 {
				best = li
			}
		}
		if best != data {
			bestPath, dataPath := m.Entries[best].Path, m.Entries[data].Path
			m.Entries[best] = m.Entries[data]
			m.Entries[best].Path = bestPath
			m.Entries[data] = Entry{Path: dataPath, Type: TypeHardLink}
			links = append(links, data)
		}
		for _, li := range links {
			if li != best {
				m.Entries[li].Link = m.Entries[best].Path
			}
		}
	}
	return nil
}

// isSparseMember reports whether a member was archived as a sparse file
// (GNU tar --sparse: an old GNU sparse header or GNU.sparse.* PAX records).
func isSparseMember(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// memberObject returns the object a tarball member at path p carries, as m
// describes it. The members of a group of hard links carry the data once, in
// the member tar met first, the others pointing to it by name; m instead
// gives the data to the group's canonically first name (resolveHardLinks),
// which may be one of the link members. So the data member's entry can be a
// hard link, and then the member carries its target's object. ok is false
// for a path m lacks or whose entry is not (a link to) a regular file.
func memberObject(m *Manifest, p string) (d objects.Digest, ok bool) {
	i := lookup(m, p)
	if i >= 0 && m.Entries[i].Type == TypeHardLink {
		i = lookup(m, m.Entries[i].Link)
	}
	if i < 0 || m.Entries[i].Type != TypeRegular {
		return objects.Digest{}, false
	}
	return m.Entries[i].Digest, true
}
