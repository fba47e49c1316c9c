package main

import (
	"strings"
	"testing"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

func TestPrintStatus(t *testing.T) {
	now := time.Now()
	var out strings.Builder
	printStatus(&out, wire.Status{
		Version: "v1.2.3", StartedAt: now.Add(-time.Hour), LastRequestAt: now.Add(-time.Minute),
		IdlePoweroffAt: now.Add(29 * time.Minute),
		Streams: []wire.Stream{
			{Name: "web/al2023", VolumeID: "vol-1", State: wire.StateClean, Revision: strings.Repeat("a", 64)},
			{Name: "db/debian", VolumeID: "vol-2", State: wire.StateFetching, Progress: &wire.Progress{
				ObjectsDone: 10, ObjectsTotal: 40, BytesDone: 8 << 20, BytesTotal: 32 << 20, BytesPerSecond: 4 << 20, ETASeconds: 6, ObjectsAwaitingURLs: 5,
			}, TargetRevision: strings.Repeat("b", 64)},
			{Name: "ci/dirty", VolumeID: "vol-3", State: wire.StateDirty, TargetRevision: strings.Repeat("c", 64), LastError: "fetch object: HTTP 500"},
		},
		Devices: []wire.Device{{VolumeID: "vol-1", Path: "/dev/nvme1n1", SizeBytes: 8 << 30, Stream: "web/al2023"}, {VolumeID: "vol-4"}},
	})
	got := out.String()
	for _, want := range []string{
		"unpacker v1.2.3",
		"powers off when idle at",
		"web/al2023", "clean", "aaaaaaaaaaaa",
		"10/40 objects, 8/32 MiB, 4.0 MiB/s, ETA 6s, 5 awaiting URLs", "→ bbbbbbbbbbbb",
		"dirty", "→ cccccccccccc", "fetch object: HTTP 500",
		"/dev/nvme1n1", "8192 MiB", "(not visible)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("status output lacks %q:\n%s", want, got)
		}
	}
}
