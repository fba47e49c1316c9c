package patch

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
)

// Inode flags (linux/fs.h) that make an entry refuse changes: an immutable
// inode cannot be changed, renamed over, linked or deleted, and an immutable
// or append-only directory refuses new and removed entries.
const (
	fsImmutableFL = 0x00000010
	fsAppendFL    = 0x00000020
)

// clearFlags removes the immutable and append-only flags from every entry
// the scan found carrying them. A manifest carries no inode flags, so the
// exact revision has none; and the engine could not replace, delete or set
// the metadata of such an entry (or change a flagged directory's entries).
// Only regular files, directories and fifos can be opened to change their
// flags safely; a flag on another type is an error naming it.
func (p *plan) clearFlags() error {
	for _, path := range p.flagged {
		typ := manifest.Type(0)
		if i := p.cur.Lookup(path); i >= 0 {
			typ = p.cur.Entries[i].Type
			if typ == manifest.TypeHardLink {
				typ = p.cur.Entries[p.cur.Lookup(p.cur.Entries[i].Link)].Type
			}
		}
		if err := p.t.clearFlags(path, typ); err != nil {
			return fmt.Errorf("patch %s: %w", p.t.root, err)
		}
		p.log.Info("cleared immutable/append-only flag", "root", p.t.root, "path", path)
	}
	return nil
}

func (t *tree) clearFlags(path string, typ manifest.Type) error {
	flags := unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOCTTY
	switch typ {
	case manifest.TypeDirectory:
		flags |= unix.O_DIRECTORY
	case manifest.TypeRegular, manifest.TypeFIFO:
	default:
		what := "an entry the manifest cannot describe"
		if typ != 0 {
			what = "a " + typ.String()
		}
		return fmt.Errorf("%s is %s with the immutable or append-only inode flag, which the unpacker cannot clear on it: clear it (chattr -i -a)", path, what)
	}
	fd, err := openAt(t.rootfd, path, flags)
	if err != nil {
		return fmt.Errorf("clear inode flags of %s: open: %w", path, explainXDEV(err))
	}
	defer unix.Close(fd)
	cur, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		return fmt.Errorf("clear inode flags of %s: read them: %w", path, err)
	}
	if cur&(fsImmutableFL|fsAppendFL) == 0 {
		return nil
	}
	if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(cur&^(fsImmutableFL|fsAppendFL))); err != nil {
		return fmt.Errorf("clear inode flags of %s (immutable/append-only): %w", path, err)
	}
	return nil
}

// deleteOther removes the entries the manifest cannot describe (sockets,
// unknown types): they are never content, so no revision keeps them, and a
// directory holding one could not be removed.
func (p *plan) deleteOther(touched map[string]bool) error {
	for _, path := range p.other {
		fd, name, err := p.t.parent(path)
		if err != nil {
			return fmt.Errorf("patch %s: delete %s: %w", p.t.root, path, err)
		}
		if err := unix.Unlinkat(fd, name, 0); err != nil && err != unix.ENOENT {
			return fmt.Errorf("patch %s: delete %s (a socket or an entry of unknown type): %w", p.t.root, path, err)
		}
		dir, _ := splitPath(path)
		touched[dir] = true
		p.prog.add(1, 0)
		if err := p.hook(PointDeleted, path); err != nil {
			return err
		}
	}
	return nil
}
