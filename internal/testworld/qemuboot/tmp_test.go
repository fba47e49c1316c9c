package qemuboot

import "testing"

func TestTmpBoot(t *testing.T) {
	for _, fw := range []Firmware{BIOS, UEFI} {
		r := MustBoot(t, Options{Image: "/tmp/voltry/disk.img", Firmware: fw})
		t.Log(LastLines(r.Console, 8))
	}
}
