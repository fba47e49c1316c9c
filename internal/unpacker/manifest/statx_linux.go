package manifest

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// entryStat is what a scan reads of one directory entry, with statx(2): the
// usual stat fields plus the mount the entry is on (so a scan never crosses
// into another mount, even a bind mount of the same file system) and the
// inode attributes (immutable, append-only).
type entryStat struct {
	mode         uint32 // file type and permission bits
	uid, gid     uint32
	nlink        uint32
	size, blocks int64 // blocks: 512-byte units allocated
	ino, dev     uint64
	rdev         uint64
	mtimeNs      int64
	ctimeNs      int64
	// mntID is the mount ID, 0 when the kernel does not report it (< 5.8).
	mntID uint64
	// attrs holds the STATX_ATTR_* bits the file system reports.
	attrs uint64
}

// flaggedAttrs are the inode flags that make an entry refuse changes
// (chattr +i, +a); the manifest does not carry them.
const flaggedAttrs = unix.STATX_ATTR_IMMUTABLE | unix.STATX_ATTR_APPEND

func (st *entryStat) kind() uint32 { return st.mode & unix.S_IFMT }

func statxAt(dirfd int, name string, flags int) (entryStat, error) {
	var x unix.Statx_t
	for {
		err := unix.Statx(dirfd, name, flags|unix.AT_SYMLINK_NOFOLLOW|unix.AT_STATX_SYNC_AS_STAT,
			unix.STATX_BASIC_STATS|unix.STATX_MNT_ID, &x)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return entryStat{}, err
		}
		break
	}
	st := entryStat{
		mode: uint32(x.Mode), uid: x.Uid, gid: x.Gid, nlink: x.Nlink,
		size: int64(x.Size), blocks: int64(x.Blocks), ino: x.Ino,
		dev:     unix.Mkdev(x.Dev_major, x.Dev_minor),
		rdev:    unix.Mkdev(x.Rdev_major, x.Rdev_minor),
		mtimeNs: x.Mtime.Sec*1e9 + int64(x.Mtime.Nsec),
		ctimeNs: x.Ctime.Sec*1e9 + int64(x.Ctime.Nsec),
		attrs:   x.Attributes & x.Attributes_mask,
	}
	if x.Mask&unix.STATX_MNT_ID != 0 {
		st.mntID = x.Mnt_id
	}
	return st, nil
}

// statOfEntry is the stat cache's view of an entry.
func statOfEntry(st *entryStat) fileStat {
	return fileStat{Ino: st.ino, Size: st.size, MtimeNs: st.mtimeNs, CtimeNs: st.ctimeNs}
}

// errOtherMount is wrapped by scan errors for an entry on another mount than
// the root: a mount point inside the tree, which the scan never crosses (the
// patch engine must never act outside the volume it patches).
var errOtherMount = errors.New("a mount point inside the tree (another file system or a bind mount): refusing to cross it; unmount it first")

// sameMount checks that st is on the root's mount.
func (s *scanner) sameMount(st *entryStat) error {
	if st.dev != s.rootSt.dev || (st.mntID != 0 && s.rootSt.mntID != 0 && st.mntID != s.rootSt.mntID) {
		return fmt.Errorf("is on mount %d (device %d:%d), the root on mount %d (device %d:%d): %w",
			st.mntID, unix.Major(st.dev), unix.Minor(st.dev), s.rootSt.mntID, unix.Major(s.rootSt.dev), unix.Minor(s.rootSt.dev), errOtherMount)
	}
	return nil
}
