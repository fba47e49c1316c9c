package volume

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"strings"
)

// identifiers are the GUIDs and UUIDs of a from-scratch layout.
type identifiers struct {
	disk, biosBoot, esp, root string // GPT GUIDs
	rootFS, rootHashSeed      string // ext4 UUID and directory hash seed
	espVolumeID               string // FAT volume ID, 8 hex digits
}

// newIdentifiers derives the layout's identifiers from seed, or draws them at
// random when seed is empty. Derived ones are RFC 9562 version 8 UUIDs (the
// "custom" version: here SHA-256 of the seed and the role).
func newIdentifiers(seed string) (identifiers, error) {
	gen := func(role string) (string, error) {
		var b [16]byte
		if seed == "" {
			if _, err := rand.Read(b[:]); err != nil {
				return "", fmt.Errorf("random identifier: %w", err)
			}
			b[6] = b[6]&0x0f | 0x40 // version 4
		} else {
			sum := sha256.Sum256([]byte("autoami volume\x00" + seed + "\x00" + role))
			copy(b[:], sum[:16])
			b[6] = b[6]&0x0f | 0x80 // version 8
		}
		b[8] = b[8]&0x3f | 0x80 // RFC variant
		return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
	}
	var ids identifiers
	for _, f := range []struct {
		role string
		dst  *string
	}{
		{"disk", &ids.disk}, {"bios-boot", &ids.biosBoot}, {"esp", &ids.esp}, {"root", &ids.root},
		{"root-fs", &ids.rootFS}, {"root-hash-seed", &ids.rootHashSeed}, {"esp-volume-id", &ids.espVolumeID},
	} {
		v, err := gen(f.role)
		if err != nil {
			return identifiers{}, err
		}
		*f.dst = v
	}
	ids.espVolumeID = strings.ToUpper(ids.espVolumeID[:8])
	return ids, nil
}
