// Command localaws runs the test world (moto with autoami's additions, behind
// the fault proxy) on loopback until interrupted. `make demo` uses it; it is
// also handy for trying configurations by hand:
//
//	go run ./internal/testworld/cmd/localaws -endpoint-file /tmp/aws-endpoint -seed
//	AWS_ENDPOINT_URL=$(cat /tmp/aws-endpoint) terraform apply
//
// With -seed it registers a small vendor image history (see seed.go) so the
// demo has a base image with a predecessor and a security level to show.
// With -release NAME it publishes one more vendor image into a running local
// AWS, as a vendor shipping a security fix would. With -faults FILE the fault
// proxy starts with the rules of FILE (see faults.go).
//
// Commands act on a running local AWS instead (commands.go):
//
//	localaws boot -endpoint URL [-region R] [-account A] IMAGE_ID   (boot.go)
//	localaws inventory -endpoint URL [-json]                        (inventory.go)
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/autoami/terraform-provider-autoami/internal/testworld"
	"github.com/autoami/terraform-provider-autoami/internal/testworld/moto"
)

func main() {
	if runSubcommand() {
		return
	}
	endpointFile := flag.String("endpoint-file", "", "write the endpoint URL to this file once the world is ready")
	logPath := flag.String("moto-log", "", "file for moto_server's output (default: discarded)")
	seed := flag.Bool("seed", false, "register the demo's vendor images")
	region := flag.String("region", "us-east-1", "region to seed")
	release := flag.String("release", "", "instead of serving: publish a newer vendor image of this name into the running local AWS at -endpoint")
	level := flag.String("level", "critical", "with -release: the new image's security level tag")
	endpoint := flag.String("endpoint", "", "with -release: the running local AWS")
	flag.Parse()
	if *release != "" {
		if err := releaseImage(context.Background(), *endpoint, *region, *release, *level); err != nil {
			slog.Error("release failed", "error", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*endpointFile, *logPath, *region, *seed); err != nil {
		slog.Error("localaws failed", "error", err)
		os.Exit(1)
	}
}

func run(endpointFile, logPath, region string, seed bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	faults, err := loadFaults()
	if err != nil {
		return err
	}
	disk := bootDisk(ctx)
	world, err := testworld.Start(ctx, moto.Options{LogPath: logPath, BootDisk: disk})
	if err != nil {
		return err
	}
	defer world.Stop()
	if seed {
		if err := seedDemo(ctx, world, region, disk); err != nil {
			return fmt.Errorf("seed demo images: %w", err)
		}
	}
	applyFaults(world, faults) // after seeding, so the seed meets no faults
	if endpointFile != "" {
		if err := os.WriteFile(endpointFile, []byte(world.Endpoint+"\n"), 0o644); err != nil {
			return err
		}
	}
	slog.Info("local AWS ready", "endpoint", world.Endpoint, "moto_pid", world.Moto.PID())
	<-ctx.Done()
	slog.Info("stopping local AWS")
	return nil
}
