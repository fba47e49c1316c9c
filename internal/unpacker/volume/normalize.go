package volume

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"

	"golang.org/x/sys/unix"
)

// normalizeStats counts what Normalize changed.
type normalizeStats struct {
	inodes         int  // inodes rewritten
	generations    int  // of which the generation changed
	checksumsFixed bool // e2fsck rewrote block checksums
	journalBlocks  int  // journal blocks zeroed
	superblock     bool // superblock rewritten
}

func normalize(ctx context.Context, layout *Layout, opts NormalizeOptions) error {
	if layout == nil {
		return fmt.Errorf("normalize volume: no layout")
	}
	dev := layout.Root.Device
	switch layout.Root.Filesystem {
	case "ext4", "ext3", "ext2":
	default:
		return fmt.Errorf("normalize root %s: file system %q: only ext2/3/4 is normalized", dev, layout.Root.Filesystem)
	}
	log := loggerOr(opts.Logger).With("device", dev)
	st, err := normalizeExt4(ctx, log, dev)
	if err != nil {
		return fmt.Errorf("normalize root %s: %w", dev, err)
	}
	log.Info("root file system normalized for a snapshot", "inodes", st.inodes, "generations", st.generations,
		"block_checksums_fixed", st.checksumsFixed, "journal_blocks_zeroed", st.journalBlocks, "superblock", st.superblock)
	return nil
}

// normalizeExt4 runs the passes in an order that leaves the superblock
// last: e2fsck, when it runs, writes it too.
func normalizeExt4(ctx context.Context, log *slog.Logger, dev string) (normalizeStats, error) {
	var st normalizeStats
	// O_EXCL on a block device fails with EBUSY while it is mounted: the
	// kernel's copy of the metadata would overwrite ours.
	f, err := os.OpenFile(dev, os.O_RDWR|unix.O_EXCL, 0)
	if err != nil {
		return st, fmt.Errorf("open unmounted root: %w", err)
	}
	defer f.Close()
	sb, err := readSuperblock(f)
	if err != nil {
		return st, err
	}
	state := le16(sb.raw, sbState)
	if state&stateValid == 0 || state&stateErrors != 0 || le32(sb.raw, sbFeatureIncompt)&incompatRecover != 0 ||
		le32(sb.raw, sbFeatureRoCompt)&roCompatOrphanPres != 0 {
		return st, fmt.Errorf("the file system was not cleanly unmounted or has errors (state %#x); refusing to rewrite its metadata", state)
	}
	if le32(sb.raw, sbErrorCount) != 0 {
		return st, fmt.Errorf("the file system recorded %d errors; refusing to rewrite its metadata", le32(sb.raw, sbErrorCount))
	}
	needCheck, err := normalizeInodes(f, sb, &st)
	if err != nil {
		return st, err
	}
	if err := f.Sync(); err != nil {
		return st, fmt.Errorf("flush inodes: %w", err)
	}
	if needCheck {
		// Directory blocks and extent tree blocks carry checksums seeded
		// with their inode's generation; e2fsck rewrites those that no
		// longer match (and nothing else on a clean file system). The
		// device must not be held open exclusively meanwhile.
		f.Close()
		if err := fixBlockChecksums(ctx, log, dev); err != nil {
			return st, err
		}
		st.checksumsFixed = true
		if f, err = os.OpenFile(dev, os.O_RDWR|unix.O_EXCL, 0); err != nil {
			return st, fmt.Errorf("open unmounted root: %w", err)
		}
		defer f.Close()
		if sb, err = readSuperblock(f); err != nil {
			return st, err
		}
	}
	if sb.hasJournal && sb.journalInum != 0 {
		if st.journalBlocks, err = normalizeJournal(f, sb); err != nil {
			return st, err
		}
	}
	if st.superblock, err = normalizeSuperblock(f, sb); err != nil {
		return st, err
	}
	if err := f.Sync(); err != nil {
		return st, fmt.Errorf("flush: %w", err)
	}
	return st, nil
}

func readSuperblock(f *os.File) (*superblock, error) {
	raw := make([]byte, sbSize)
	if _, err := f.ReadAt(raw, sbOffset); err != nil {
		return nil, fmt.Errorf("read superblock: %w", err)
	}
	return parseSuperblock(raw)
}

