package volume

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
)

// Offsets in GRUB's i386-pc boot.img (grub/i386/pc/boot.h) and diskboot.img.
const (
	sectorSize = 512
	// bpbStart..bpbEnd is the BIOS parameter block, kept from the disk.
	bpbStart, bpbEnd = 0x03, 0x5a
	// kernelSectorOffset holds the LBA (uint64 LE) of core.img's first sector.
	kernelSectorOffset = 0x5c
	// driveCheckOffset holds a jump that GRUB's installer replaces with two
	// NOPs on hard disks, for BIOSes that pass a wrong boot drive.
	driveCheckOffset = 0x66
	// ntMagicOffset..sectorSize is the disk signature, the partition table
	// and the 0x55AA signature, kept from the disk.
	ntMagicOffset = 0x1b8
	// blocklistSize is one diskboot.img block list entry: start LBA (uint64),
	// sector count (uint16) and load segment (uint16), at the end of the
	// first sector of core.img.
	blocklistSize = 12
	// coreLoadSegment is where diskboot.img loads the rest of core.img
	// (GRUB_BOOT_I386_PC_KERNEL_SEG + 0x20).
	coreLoadSegment = 0x820
)

// biosBootImages are the bytes to write for BIOS boot: boot.img for the MBR
// (merged with the disk's own partition table) and core.img for the BIOS
// boot partition (with its block list pointing at itself).
type biosBootImages struct {
	mbr  []byte // sector 0 of the disk
	core []byte // written at the start of the BIOS boot partition
}

// embedCore prepares GRUB's boot.img and core.img for a core.img placed at
// the start of biosBoot, the job grub-bios-setup does on a real disk (which
// fails on loop devices): point boot.img at core.img's first sector and
// core.img's block list at the rest, and keep the disk's partition table.
func embedCore(moduleDir string, core []byte, oldMBR []byte, biosBoot *Partition) (biosBootImages, error) {
	if len(oldMBR) != sectorSize || oldMBR[510] != 0x55 || oldMBR[511] != 0xAA {
		return biosBootImages{}, fmt.Errorf("sector 0 holds no MBR signature (55 AA): no protective MBR")
	}
	boot, err := os.ReadFile(filepath.Join(moduleDir, "boot.img"))
	if err != nil {
		return biosBootImages{}, fmt.Errorf("read GRUB boot.img: %w", err)
	}
	if len(boot) != sectorSize {
		return biosBootImages{}, fmt.Errorf("GRUB boot.img in %s has %d bytes, want %d", moduleDir, len(boot), sectorSize)
	}
	if biosBoot.Start%sectorSize != 0 {
		return biosBootImages{}, fmt.Errorf("BIOS boot partition starts at byte %d, not on a sector", biosBoot.Start)
	}
	sectors := (len(core) + sectorSize - 1) / sectorSize
	if int64(sectors*sectorSize) > biosBoot.Size {
		return biosBootImages{}, fmt.Errorf("GRUB core.img (%d bytes) does not fit the BIOS boot partition (%d bytes)", len(core), biosBoot.Size)
	}
	if sectors < 2 || sectors-1 > 0xffff {
		return biosBootImages{}, fmt.Errorf("GRUB core.img of %d bytes: unexpected size", len(core))
	}
	first := uint64(biosBoot.Start / sectorSize)

	c := make([]byte, sectors*sectorSize)
	copy(c, core)
	// diskboot.img's block list: one entry for the sectors after the first,
	// and a zero-length terminator before it (diskboot reads the list
	// downwards from the end of the sector).
	bl := c[sectorSize-blocklistSize : sectorSize]
	binary.LittleEndian.PutUint64(bl[0:8], first+1)
	binary.LittleEndian.PutUint16(bl[8:10], uint16(sectors-1))
	binary.LittleEndian.PutUint16(bl[10:12], coreLoadSegment)
	term := c[sectorSize-2*blocklistSize : sectorSize-blocklistSize]
	if !bytes.Equal(term[8:10], []byte{0, 0}) {
		return biosBootImages{}, fmt.Errorf("GRUB diskboot.img in %s: unexpected block list layout", moduleDir)
	}

	mbr := append([]byte(nil), boot...)
	copy(mbr[bpbStart:bpbEnd], oldMBR[bpbStart:bpbEnd])
	binary.LittleEndian.PutUint64(mbr[kernelSectorOffset:kernelSectorOffset+8], first)
	mbr[driveCheckOffset], mbr[driveCheckOffset+1] = 0x90, 0x90
	copy(mbr[ntMagicOffset:], oldMBR[ntMagicOffset:])
	return biosBootImages{mbr: mbr, core: c}, nil
}
