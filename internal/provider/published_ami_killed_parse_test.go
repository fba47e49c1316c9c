package provider

import (
	"maps"
	"testing"
)

// The provider's log lines as terraform writes them (TF_LOG_PROVIDER):
// TestAccPublishedAMI_killed times its kills on their step and event
// fields, so a line that does not parse would never kill.
func TestParseProviderLine(t *testing.T) {
	for _, tc := range []struct {
		line    string
		message string
		fields  map[string]string
	}{
		{
			line: `2026-12-01T08:26:54.550Z [INFO]  provider.terraform-provider-autoami: waiting up to 2m0s for image ami-eb0d7fd477e96e986 to be available (3 consecutive answers): ` +
				`tf_req_id=438f6771 @module=autoami event=wait target=222222222222/eu-west-1 @caller=/x/published_ami_resource.go:465 step="wait for image" timestamp=2026-12-01T08:26:54.550Z`,
			message: "waiting up to 2m0s for image ami-eb0d7fd477e96e986 to be available (3 consecutive answers)",
			fields: map[string]string{"tf_req_id": "438f6771", "@module": "autoami", "event": "wait", "target": "222222222222/eu-west-1",
				"@caller": "/x/published_ami_resource.go:465", "step": "wait for image", "timestamp": "2026-12-01T08:26:54.550Z"},
		},
		{
			// A message with ": " and quotes of its own.
			line:    `2026-12-01T08:26:42.586Z [INFO]  provider.terraform-provider-autoami: stream "web/boot": fetching 3 objects: step=unpack event=info error="a \"quoted\" reason"`,
			message: `stream "web/boot": fetching 3 objects`,
			fields:  map[string]string{"step": "unpack", "event": "info", "error": `a "quoted" reason`},
		},
	} {
		got, ok := parseProviderLine(tc.line)
		if !ok || got.Message != tc.message || !maps.Equal(got.Fields, tc.fields) {
			t.Errorf("parseProviderLine(%q) = %q %v (%v), want %q %v", tc.line, got.Message, got.Fields, ok, tc.message, tc.fields)
		}
	}
	if _, ok := parseProviderLine(`2026-12-01T08:26:40.171Z [INFO]  backend/local: apply calling Apply`); ok {
		t.Error("terraform's own line parsed as the provider's")
	}
}