// groupInodes returns the inode table's block and the number of inode
// slots in use or once used (the rest of the table was never written) of
// group g, or 0 slots when its inodes were never initialised.
func groupInodes(f *os.File, sb *superblock, g uint32) (table uint64, bitmap []byte, used uint32, err error) {
	gdt := int64(sb.firstDataBlock+1) * sb.blockSize
	d := make([]byte, sb.descSize)
	if _, err := f.ReadAt(d, gdt+int64(g)*sb.descSize); err != nil {
		return 0, nil, 0, fmt.Errorf("read group descriptor %d: %w", g, err)
	}
	if le16(d, gdFlags)&bgInodeUninit != 0 {
		return 0, nil, 0, nil
	}
	bm := uint64(le32(d, gdInodeBitmapLo))
	table = uint64(le32(d, gdInodeTableLo))
	unused := uint32(le16(d, gdItableUnusedLo))
	if sb.descSize >= 64 {
		bm |= uint64(le32(d, gdInodeBitmapHi)) << 32
		table |= uint64(le32(d, gdInodeTableHi)) << 32
		unused |= uint32(le16(d, gdItableUnusedHi)) << 16
	}
	if unused > sb.inodesPerGroup {
		return 0, nil, 0, fmt.Errorf("group %d: %d unused inodes of %d", g, unused, sb.inodesPerGroup)
	}
	bitmap = make([]byte, (sb.inodesPerGroup+7)/8)
	if _, err := f.ReadAt(bitmap, int64(bm)*sb.blockSize); err != nil {
		return 0, nil, 0, fmt.Errorf("read inode bitmap of group %d: %w", g, err)
	}
	return table, bitmap, sb.inodesPerGroup - unused, nil
}

// normalizeInodes gives every inode in use, other than the reserved ones
// mke2fs alone writes, times and a generation that depend only on its
// content: access, change and creation time become its modification time
// (which the revision sets), the generation and the change counter 0. The
// kernel draws generations at random and stamps ctime and crtime with the
// clock. It reports whether a directory or an extent tree block of a
// changed inode needs its checksum rewritten.
func normalizeInodes(f *os.File, sb *superblock, st *normalizeStats) (bool, error) {
	needCheck := false
	isz := int64(sb.inodeSize)
	for g := uint32(0); g < sb.groups; g++ {
		table, bitmap, used, err := groupInodes(f, sb, g)
		if err != nil {
			return false, err
		}
		if used == 0 {
			continue
		}
		buf := make([]byte, int64(used)*isz)
		base := int64(table) * sb.blockSize
		if _, err := f.ReadAt(buf, base); err != nil {
			return false, fmt.Errorf("read inode table of group %d: %w", g, err)
		}
		for i := uint32(0); i < used; i++ {
			if bitmap[i/8]&(1<<(i%8)) == 0 {
				continue
			}
			ino := g*sb.inodesPerGroup + i + 1
			if ino < sb.firstIno && ino != 2 {
				continue // reserved: mke2fs's alone (the root directory is 2)
			}
			raw := buf[int64(i)*isz : int64(i+1)*isz]
			if sb.metadataCsum {
				got, mask := storedInodeChecksum(raw)
				if want := sb.inodeChecksum(ino, raw) & mask; got != want {
					return false, fmt.Errorf("inode %d: checksum %#x, computed %#x: not normalizing a file system this code does not read right", ino, got, want)
				}
			}
			old := append([]byte(nil), raw...)
			genChanged := normalizeInode(raw)
			if bytes.Equal(old, raw) {
				continue
			}
			if sb.metadataCsum {
				putInodeChecksum(raw, sb.inodeChecksum(ino, raw))
			}
			if _, err := f.WriteAt(raw, base+int64(i)*isz); err != nil {
				return false, fmt.Errorf("write inode %d: %w", ino, err)
			}
			st.inodes++
			if genChanged {
				st.generations++
				if sb.metadataCsum && (le16(raw, inMode)&modeTypeMask == modeTypeDir || hasExtentBlocks(raw)) {
					needCheck = true
				}
			}
		}
	}
	return needCheck, nil
}

// normalizeInode rewrites raw's times, generation and change counter and
// reports whether the generation changed.
func normalizeInode(raw []byte) bool {
	put := binary.LittleEndian.PutUint32
	mtime := le32(raw, inMtime)
	put(raw[inAtime:], mtime)
	put(raw[inCtime:], mtime)
	put(raw[inVersionLo:], 0)
	genChanged := le32(raw, inGeneration) != 0
	put(raw[inGeneration:], 0)
	clearUnusedExtentSlots(raw)
	if inodeFits(raw, inMtimeExtra+4) {
		mx := le32(raw, inMtimeExtra)
		put(raw[inCtimeExtra:], mx)
		if inodeFits(raw, inAtimeExtra+4) {
			put(raw[inAtimeExtra:], mx)
		}
		if inodeFits(raw, inCrtime+4) {
			put(raw[inCrtime:], mtime)
		}
		if inodeFits(raw, inCrtimeExtra+4) {
			put(raw[inCrtimeExtra:], mx)
		}
		if inodeFits(raw, inVersionHi+4) {
			put(raw[inVersionHi:], 0)
		}
	}
	return genChanged
}

