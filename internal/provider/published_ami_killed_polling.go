//go:build autoami_killtest

package provider

import (
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/publisher"
	"github.com/autoami/terraform-provider-autoami/internal/unpackerinstance"
)

// Built only into the provider binary of TestAccPublishedAMI_killed (go
// build -tags autoami_killtest), which runs the real terraform CLI against
// the local AWS: that binary is a process of its own, so the in-process
// tests' fast waits (setPublisherTestPolling, testAccUnpackerSetup) do not
// reach it. The same values make it wait as fast as they do; a release
// build never has this file.
func init() {
	publishedAMIPolling = publisher.Polling{MinDelay: 20 * time.Millisecond, MaxDelay: 250 * time.Millisecond, ImageObservations: 3}
	publishedAMITimeouts = publisher.Timeouts{Volume: time.Minute, Unpack: 5 * time.Minute, Snapshot: 2 * time.Minute,
		Image: 2 * time.Minute, SSMParameter: 10 * time.Second}
	unpackerPolling = unpackerinstance.Polling{InstanceMinDelay: 50 * time.Millisecond,
		InstanceMaxDelay: 250 * time.Millisecond, Console: 50 * time.Millisecond, Health: 100 * time.Millisecond}
}
