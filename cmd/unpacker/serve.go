package main

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/daemon"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/server"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// version is stamped like the provider's (-ldflags "-X main.version=…", by
// the Makefile, goreleaser and the provider's embedded build), so provider
// and unpacker versions match; otherwise the module version from the build
// info is used.
var version = ""

func init() {
	register(command{
		name:    "serve",
		usage:   "--client-ca FILE [--listen ADDR:PORT] [--state-dir DIR] [--local-devices DIR] [--idle-poweroff DURATION] [--url-wait DURATION]",
		summary: "run the daemon: the mutual-TLS API that patches stream volumes",
		run:     runServe,
	})
}

func runServe(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet("serve", env.stderr)
	listen := fs.String("listen", fmt.Sprintf(":%d", wire.DefaultPort), "address and port to serve the API on")
	stateDir := fs.String("state-dir", "/var/lib/autoami-unpacker", "directory for the state file, server key, scan caches and mount points")
	clientCA := fs.String("client-ca", "", "PEM file of the CA that client certificates must chain to (required)")
	localDevices := fs.String("local-devices", "", "local mode: back volume IDs by sparse files in this directory, attached as loop devices")
	idle := fs.Duration("idle-poweroff", 0, "power the machine off after this long without requests (0: never)")
	urlWait := fs.Duration("url-wait", daemon.DefaultURLWait, "fail an unpack whose caller supplied no object URLs for this long (the stream is left dirty)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 || *clientCA == "" {
		return errUsage
	}
	if os.Geteuid() != 0 {
		env.log.Warn("not running as root: mounting and device access will fail")
	}
	return server.Run(ctx, server.Config{
		Listen:       *listen,
		StateDir:     *stateDir,
		ClientCAFile: *clientCA,
		LocalDevices: *localDevices,
		IdlePoweroff: *idle,
		URLWait:      *urlWait,
		Version:      daemonVersion(),
		Console:      env.stdout,
		Logger:       env.log,
	})
}

func daemonVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "dev"
}
