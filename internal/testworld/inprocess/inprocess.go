// Package inprocess answers HTTP requests by calling a handler in the same
// process, without sockets: a network for tests that run in a
// testing/synctest bubble, where time is fake and advances only while every
// goroutine of the bubble waits on something of the bubble (a goroutine
// reading a socket never does, so a real server cannot take part).
package inprocess

import (
	"net/http"
	"net/http/httptest"
)

// Transport is an http.RoundTripper that serves each request with Handler,
// in a goroutine of its own; a request whose context ends first fails with
// the context's error (the handler runs on to its end).
type Transport struct {
	Handler http.Handler
}

// RoundTrip implements http.RoundTripper.
func (tr Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		tr.Handler.ServeHTTP(rec, req)
	}()
	select {
	case <-done:
		return rec.Result(), nil
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
}

// Client is an http.Client whose requests h serves in-process.
func Client(h http.Handler) *http.Client {
	return &http.Client{Transport: Transport{Handler: h}}
}
