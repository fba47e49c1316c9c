package provider

import (
	"context"
	"log/slog"

	"github.com/hashicorp/terraform-plugin-log/tflog"
)

// tflogHandler sends the log/slog records of packages that know no
// Terraform (unpackerinstance) to tflog, with the context of the call that
// logged them, so they show with TF_LOG like the provider's own.
type tflogHandler struct {
	// fields are the attributes of With, keys already qualified by the
	// groups open when they were added (as slog defines it).
	fields map[string]any
	group  string
}

// newTflogLogger is a *slog.Logger writing through tflog.
func newTflogLogger() *slog.Logger { return slog.New(&tflogHandler{}) }

func (h *tflogHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *tflogHandler) key(k string) string {
	if h.group != "" {
		return h.group + "." + k
	}
	return k
}

func (h *tflogHandler) Handle(ctx context.Context, r slog.Record) error {
	fields := make(map[string]any, r.NumAttrs()+len(h.fields))
	for k, v := range h.fields {
		fields[k] = v
	}
	r.Attrs(func(a slog.Attr) bool {
		fields[h.key(a.Key)] = a.Value.Resolve().Any()
		return true
	})
	switch {
	case r.Level >= slog.LevelError:
		tflog.Error(ctx, r.Message, fields)
	case r.Level >= slog.LevelWarn:
		tflog.Warn(ctx, r.Message, fields)
	case r.Level >= slog.LevelInfo:
		tflog.Info(ctx, r.Message, fields)
	default:
		tflog.Debug(ctx, r.Message, fields)
	}
	return nil
}

func (h *tflogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	fields := make(map[string]any, len(h.fields)+len(attrs))
	for k, v := range h.fields {
		fields[k] = v
	}
	for _, a := range attrs {
		fields[h.key(a.Key)] = a.Value.Resolve().Any()
	}
	return &tflogHandler{fields: fields, group: h.group}
}

func (h *tflogHandler) WithGroup(name string) slog.Handler {
	return &tflogHandler{fields: h.fields, group: h.key(name)}
}
