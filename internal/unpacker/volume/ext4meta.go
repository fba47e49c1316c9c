package volume

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// This file reads and writes the few ext4 on-disk structures Normalize
// touches (superblock, group descriptors, inodes, the journal superblock),
// at the offsets of the kernel's fs/ext4/ext4.h and include/linux/jbd2.h.

// Superblock field offsets (within the 1024-byte superblock).
const (
	sbOffset         = 1024 // the superblock's byte offset in the file system
	sbSize           = 1024
	sbBlocksCountLo  = 0x04
	sbFirstDataBlock = 0x14
	sbLogBlockSize   = 0x18
	sbBlocksPerGroup = 0x20
	sbInodesPerGroup = 0x28
	sbMtime          = 0x2C
	sbWtime          = 0x30
	sbMntCount       = 0x34
	sbMagic          = 0x38
	sbState          = 0x3A
	sbLastcheck      = 0x40
	sbFirstIno       = 0x54
	sbInodeSize      = 0x58
	sbFeatureCompat  = 0x5C
	sbFeatureIncompt = 0x60
	sbFeatureRoCompt = 0x64
	sbUUID           = 0x68
	sbLastMounted    = 0x88 // 64 bytes
	sbJournalInum    = 0xE0
	sbDescSize       = 0xFE
	sbMkfsTime       = 0x108
	sbBlocksCountHi  = 0x150
	sbKbytesWritten  = 0x178
	sbErrorCount     = 0x194
	sbChecksumSeed   = 0x270
	sbWtimeHi        = 0x274 // then mtime_hi, mkfs_time_hi, lastcheck_hi
	sbMtimeHi        = 0x275
	sbMkfsTimeHi     = 0x276
	sbLastcheckHi    = 0x277
	sbChecksum       = 0x3FC

	ext4Magic = 0xEF53

	stateValid  = 0x1 // cleanly unmounted
	stateErrors = 0x2

	compatHasJournal   = 0x4
	incompatRecover    = 0x4 // the journal needs recovery
	incompatExtents    = 0x40
	incompat64Bit      = 0x80
	incompatCsumSeed   = 0x2000
	roCompatMetaCsum   = 0x400
	roCompatOrphanPres = 0x10000
)

// Group descriptor field offsets.
const (
	gdInodeBitmapLo  = 0x04
	gdInodeTableLo   = 0x08
	gdFlags          = 0x12
	gdItableUnusedLo = 0x1C
	gdInodeBitmapHi  = 0x24
	gdInodeTableHi   = 0x28
	gdItableUnusedHi = 0x32

	bgInodeUninit = 0x1
)

// Inode field offsets.
const (
	inMode        = 0x00
	inAtime       = 0x08
	inCtime       = 0x0C
	inMtime       = 0x10
	inVersionLo   = 0x24 // osd1.linux1.l_i_version
	inBlock       = 0x28 // i_block, 60 bytes: the extent tree's root
	inGeneration  = 0x64
	inChecksumLo  = 0x7C
	inExtraIsize  = 0x80
	inChecksumHi  = 0x82
	inCtimeExtra  = 0x84
	inMtimeExtra  = 0x88
	inAtimeExtra  = 0x8C
	inCrtime      = 0x90
	inCrtimeExtra = 0x94
	inVersionHi   = 0x98
	goodOldInode  = 128

	extentMagic  = 0xF30A
	modeTypeDir  = 0x4000
	modeTypeMask = 0xF000
	inFlags      = 0x20
	flagExtents  = 0x80000
)

