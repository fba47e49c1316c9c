package patch

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/manifest"
)

const capabilityXattr = "security.capability"

// xattrPath names entry name of directory dirfd for the l*xattr calls, which
// act on the entry itself, never on a symlink's target.
func xattrPath(dirfd int, name string) string {
	return "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + name
}

// metaNeedsUpdate reports whether the entry's ownership, mode, xattrs or
// (when withMtime) mtime differ.
func metaNeedsUpdate(cur, want *manifest.Entry, withMtime bool) bool {
	if cur.UID != want.UID || cur.GID != want.GID || (want.Type != manifest.TypeSymlink && cur.Mode != want.Mode) {
		return true
	}
	if withMtime && cur.MtimeNs != want.MtimeNs {
		return true
	}
	return !xattrsEqual(cur.Xattrs, want.Xattrs)
}

func xattrsEqual(a, b []manifest.Xattr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

// setMeta gives entry name of dirfd the ownership, mode, xattrs and (when
// withMtime) mtime of want. cur is what the scan saw there, or nil for an
// entry just created (whose xattrs, e.g. inherited default ACLs, are read).
// Order matters: chown clears setuid/setgid and file capabilities, so mode
// and xattrs follow it; mtime comes last.
func setMeta(dirfd int, name string, want, cur *manifest.Entry, withMtime bool) error {
	var curX []manifest.Xattr
	chowned := false
	if cur == nil || cur.UID != want.UID || cur.GID != want.GID {
		if err := unix.Fchownat(dirfd, name, int(want.UID), int(want.GID), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown to %d:%d: %w", want.UID, want.GID, err)
		}
		chowned = true
	}
	if want.Type != manifest.TypeSymlink && (cur == nil || chowned || cur.Mode != want.Mode) {
		if err := chmodNoFollow(dirfd, name, want.Mode); err != nil {
			return fmt.Errorf("chmod to %#o: %w", want.Mode, err)
		}
	}
	if cur != nil {
		curX = cur.Xattrs
		if chowned {
			// The kernel dropped any file capability with the chown.
			curX = withoutXattr(curX, capabilityXattr)
		}
	} else {
		var err error
		if curX, err = listXattrs(dirfd, name); err != nil {
			return err
		}
	}
	if err := reconcileXattrs(dirfd, name, curX, want.Xattrs); err != nil {
		return err
	}
	if withMtime && (cur == nil || cur.MtimeNs != want.MtimeNs) {
		if err := setMtime(dirfd, name, want.MtimeNs); err != nil {
			return err
		}
	}
	return nil
}

// chmodNoFollow changes the mode without following a final symlink: with
// fchmodat2 where the kernel has it; older kernels get plain fchmodat, which
// is only ever called on entries known not to be symlinks (created by us or
// seen as such by the scan, with no one else writing the volume).
func chmodNoFollow(dirfd int, name string, mode uint32) error {
	err := unix.Fchmodat(dirfd, name, mode, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		err = unix.Fchmodat(dirfd, name, mode, 0)
	}
	return err
}

func setMtime(dirfd int, name string, ns int64) error {
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(ns)}
	if err := unix.UtimesNanoAt(dirfd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set mtime: %w", err)
	}
	return nil
}

func withoutXattr(xs []manifest.Xattr, name string) []manifest.Xattr {
	out := make([]manifest.Xattr, 0, len(xs))
	for _, x := range xs {
		if x.Name != name {
			out = append(out, x)
		}
	}
	return out
}

// reconcileXattrs removes the attributes want lacks and sets those that
// differ.
func reconcileXattrs(dirfd int, name string, cur, want []manifest.Xattr) error {
	if xattrsEqual(cur, want) {
		return nil
	}
	p := xattrPath(dirfd, name)
	wanted := make(map[string][]byte, len(want))
	for _, x := range want {
		wanted[x.Name] = x.Value
	}
	have := make(map[string][]byte, len(cur))
	for _, x := range cur {
		have[x.Name] = x.Value
		if _, ok := wanted[x.Name]; !ok {
			if err := unix.Lremovexattr(p, x.Name); err != nil && !errors.Is(err, unix.ENODATA) {
				return fmt.Errorf("remove xattr %s: %w", x.Name, err)
			}
		}
	}
	for _, x := range want {
		if v, ok := have[x.Name]; ok && bytes.Equal(v, x.Value) {
			continue
		}
		if err := unix.Lsetxattr(p, x.Name, x.Value, 0); err != nil {
			return fmt.Errorf("set xattr %s: %w", x.Name, err)
		}
	}
	return nil
}

// listXattrs reads the xattrs of entry name of dirfd.
func listXattrs(dirfd int, name string) ([]manifest.Xattr, error) {
	p := xattrPath(dirfd, name)
	buf := make([]byte, 1024)
	for {
		n, err := unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) && len(buf) < 1<<20 {
			buf = make([]byte, len(buf)*8)
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list xattrs: %w", err)
		}
		buf = buf[:n]
		break
	}
	var out []manifest.Xattr
	for _, n := range bytes.Split(buf, []byte{0}) {
		if len(n) == 0 {
			continue
		}
		// Only the names matter to the caller's reconciliation when the value
		// is then compared; read values so equal ones are not rewritten.
		val := make([]byte, 256)
		for {
			sz, err := unix.Lgetxattr(p, string(n), val)
			if errors.Is(err, unix.ERANGE) && len(val) <= manifest.MaxXattrValueLen {
				val = make([]byte, len(val)*8)
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("read xattr %s: %w", n, err)
			}
			val = val[:sz]
			break
		}
		out = append(out, manifest.Xattr{Name: string(n), Value: val})
	}
	return out, nil
}
