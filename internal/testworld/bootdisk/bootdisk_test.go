package bootdisk_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"testing"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/bootdisk"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/loopdev"
)

// TestBootDiskIsBuiltOnceWithItsLayout builds (or takes from the cache) the
// world's boot disk and checks its layout: a GPT with BIOS boot, EFI system
// and Linux root partitions. That it boots under SeaBIOS and OVMF is proven
// where it is used: internal/testworld's TestBootImage boots an AMI whose
// root snapshot is this disk.
func TestBootDiskIsBuiltOnceWithItsLayout(t *testing.T) {
	loopdev.RequireRoot(t)
	disk, err := bootdisk.Build(context.Background(), bootdisk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(disk.Path)
	if err != nil || st.Size() != bootdisk.Size {
		t.Fatalf("disk %s: %v, size %v, want %d", disk.Path, err, st, bootdisk.Size)
	}
	again, err := bootdisk.Build(context.Background(), bootdisk.Options{})
	if err != nil || again.Path != disk.Path {
		t.Fatalf("second Build gave %v, %v; want the cached %s", again, err, disk.Path)
	}
	out, err := exec.Command("sfdisk", "--json", disk.Path).Output()
	if err != nil {
		t.Fatalf("sfdisk --json %s: %v", disk.Path, err)
	}
	var table struct {
		PartitionTable struct {
			Label      string `json:"label"`
			Partitions []struct {
				Type string `json:"type"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &table); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"21686148-6449-6E6F-744E-656564454649", // BIOS boot
		"C12A7328-F81F-11D2-BA4B-00A0C93EC93B", // EFI system
	}
	parts := table.PartitionTable.Partitions
	if table.PartitionTable.Label != "gpt" || len(parts) != 3 || parts[0].Type != want[0] || parts[1].Type != want[1] {
		t.Fatalf("disk layout %s, want GPT with BIOS boot, EFI system and root partitions", out)
	}
}