// Journal superblock (big-endian) field offsets.
const (
	jsbMagicValue   = 0xC03B3998
	jsbBlocktype    = 0x04
	jsbSequence     = 0x18
	jsbStart        = 0x1C
	jsbErrno        = 0x20
	jsbIncompat     = 0x28
	jsbHead         = 0x58 // where the log's head was at the last unmount (Linux 6.x)
	jsbChecksum     = 0xFC
	jsbSize         = 1024
	jsbIncompatCsV2 = 0x8
	jsbIncompatCsV3 = 0x10
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c is the kernel's crc32c(seed, data): no inversion on the way in or
// out (Go's Update inverts both).
func crc32c(seed uint32, data []byte) uint32 {
	return ^crc32.Update(^seed, castagnoli, data)
}

// superblock is a parsed ext4 superblock (raw keeps every byte).
type superblock struct {
	raw                                         []byte
	blockSize                                   int64
	groups, inodesPerGroup, firstIno, inodeSize uint32
	descSize                                    int64
	firstDataBlock                              uint64
	metadataCsum                                bool
	csumSeed                                    uint32
	journalInum                                 uint32
	hasJournal                                  bool
}

func le16(b []byte, off int) uint16 { return binary.LittleEndian.Uint16(b[off:]) }
func le32(b []byte, off int) uint32 { return binary.LittleEndian.Uint32(b[off:]) }

func parseSuperblock(raw []byte) (*superblock, error) {
	if len(raw) != sbSize || le16(raw, sbMagic) != ext4Magic {
		return nil, fmt.Errorf("no ext2/3/4 superblock")
	}
	sb := &superblock{raw: raw}
	logBS := le32(raw, sbLogBlockSize)
	if logBS > 6 {
		return nil, fmt.Errorf("superblock: block size 2^(10+%d) is not supported", logBS)
	}
	sb.blockSize = 1024 << logBS
	incompat := le32(raw, sbFeatureIncompt)
	blocks := uint64(le32(raw, sbBlocksCountLo))
	sb.descSize = 32
	if incompat&incompat64Bit != 0 {
		blocks |= uint64(le32(raw, sbBlocksCountHi)) << 32
		sb.descSize = int64(le16(raw, sbDescSize))
		if sb.descSize < 64 {
			return nil, fmt.Errorf("superblock: 64-bit file system with a descriptor size of %d", sb.descSize)
		}
	}
	sb.firstDataBlock = uint64(le32(raw, sbFirstDataBlock))
	bpg := uint64(le32(raw, sbBlocksPerGroup))
	sb.inodesPerGroup = le32(raw, sbInodesPerGroup)
	sb.firstIno = le32(raw, sbFirstIno)
	sb.inodeSize = uint32(le16(raw, sbInodeSize))
	if bpg == 0 || sb.inodesPerGroup == 0 || sb.inodeSize < goodOldInode || blocks <= sb.firstDataBlock {
		return nil, fmt.Errorf("superblock: implausible geometry (%d blocks, %d per group, %d inodes per group, inode size %d)",
			blocks, bpg, sb.inodesPerGroup, sb.inodeSize)
	}
	sb.groups = uint32((blocks - sb.firstDataBlock + bpg - 1) / bpg)
	sb.metadataCsum = le32(raw, sbFeatureRoCompt)&roCompatMetaCsum != 0
	if incompat&incompatCsumSeed != 0 {
		sb.csumSeed = le32(raw, sbChecksumSeed)
	} else {
		sb.csumSeed = crc32c(^uint32(0), raw[sbUUID:sbUUID+16])
	}
	sb.hasJournal = le32(raw, sbFeatureCompat)&compatHasJournal != 0
	sb.journalInum = le32(raw, sbJournalInum)
	if sb.metadataCsum && le32(raw, sbChecksum) != crc32c(^uint32(0), raw[:sbChecksum]) {
		return nil, fmt.Errorf("superblock checksum does not match")
	}
	return sb, nil
}

// setChecksum recomputes the superblock checksum.
func (sb *superblock) setChecksum() {
	if sb.metadataCsum {
		binary.LittleEndian.PutUint32(sb.raw[sbChecksum:], crc32c(^uint32(0), sb.raw[:sbChecksum]))
	}
}

// inodeFits reports whether the inode's extra fields reach past end (an
// offset beyond the first 128 bytes).
func inodeFits(raw []byte, end int) bool {
	return len(raw) > goodOldInode && goodOldInode+int(le16(raw, inExtraIsize)) >= end && end <= len(raw)
}

// inodeChecksum computes the metadata_csum checksum of the raw inode ino:
// crc32c over the inode with its checksum fields zeroed, seeded with the
// file system's seed, the inode number and the inode's generation.
func (sb *superblock) inodeChecksum(ino uint32, raw []byte) uint32 {
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], ino)
	seed := crc32c(sb.csumSeed, n[:])
	seed = crc32c(seed, raw[inGeneration:inGeneration+4])
	b := append([]byte(nil), raw...)
	b[inChecksumLo], b[inChecksumLo+1] = 0, 0
	if inodeFits(raw, inChecksumHi+2) {
		b[inChecksumHi], b[inChecksumHi+1] = 0, 0
	}
	return crc32c(seed, b)
}

// storedInodeChecksum is the checksum recorded in the raw inode (only the
// low 16 bits when the high half does not fit).
func storedInodeChecksum(raw []byte) (uint32, uint32) {
	c := uint32(le16(raw, inChecksumLo))
	mask := uint32(0xFFFF)
	if inodeFits(raw, inChecksumHi+2) {
		c |= uint32(le16(raw, inChecksumHi)) << 16
		mask = 0xFFFFFFFF
	}
	return c, mask
}

func putInodeChecksum(raw []byte, c uint32) {
	binary.LittleEndian.PutUint16(raw[inChecksumLo:], uint16(c))
	if inodeFits(raw, inChecksumHi+2) {
		binary.LittleEndian.PutUint16(raw[inChecksumHi:], uint16(c>>16))
	}
}

// journalSuperblockChecksum computes a journal superblock's v2/v3 checksum.
func journalSuperblockChecksum(jsb []byte) uint32 {
	b := append([]byte(nil), jsb[:jsbSize]...)
	binary.BigEndian.PutUint32(b[jsbChecksum:], 0)
	return crc32c(^uint32(0), b)
}