// hasExtentBlocks reports whether an inode's extent tree has blocks of its
// own (depth > 0), whose checksums depend on the inode's generation.
// clearUnusedExtentSlots zeroes the slots of the inode's extent tree root
// past its entries: ext4 leaves there the extents that splitting an
// unwritten extent made and merging took back, which depend on when
// writeback happened to run.
func clearUnusedExtentSlots(raw []byte) {
	if le32(raw, inFlags)&flagExtents == 0 || le16(raw, inBlock) != extentMagic {
		return
	}
	if used := inBlock + 12 + 12*int(le16(raw, inBlock+2)); used < inBlock+60 {
		clear(raw[used : inBlock+60])
	}
}

func hasExtentBlocks(raw []byte) bool {
	return le32(raw, inFlags)&flagExtents != 0 && le16(raw, inBlock) == extentMagic && le16(raw, inBlock+6) > 0
}

// fixBlockChecksums has e2fsck rewrite the checksums of directory and
// extent blocks whose inode's generation changed. Exit status 1 means it
// corrected something, which is what it is run for.
func fixBlockChecksums(ctx context.Context, log *slog.Logger, dev string) error {
	cmd := exec.CommandContext(ctx, "e2fsck", "-f", "-y", "-E", "no_optimize_extents", dev)
	cmd.Env = append(os.Environ(), fixedTimeEnv()...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		return fmt.Errorf("rewrite block checksums: e2fsck -fy on %s: %w%s", dev, err, stderrTail(out))
	}
	log.Debug("e2fsck rewrote block checksums", "output", string(out))
	return nil
}

// inodeBytes reads inode ino.
func inodeBytes(f *os.File, sb *superblock, ino uint32) ([]byte, error) {
	g, i := (ino-1)/sb.inodesPerGroup, (ino-1)%sb.inodesPerGroup
	table, _, used, err := groupInodes(f, sb, g)
	if err != nil {
		return nil, err
	}
	if i >= used {
		return nil, fmt.Errorf("inode %d was never initialised", ino)
	}
	raw := make([]byte, sb.inodeSize)
	if _, err := f.ReadAt(raw, int64(table)*sb.blockSize+int64(i)*int64(sb.inodeSize)); err != nil {
		return nil, fmt.Errorf("read inode %d: %w", ino, err)
	}
	return raw, nil
}

// extent is a run of a file's blocks: logical start, physical start, length.
type extent struct {
	logical, physical uint64
	length            uint64
}

// extentsOf lists the extents of an inode with an extent tree.
func extentsOf(f *os.File, sb *superblock, raw []byte) ([]extent, error) {
	if le32(raw, inFlags)&flagExtents == 0 {
		return nil, fmt.Errorf("not an extent-mapped inode")
	}
	var out []extent
	var walk func(node []byte, depthLeft int) error
	walk = func(node []byte, depthLeft int) error {
		if le16(node, 0) != extentMagic {
			return fmt.Errorf("bad extent header")
		}
		n, depth := int(le16(node, 2)), int(le16(node, 6))
		if depth != depthLeft || 12+12*n > len(node) {
			return fmt.Errorf("inconsistent extent tree")
		}
		for k := 0; k < n; k++ {
			e := node[12+12*k : 24+12*k]
			if depth == 0 {
				l := uint64(le16(e, 4))
				if l > 32768 {
					l -= 32768 // unwritten
				}
				out = append(out, extent{logical: uint64(le32(e, 0)), physical: uint64(le16(e, 6))<<32 | uint64(le32(e, 8)), length: l})
				continue
			}
			child := make([]byte, sb.blockSize)
			if _, err := f.ReadAt(child, int64(uint64(le16(e, 8))<<32|uint64(le32(e, 4)))*sb.blockSize); err != nil {
				return fmt.Errorf("read extent block: %w", err)
			}
			if err := walk(child, depth-1); err != nil {
				return err
			}
		}
		return nil
	}
	root := raw[inBlock : inBlock+60]
	if err := walk(root, int(le16(root, 6))); err != nil {
		return nil, err
	}
	return out, nil
}

