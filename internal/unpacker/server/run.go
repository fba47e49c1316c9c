package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/daemon"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/devices"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// ListeningLinePrefix starts the line Run prints when it accepts connections;
// the address follows.
const ListeningLinePrefix = "autoami-unpacker listening on "

func run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	console := cfg.Console
	if console == nil {
		console = io.Discard
	}
	if cfg.StateDir == "" {
		return fmt.Errorf("serve: no state directory given (--state-dir)")
	}
	cert, fingerprint, err := loadOrCreateCertificate(cfg.StateDir)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	// Printed before anything else can fail, at every start: the provider
	// reads it from the console output to pin the certificate.
	fmt.Fprintln(console, wire.FingerprintLinePrefix+fingerprint)
	log.Info("server certificate", "fingerprint", fingerprint)
	tlsCfg, err := tlsConfig(cert, cfg.ClientCAFile)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}

	var finder devices.Finder
	if cfg.LocalDevices != "" {
		if finder, err = devices.NewLocal(cfg.LocalDevices); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
	} else {
		finder = devices.NewEBS(devices.EBSOptions{})
	}
	d, err := daemon.New(ctx, daemon.Config{
		StateDir:     cfg.StateDir,
		Devices:      finder,
		Version:      cfg.Version,
		IdlePoweroff: cfg.IdlePoweroff,
		URLWait:      cfg.URLWait,
		Poweroff:     cfg.Poweroff,
		Hook:         cfg.Hook,
		Logger:       log,
	})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer d.Close()

	listen := cfg.Listen
	if listen == "" {
		listen = fmt.Sprintf(":%d", wire.DefaultPort)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("serve: listen on %s: %w", listen, err)
	}
	fmt.Fprintln(console, ListeningLinePrefix+ln.Addr().String())
	log.Info("listening", "address", ln.Addr().String(), "version", cfg.Version)
	return serve(ctx, tls.NewListener(ln, tlsCfg), newHandler(d, log), log)
}

func serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// TLS handshake failures (no or untrusted client certificate) land here.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve API: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdown)
	if errors.Is(err, context.DeadlineExceeded) {
		err = srv.Close() // long polls and slow clients: cut them
	}
	<-errc
	log.Info("API stopped")
	return err
}
