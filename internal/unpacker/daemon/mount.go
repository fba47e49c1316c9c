package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// Linux's FIFREEZE and FITHAW ioctls (_IOWR('X', 119/120, int)); x/sys/unix
// does not define them.
const (
	ioctlFIFREEZE = 0xC0045877
	ioctlFITHAW   = 0xC0045878
)

// isMountPoint reports whether dir is a mount point in this mount namespace.
func isMountPoint(dir string) (bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, fmt.Errorf("read mount table: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMountPath(fields[4]) == dir {
			return true, nil
		}
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("read mount table: %w", err)
	}
	return false, nil
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// rootMountFlags are the flags every volume is mounted with: its content is
// image content, never run or used on this machine. nodev does not keep the
// engine from creating device nodes (mknod); it keeps them from being opened
// here. noatime: reading a file must not change the volume (and its snapshot).
const rootMountFlags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME

// rootMountData returns the file-system specific mount options of a volume's
// root. XFS refuses to mount a second file system with the UUID of a mounted
// one (a volume made from the snapshot of the AMI this instance booted from)
// unless told nouuid. ext4's auto_da_alloc starts writeback at every rename
// over an existing file (for programs that never fsync); the engine renames
// hundreds of files into place and makes them durable with one syncfs, and a
// crash before that leaves the stream dirty and re-verified.
func rootMountData(fstype string) string {
	switch fstype {
	case "xfs":
		return "nouuid"
	case "ext4", "ext3":
		return "noauto_da_alloc"
	}
	return ""
}

// mountRoot mounts the root file system dev (of type fstype) at dir unless
// something is mounted there already, with rootMountFlags and private
// propagation: mounts made below it in another mount namespace (one that
// got a copy of it) never show up in it, and the engine refuses any mount
// inside it anyway.
func mountRoot(dev, fstype, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create mount point %s: %w", dir, err)
	}
	mounted, err := isMountPoint(dir)
	if err != nil {
		return err
	}
	if fstype == "" {
		fstype = "ext4"
	}
	if !mounted {
		if err := unix.Mount(dev, dir, fstype, rootMountFlags, rootMountData(fstype)); err != nil {
			return fmt.Errorf("mount %s (%s) at %s: %w", dev, fstype, dir, err)
		}
		if err := unix.Mount("", dir, "", unix.MS_PRIVATE, ""); err != nil {
			return fmt.Errorf("make the mount of %s at %s private: %w", dev, dir, err)
		}
	}
	if fstype == "ext4" {
		return noGroupPreallocation(dir)
	}
	return nil
}

// noGroupPreallocation sets mb_group_prealloc to 0 for the ext4 file system
// mounted at dir (a setting of the mount, in sysfs). ext4 otherwise places
// the blocks of small files in a preallocation of the CPU the allocating
// thread runs on, and a goroutine moves between CPUs: the same unpack
// would place blocks differently on two machines. Without it small files
// are allocated like large ones, one after the other, and the engine's
// allocation order alone decides where blocks go (patch: Deterministic
// placement), so a revision's volumes are identical in every target.
func noGroupPreallocation(dir string) error {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return fmt.Errorf("turn off group preallocation of %s: %w", dir, err)
	}
	dev := fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	target, err := os.Readlink(dev)
	if err != nil {
		return fmt.Errorf("turn off group preallocation of %s: find its device: %w", dir, err)
	}
	knob := filepath.Join("/sys/fs/ext4", filepath.Base(target), "mb_group_prealloc")
	if err := os.WriteFile(knob, []byte("0"), 0); err != nil {
		return fmt.Errorf("turn off group preallocation of %s: %w", dir, err)
	}
	return nil
}

// mountsBeneath lists the mount points strictly inside dir (in this mount
// namespace): the daemon never patches a volume with another file system
// mounted inside it.
func mountsBeneath(dir string) ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	prefix := strings.TrimSuffix(dir, "/") + "/"
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 4 {
			if p := unescapeMountPath(fields[4]); strings.HasPrefix(p, prefix) {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// checkNoNestedMounts fails, naming them, when something is mounted inside
// the volume mounted at dir.
func checkNoNestedMounts(dir string) error {
	nested, err := mountsBeneath(dir)
	if err != nil {
		return err
	}
	if len(nested) > 0 {
		return wire.Errorf(wire.CodeConflict, "%d file systems are mounted inside the volume at %s (%s): the unpacker never patches across mount points; unmount them",
			len(nested), dir, strings.Join(nested, ", "))
	}
	return nil
}

// unmountRoot syncs and unmounts dir if it is mounted.
func unmountRoot(dir string) error {
	mounted, err := isMountPoint(dir)
	if err != nil || !mounted {
		return err
	}
	if err := syncFS(dir); err != nil {
		return err
	}
	if err := unix.Unmount(dir, 0); err != nil {
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
	return nil
}

// syncFS flushes the file system holding dir to its device (syncfs(2)).
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync file system at %s: %w", dir, err)
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("sync file system at %s: %w", dir, err)
	}
	return nil
}

// syncDevice flushes a block device's buffered writes (the boot loaders go
// to partitions outside the root file system).
func syncDevice(dev string) error {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("sync device %s: %w", dev, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync device %s: %w", dev, err)
	}
	return nil
}

// freezeFS freezes the file system mounted at dir; frozen already is fine.
func freezeFS(dir string) error {
	return fsIoctl(dir, ioctlFIFREEZE, "freeze", unix.EBUSY)
}

// thawFS thaws the file system mounted at dir; not frozen is fine.
func thawFS(dir string) error {
	return fsIoctl(dir, ioctlFITHAW, "thaw", unix.EINVAL)
}

func fsIoctl(dir string, req uint, what string, harmless unix.Errno) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("%s file system at %s: %w", what, dir, err)
	}
	defer f.Close()
	if err := unix.IoctlSetInt(int(f.Fd()), req, 0); err != nil && !errors.Is(err, harmless) {
		return fmt.Errorf("%s file system at %s: %w", what, dir, err)
	}
	return nil
}

// checkFS runs the file system's own checker in preen mode on an unmounted
// device (ext2/3/4 only; XFS replays its log at mount). Exit status 1 means
// errors were corrected, which is fine.
func checkFS(ctx context.Context, dev, fstype string) error {
	switch fstype {
	case "ext2", "ext3", "ext4", "":
	default:
		return nil
	}
	out, err := exec.CommandContext(ctx, "e2fsck", "-p", dev).CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check file system on %s: e2fsck -p: %w: %s", dev, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// isBlank reports whether a device carries no partition table and no file
// system signature (blkid -p exits with 2 when it finds nothing).
func isBlank(ctx context.Context, dev string) (bool, string, error) {
	out, err := exec.CommandContext(ctx, "blkid", "-p", "-o", "export", dev).CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 2 {
		return true, "", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("probe %s for signatures: blkid: %w: %s", dev, err, strings.TrimSpace(string(out)))
	}
	return false, strings.Join(strings.Fields(string(out)), " "), nil
}
