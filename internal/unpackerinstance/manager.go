package unpackerinstance

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/awsclient"
	"github.com/autoami/terraform-provider-autoami/internal/contentstore"
)

type manager struct {
	clients   *awsclient.Factory
	store     *contentstore.Store
	presigner contentstore.GetPresigner
	log       *slog.Logger
	poll      Polling
}

func newManager(cfg Config) (*Manager, error) {
	if cfg.Clients == nil {
		return nil, errors.New("unpacker instances: no AWS clients")
	}
	if (cfg.Store == nil) != (cfg.Presigner == nil) {
		return nil, errors.New("unpacker instances: a content store needs a presigner, and the other way round")
	}
	return &Manager{&manager{
		clients:   cfg.Clients,
		store:     cfg.Store,
		presigner: cfg.Presigner,
		log:       loggerOr(cfg.Logger),
		poll:      cfg.Polling.withDefaults(),
	}}, nil
}

func loggerOr(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func (p Polling) withDefaults() Polling {
	d := DefaultPolling
	if p.InstanceMinDelay > 0 {
		d.InstanceMinDelay = p.InstanceMinDelay
	}
	if p.InstanceMaxDelay > 0 {
		d.InstanceMaxDelay = p.InstanceMaxDelay
	}
	if d.InstanceMaxDelay < d.InstanceMinDelay {
		d.InstanceMaxDelay = d.InstanceMinDelay
	}
	if p.Console > 0 {
		d.Console = p.Console
	}
	if p.Health > 0 {
		d.Health = p.Health
	}
	return d
}

// readyEnv is what the waits need: clients, a logger, polling.
type readyEnv struct {
	clients *awsclient.Factory
	log     *slog.Logger
	poll    Polling
}

func (m *manager) readyEnv() readyEnv { return readyEnv{clients: m.clients, log: m.log, poll: m.poll} }

// targetName is "<account>/<region>", in messages and the TagTarget tag.
func targetName(account, region string) string { return account + "/" + region }

func (u *Unpacker) name() string {
	return "unpacker " + u.InstanceID + " in " + targetName(u.AccountID, u.Region)
}

func targetOf(u *Unpacker, id Identity) Target {
	return Target{
		Region:                       u.Region,
		AccountID:                    u.AccountID,
		RoleARN:                      u.RoleARN,
		InstanceID:                   u.InstanceID,
		Endpoint:                     u.Endpoint,
		ServerCertificateFingerprint: u.ServerCertificateFingerprint,
		ClientCertificatePEM:         id.ClientCertificatePEM,
		ClientPrivateKeyPEM:          id.ClientPrivateKeyPEM,
	}
}

// endpoint is host:port of the address u connects via; "" without one.
func endpointOf(u *Unpacker) string {
	host := u.PrivateIP
	if u.ConnectVia == ConnectViaPublicIP {
		host = u.PublicIP
	}
	if host == "" {
		return ""
	}
	return net.JoinHostPort(host, strconv.Itoa(u.Port))
}

// waitBound is how long a wait may take: until ctx's deadline, else an hour.
func waitBound(ctx context.Context) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if dl, ok := ctx.Deadline(); ok {
		d := time.Until(dl)
		if d <= 0 {
			return 0, context.DeadlineExceeded
		}
		return d, nil
	}
	return time.Hour, nil
}

// timed logs that a wait begins and, through the returned function, how it
// ended and how long it took.
func timed(ctx context.Context, log *slog.Logger, what string, attrs ...any) func(error) {
	start := time.Now()
	log.InfoContext(ctx, "waiting: "+what, attrs...)
	return func(err error) {
		a := append([]any{"wait", what, "seconds", time.Since(start).Seconds()}, attrs...)
		if err != nil {
			log.WarnContext(ctx, "wait failed: "+what, append(a, "error", err.Error())...)
			return
		}
		log.InfoContext(ctx, "waited: "+what, a...)
	}
}
