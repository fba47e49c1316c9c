package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/client"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/server"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/testpki"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// stampVersion sets the version variable as -ldflags "-X main.version=v"
// would, for the test.
func stampVersion(t *testing.T, v string) {
	t.Helper()
	old := version
	version = v
	t.Cleanup(func() { version = old })
}

// TestVersionFlagPrintsTheVersion: `unpacker -version` prints the version
// variable the build stamped, and nothing else runs.
func TestVersionFlagPrintsTheVersion(t *testing.T) {
	stampVersion(t, "test123")
	var stdout, stderr strings.Builder
	if code := run([]string{"-version"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit status %d, stderr %q", code, stderr.String())
	}
	if got := stdout.String(); got != "unpacker test123\n" {
		t.Errorf("-version printed %q, want %q", got, "unpacker test123\n")
	}
	if stderr.Len() != 0 {
		t.Errorf("-version wrote to stderr: %q", stderr.String())
	}
}

// TestServeReportsTheVersionInHealth: the daemon `unpacker serve` runs
// reports in /v1/health the version `unpacker -version` prints.
func TestServeReportsTheVersionInHealth(t *testing.T) {
	stampVersion(t, "test123")
	var printed strings.Builder
	if code := run([]string{"-version"}, &printed, io.Discard); code != 0 {
		t.Fatalf("-version: exit status %d", code)
	}
	want := strings.TrimPrefix(strings.TrimSpace(printed.String()), "unpacker ")

	dir := t.TempDir()
	ca := testpki.NewCA(t, "autoami test client CA")
	caFile := ca.WritePEM(t, dir, "client-ca.pem")
	console, consoleW := io.Pipe()
	env := &environment{log: slog.New(slog.DiscardHandler), stdout: consoleW, stderr: io.Discard}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- runServe(ctx, env, []string{"--client-ca", caFile, "--listen", "127.0.0.1:0",
			"--state-dir", filepath.Join(dir, "state"), "--local-devices", filepath.Join(dir, "volumes")})
		consoleW.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})

	// The console's start lines: the certificate fingerprint, then the address.
	var fingerprint, address string
	lines := bufio.NewScanner(console)
	for address == "" && lines.Scan() {
		line := lines.Text()
		if fp, ok := strings.CutPrefix(line, wire.FingerprintLinePrefix); ok {
			fingerprint = fp
		}
		if a, ok := strings.CutPrefix(line, server.ListeningLinePrefix); ok {
			address = a
		}
	}
	go io.Copy(io.Discard, console) // the daemon may print more; never block it
	if address == "" || fingerprint == "" {
		t.Fatalf("serve stopped before listening (fingerprint %q, address %q)", fingerprint, address)
	}
	c, err := client.New(client.Config{Address: address, Fingerprint: fingerprint, Certificate: ca.ClientCertificate(t, "provider")})
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.Health(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h.Version != want {
		t.Errorf("/v1/health reports version %q, -version prints %q", h.Version, want)
	}
}
