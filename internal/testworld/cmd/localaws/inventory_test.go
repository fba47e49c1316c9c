package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
)

// The table has one line per resource with what it is made of and its tags.
func TestInventoryTable(t *testing.T) {
	inv := moto.Inventory{Targets: []moto.TargetInventory{{
		Account: "123456789012", Region: "us-east-1",
		Instances: []moto.InventoryInstance{{ID: "i-1", State: "running", Tags: map[string]string{"b": "2", "a": "1"}}},
		Volumes: []moto.InventoryVolume{{ID: "vol-1", State: "in-use", SizeGiB: 8,
			Attachments: []moto.InventoryVolumeAttachment{{InstanceID: "i-1", Device: "/dev/xvdf", State: "attached"}}}},
		Snapshots:  []moto.InventorySnapshot{{ID: "snap-1", State: "completed", VolumeID: "vol-1"}},
		Images:     []moto.InventoryImage{{ID: "ami-1", Name: "web-1", State: "available", SnapshotIDs: []string{"snap-1"}}},
		Parameters: []moto.InventoryParameter{{Name: "/web/latest", Type: "String", DataType: "aws:ec2:image"}},
	}}}
	var out bytes.Buffer
	if err := writeInventoryTable(&out, inv); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := [][]string{
		{"ACCOUNT", "REGION", "KIND", "ID", "STATE", "DETAILS", "TAGS"},
		{"123456789012", "us-east-1", "instance", "i-1", "running", "-", "a=1,b=2"},
		{"123456789012", "us-east-1", "volume", "vol-1", "in-use", "8 GiB, attached /dev/xvdf on i-1", "-"},
		{"123456789012", "us-east-1", "snapshot", "snap-1", "completed", "of vol-1", "-"},
		{"123456789012", "us-east-1", "image", "ami-1", "available", "web-1 on snap-1", "-"},
		{"123456789012", "us-east-1", "parameter", "/web/latest", "-", "String, aws:ec2:image", "-"},
	}
	if len(lines) != len(want) {
		t.Fatalf("table:\n%s", out.String())
	}
	for i, line := range lines {
		// Columns are separated by at least two spaces.
		var cols []string
		for _, c := range strings.Split(line, "  ") {
			if c = strings.TrimSpace(c); c != "" {
				cols = append(cols, c)
			}
		}
		if strings.Join(cols, "|") != strings.Join(want[i], "|") {
			t.Errorf("line %d: %q, want columns %q", i, line, want[i])
		}
	}

	out.Reset()
	if err := writeInventoryTable(&out, moto.Inventory{}); err != nil || !strings.HasPrefix(out.String(), "nothing") {
		t.Fatalf("empty inventory: %q, %v", out.String(), err)
	}
}

func TestInventoryNeedsEndpoint(t *testing.T) {
	for _, args := range [][]string{nil, {"-json"}, {"-endpoint", "http://127.0.0.1:1", "extra"}} {
		if err := runInventory(args); err == nil || !strings.Contains(err.Error(), "usage") {
			t.Errorf("%q: %v, want the usage", args, err)
		}
	}
}