// normalizeJournal makes a clean journal look as mke2fs left it: every log
// block zero (the kernel leaves the last transactions there, with commit
// times) and the superblock's next transaction 1 and log head 0. Safe only when the journal
// is empty (start 0); with no old block left, no stale transaction can ever
// be taken for a new one. It returns the number of blocks it zeroed.
func normalizeJournal(f *os.File, sb *superblock) (int, error) {
	raw, err := inodeBytes(f, sb, sb.journalInum)
	if err != nil {
		return 0, fmt.Errorf("journal: %w", err)
	}
	exts, err := extentsOf(f, sb, raw)
	if err != nil {
		return 0, fmt.Errorf("journal inode %d: %w", sb.journalInum, err)
	}
	var jsbAt int64 = -1
	for _, e := range exts {
		if e.logical == 0 && e.length > 0 {
			jsbAt = int64(e.physical) * sb.blockSize
		}
	}
	if jsbAt < 0 {
		return 0, fmt.Errorf("journal: no block 0")
	}
	jsb := make([]byte, jsbSize)
	if _, err := f.ReadAt(jsb, jsbAt); err != nil {
		return 0, fmt.Errorf("read journal superblock: %w", err)
	}
	be := binary.BigEndian
	if be.Uint32(jsb) != jsbMagicValue || (be.Uint32(jsb[jsbBlocktype:]) != 3 && be.Uint32(jsb[jsbBlocktype:]) != 4) {
		return 0, fmt.Errorf("journal: no journal superblock in block 0")
	}
	if be.Uint32(jsb[jsbStart:]) != 0 || be.Uint32(jsb[jsbErrno:]) != 0 {
		return 0, fmt.Errorf("journal is not empty (start %d, errno %d); refusing to clear it", be.Uint32(jsb[jsbStart:]), int32(be.Uint32(jsb[jsbErrno:])))
	}
	csum := be.Uint32(jsb[jsbIncompat:])&(jsbIncompatCsV2|jsbIncompatCsV3) != 0
	if csum && be.Uint32(jsb[jsbChecksum:]) != journalSuperblockChecksum(jsb) {
		return 0, fmt.Errorf("journal superblock checksum does not match")
	}
	zeroed := 0
	blk := make([]byte, sb.blockSize)
	zero := make([]byte, sb.blockSize)
	for _, e := range exts {
		for k := uint64(0); k < e.length; k++ {
			if e.logical+k == 0 {
				continue
			}
			at := int64(e.physical+k) * sb.blockSize
			if _, err := f.ReadAt(blk, at); err != nil {
				return zeroed, fmt.Errorf("read journal block %d: %w", e.logical+k, err)
			}
			if bytes.Equal(blk, zero) {
				continue // leave it unwritten: snapshots stay incremental
			}
			if _, err := f.WriteAt(zero, at); err != nil {
				return zeroed, fmt.Errorf("clear journal block %d: %w", e.logical+k, err)
			}
			zeroed++
		}
	}
	if be.Uint32(jsb[jsbSequence:]) != 1 || be.Uint32(jsb[jsbHead:]) != 0 {
		// Head 0: the next mount starts the log at its first block, as
		// on a new journal (the head only matters to journal_cycle_record).
		be.PutUint32(jsb[jsbSequence:], 1)
		be.PutUint32(jsb[jsbHead:], 0)
		if csum {
			be.PutUint32(jsb[jsbChecksum:], journalSuperblockChecksum(jsb))
		}
		if _, err := f.WriteAt(jsb, jsbAt); err != nil {
			return zeroed, fmt.Errorf("write journal superblock: %w", err)
		}
	}
	return zeroed, nil
}

// normalizeSuperblock resets what mounting and writing record in the
// superblock to what a new file system made at FixedTime holds: never
// mounted, mount count 0, written, checked and made at FixedTime, no
// lifetime writes, no last mount point (the daemon's mount point names the
// volume). It reports whether it wrote anything.
func normalizeSuperblock(f *os.File, sb *superblock) (bool, error) {
	old := append([]byte(nil), sb.raw...)
	raw := sb.raw
	t := uint64(FixedTime.Unix())
	put := binary.LittleEndian.PutUint32
	put(raw[sbMtime:], 0)
	raw[sbMtimeHi] = 0
	for _, field := range []struct{ lo, hi int }{{sbWtime, sbWtimeHi}, {sbLastcheck, sbLastcheckHi}, {sbMkfsTime, sbMkfsTimeHi}} {
		put(raw[field.lo:], uint32(t))
		raw[field.hi] = byte(t >> 32)
	}
	binary.LittleEndian.PutUint16(raw[sbMntCount:], 0)
	binary.LittleEndian.PutUint64(raw[sbKbytesWritten:], 0)
	clear(raw[sbLastMounted : sbLastMounted+64])
	sb.setChecksum()
	if bytes.Equal(old, raw) {
		return false, nil
	}
	if _, err := f.WriteAt(raw, sbOffset); err != nil {
		return false, fmt.Errorf("write superblock: %w", err)
	}
	return true, nil
}
