package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/daemon"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// maxRequestBytes bounds a request body (a batch of presigned URLs is well
// under 1 MiB).
const maxRequestBytes = 16 << 20

// passive are the paths whose requests do not count as activity for the
// idle power-off: a monitoring system scraping metrics or probing health
// must not keep an idle instance running.
var passive = map[string]bool{wire.PathMetrics: true, wire.PathHealth: true}

func newHandler(d *daemon.Daemon, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "autoami_unpacker_http_requests_total",
		Help: "API requests that reached a handler, by path and status code.",
	}, []string{"path", "code"})
	d.Registry().MustRegister(requests)

	mux := http.NewServeMux()
	mux.HandleFunc("GET "+wire.PathHealth, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, d.Health()) })
	mux.HandleFunc("GET "+wire.PathStatus, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, d.Status()) })
	mux.Handle("POST "+wire.PathAttachDevice, rpc(log, d.AttachDevice))
	mux.Handle("POST "+wire.PathDetachDevice, rpc(log, empty(d.DetachDevice)))
	mux.Handle("POST "+wire.PathAssociateStream, rpc(log, d.AssociateStream))
	mux.Handle("POST "+wire.PathUnpack, rpc(log, d.Unpack))
	mux.Handle("POST "+wire.PathUnpackStatus, rpc(log, d.UnpackStatus))
	mux.Handle("POST "+wire.PathObjectURLs, rpc(log, d.SupplyObjectURLs))
	mux.Handle("POST "+wire.PathCancelUnpack, rpc(log, d.CancelUnpack))
	mux.Handle("POST "+wire.PathPrepareForSnapshot, rpc(log, d.PrepareForSnapshot))
	mux.Handle("POST "+wire.PathRelease, rpc(log, d.Release))
	mux.Handle("POST "+wire.PathForgetStream, rpc(log, empty(d.ForgetStream)))
	mux.Handle("GET "+wire.PathMetrics, promhttp.HandlerFor(d.Registry(), promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, wire.Errorf(wire.CodeNotFound, "no API call %s %s", r.Method, r.URL.Path))
	})

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !passive[r.URL.Path] {
			d.Touch()
		}
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		defer func() {
			if p := recover(); p != nil {
				log.Error("handler panicked", "path", r.URL.Path, "panic", p)
				writeError(rec, wire.Errorf(wire.CodeInternal, "internal error handling %s", r.URL.Path))
			}
			path := r.URL.Path
			if _, pattern := mux.Handler(r); pattern == "/" {
				path = "other" // keep label values bounded
			}
			requests.WithLabelValues(path, strconv.Itoa(rec.code)).Inc()
			log.Debug("request", "method", r.Method, "path", r.URL.Path, "code", rec.code,
				"duration", time.Since(start), "client", clientName(r))
		}()
		mux.ServeHTTP(rec, r)
	})
}

// clientName is the common name of the client certificate, for the log.
func clientName(r *http.Request) string {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return r.TLS.PeerCertificates[0].Subject.CommonName
	}
	return ""
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func empty[Req any](fn func(context.Context, Req) error) func(context.Context, Req) (wire.Empty, error) {
	return func(ctx context.Context, req Req) (wire.Empty, error) { return wire.Empty{}, fn(ctx, req) }
}

// rpc decodes a JSON request, calls fn and encodes its answer or error.
func rpc[Req, Resp any](log *slog.Logger, fn func(context.Context, Req) (Resp, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req Req
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, wire.Errorf(wire.CodeBadRequest, "%s: request body is not a valid JSON request: %v", r.URL.Path, err))
			return
		}
		resp, err := fn(r.Context(), req)
		if err != nil {
			var we *wire.Error
			if !errors.As(err, &we) {
				log.Error("request failed", "path", r.URL.Path, "err", err)
			}
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, resp)
	})
}

func writeError(w http.ResponseWriter, err error) {
	we := &wire.Error{}
	switch {
	case errors.As(err, &we):
		if msg := err.Error(); msg != we.Error() {
			// Keep the context the daemon wrapped around the *wire.Error.
			we = &wire.Error{Code: we.Code, Message: msg}
		}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		we = &wire.Error{Code: wire.CodeUnavailable, Message: err.Error()}
	default:
		we = &wire.Error{Code: wire.CodeInternal, Message: err.Error()}
	}
	writeJSON(w, we.Code.HTTPStatus(), we)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b = []byte(fmt.Sprintf(`{"code":"internal","message":%q}`, err.Error()))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
