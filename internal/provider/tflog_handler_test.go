package provider

import (
	"bytes"
	"context"
	"testing"

	"github.com/hashicorp/terraform-plugin-log/tflogtest"
)

// Records of packages that log with log/slog (unpackerinstance) reach
// tflog with their level, message and fields, grouped attributes named by
// their group.
func TestTflogLogger(t *testing.T) {
	var out bytes.Buffer
	ctx := tflogtest.RootLogger(context.Background(), &out)
	log := newTflogLogger().With("target", "123456789012/eu-west-1")
	log.InfoContext(ctx, "waited: instance running", "instance", "i-0123", "seconds", 1.5)
	log.WithGroup("wait").WarnContext(ctx, "wait failed", "what", "console")
	log.DebugContext(ctx, "detail")
	log.ErrorContext(ctx, "broken")
	entries, err := tflogtest.MultilineJSONDecode(&out)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 4 {
		t.Fatalf("%d entries, want 4: %v", len(entries), entries)
	}
	want := []struct{ level, msg string }{{"info", "waited: instance running"}, {"warn", "wait failed"}, {"debug", "detail"}, {"error", "broken"}}
	for i, w := range want {
		if entries[i]["@level"] != w.level || entries[i]["@message"] != w.msg || entries[i]["target"] != "123456789012/eu-west-1" {
			t.Errorf("entry %d = %v; want %s %q with the logger's target", i, entries[i], w.level, w.msg)
		}
	}
	if entries[0]["instance"] != "i-0123" || entries[0]["seconds"] != 1.5 {
		t.Errorf("fields of the first entry: %v", entries[0])
	}
	if entries[1]["wait.what"] != "console" {
		t.Errorf("grouped field: %v", entries[1])
	}
}
