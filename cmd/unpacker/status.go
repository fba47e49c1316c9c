package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/client"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

func init() {
	register(command{
		name:    "status",
		usage:   "--address HOST:PORT --fingerprint SHA256 --cert FILE --key FILE [--json]",
		summary: "print a daemon's streams and devices",
		run:     runStatus,
	})
}

func runStatus(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet("status", env.stderr)
	address := fs.String("address", fmt.Sprintf("127.0.0.1:%d", wire.DefaultPort), "the daemon's address")
	fingerprint := fs.String("fingerprint", "", "the daemon's certificate fingerprint, as it printed it at start (required)")
	certFile := fs.String("cert", "", "client certificate (PEM), issued by the daemon's client CA (required)")
	keyFile := fs.String("key", "", "client key (PEM) (required)")
	asJSON := fs.Bool("json", false, "print the status as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 || *fingerprint == "" || *certFile == "" || *keyFile == "" {
		return errUsage
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		return fmt.Errorf("load client certificate: %w", err)
	}
	c, err := client.New(client.Config{Address: *address, Fingerprint: *fingerprint, Certificate: cert, RetryMax: 2})
	if err != nil {
		return err
	}
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printStatus(env.stdout, st)
	return nil
}

func printStatus(w io.Writer, st wire.Status) {
	fmt.Fprintf(w, "unpacker %s, up since %s, last request %s ago\n", st.Version,
		st.StartedAt.Format(time.RFC3339), time.Since(st.LastRequestAt).Round(time.Second))
	if !st.IdlePoweroffAt.IsZero() {
		fmt.Fprintf(w, "powers off when idle at %s\n", st.IdlePoweroffAt.Format(time.RFC3339))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nSTREAM\tVOLUME\tSTATE\tREVISION\tPROGRESS\tLAST ERROR")
	for _, s := range st.Streams {
		rev := short(s.Revision)
		if rev == "" && s.TargetRevision != "" {
			rev = "→ " + short(s.TargetRevision)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.VolumeID, s.State, rev, progress(s), s.LastError)
	}
	tw.Flush()
	fmt.Fprintln(tw, "\nVOLUME\tDEVICE\tSIZE\tSTREAM\tBACKING FILE")
	for _, d := range st.Devices {
		path := d.Path
		if path == "" {
			path = "(not visible)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d MiB\t%s\t%s\n", d.VolumeID, path, d.SizeBytes>>20, d.Stream, d.BackingFile)
	}
	tw.Flush()
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

func progress(s wire.Stream) string {
	p := s.Progress
	if p == nil || !s.State.Busy() {
		return ""
	}
	out := fmt.Sprintf("%d/%d objects, %d/%d MiB", p.ObjectsDone, p.ObjectsTotal, p.BytesDone>>20, p.BytesTotal>>20)
	if p.BytesPerSecond > 0 {
		out += fmt.Sprintf(", %.1f MiB/s", p.BytesPerSecond/(1<<20))
	}
	if p.ETASeconds > 0 {
		out += fmt.Sprintf(", ETA %s", (time.Duration(p.ETASeconds) * time.Second).String())
	}
	if p.ObjectsAwaitingURLs > 0 {
		out += fmt.Sprintf(", %d awaiting URLs", p.ObjectsAwaitingURLs)
	}
	return out
}
