package volume

import (
	"strconv"
	"time"
)

// FixedTime is the time recorded wherever a from-scratch volume's file
// systems need a time that is not content: mke2fs's creation and check
// times, the EFI system partition's directory entries, and the superblock
// times Normalize resets. A volume made anywhere, at any time, then holds
// the same bytes. 2020-01-01T00:00:00Z: in the past (no checker takes it for
// a clock error) and recognisably artificial.
var FixedTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// fixedTimeEnv makes e2fsprogs and mtools use FixedTime instead of the
// clock: E2FSPROGS_FAKE_TIME (libext2fs: mke2fs, tune2fs, debugfs),
// E2FSCK_TIME (e2fsck) and SOURCE_DATE_EPOCH (mtools' new entries).
func fixedTimeEnv() []string {
	t := strconv.FormatInt(FixedTime.Unix(), 10)
	return []string{"E2FSPROGS_FAKE_TIME=" + t, "E2FSCK_TIME=" + t, "SOURCE_DATE_EPOCH=" + t}
}
