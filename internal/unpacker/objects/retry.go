package objects

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The retry policy of HTTPFetcher. One layer retries: go-retryablehttp,
// configured per download with the functions below. Transient failures are
// retried (transport errors, a body that broke off, 408, 429, and 5xx but
// 501, which covers S3's 500 InternalError and 503 SlowDown); a refusal
// (other 4xx: an expired or revoked presigned URL, a missing object) or
// content of the wrong digest is final.
const (
	// defaultRetryMax is FetcherOptions.RetryMax when it is 0.
	defaultRetryMax = 5
	// retryWaitMin and retryWaitMax bound the wait after a plain transient
	// failure: 200 ms, doubling, at most 5 s (jittered).
	retryWaitMin = 200 * time.Millisecond
	retryWaitMax = 5 * time.Second
	// throttleWaitMin and throttleWaitMax bound the wait after the server
	// asked us to slow down (S3's 503 SlowDown, 429): it is overloaded, so
	// back off further, as the AWS SDKs do for throttling errors.
	throttleWaitMin = time.Second
	throttleWaitMax = 20 * time.Second
	// maxRetryAfter is the longest Retry-After honoured: a server that asks
	// for a longer pause is not retried (the presigned URL may well expire
	// meanwhile), and the error says what it asked for.
	maxRetryAfter = time.Minute
	// maxErrorBody bounds how much of an error response is read (S3's
	// error documents are a few hundred bytes).
	maxErrorBody = 4 << 10
)

// StatusError is the error of a download the server answered with a status
// other than 200 OK.
type StatusError struct {
	// StatusCode and Status are the response's (503, "503 Service Unavailable").
	StatusCode int
	Status     string
	// Code and Message are those of an S3 error document in the body
	// ("SlowDown", "Please reduce your request rate."); Code is "" and
	// Message the start of the body when the body is no such document.
	Code, Message string
	// RetryAfter is the pause the server asked for (Retry-After), 0 if none.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %s", e.Status)
	switch {
	case e.Code != "":
		fmt.Fprintf(&b, ": %s: %s", e.Code, e.Message)
	case e.Message != "":
		fmt.Fprintf(&b, ": %q", e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (Retry-After %s)", e.RetryAfter)
	}
	return b.String()
}

// Retryable reports whether another attempt may succeed: a timeout (408),
// throttling (429, SlowDown) or a server error other than 501.
func (e *StatusError) Retryable() bool {
	switch {
	case e.StatusCode == http.StatusRequestTimeout, e.StatusCode == http.StatusTooManyRequests:
		return true
	case e.StatusCode >= 500 && e.StatusCode <= 599:
		return e.StatusCode != http.StatusNotImplemented
	}
	return false
}

// Throttled reports whether the server asked the client to slow down.
func (e *StatusError) Throttled() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.Code == "SlowDown"
}

// statusErrorOf reads the start of an error response (closing its body) and
// describes it. now dates a Retry-After given as an HTTP date.
func statusErrorOf(resp *http.Response, now time.Time) *StatusError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
	e := &StatusError{StatusCode: resp.StatusCode, Status: resp.Status}
	var doc struct {
		XMLName xml.Name `xml:"Error"`
		Code    string   `xml:"Code"`
		Message string   `xml:"Message"`
	}
	if xml.Unmarshal(body, &doc) == nil && doc.Code != "" {
		e.Code, e.Message = doc.Code, doc.Message
	} else {
		e.Message = strings.TrimSpace(string(bytes.ToValidUTF8(body[:min(len(body), 512)], nil)))
	}
	e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), now)
	return e
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date
// (RFC 9110, section 10.2.3); 0 when absent, unreadable or past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(24*time.Hour/time.Second))) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}

// retryWait is the pause before retry number retry (0 for the first) after
// the failure last (nil for a transport error or a body that broke off):
// the Retry-After the server asked for, or else exponential backoff with
// jitter (between half and all of 2^retry times the minimum, at most the
// maximum), longer when the server is throttling. Never shorter than the
// minimum, so that a "Retry-After: 0" does not make a busy loop.
func retryWait(retry int, last *StatusError) time.Duration {
	lo, hi := retryWaitMin, retryWaitMax
	if last != nil && last.Throttled() {
		lo, hi = throttleWaitMin, throttleWaitMax
	}
	if last != nil && last.RetryAfter > 0 {
		return max(last.RetryAfter, lo)
	}
	d := hi
	if retry < 30 && lo<<retry < hi {
		d = lo << retry
	}
	return d/2 + rand.N(d/2+1)
}

// permanentError marks an error of a received body that another attempt
// will not cure (content of the wrong digest, a body over its limit).
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return &permanentError{err} }

// transientError marks an error of a received body that another attempt
// may cure: the body broke off.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

func transient(err error) error { return &transientError{err} }

func isTransient(err error) bool {
	var t *transientError
	return errors.As(err, &t)
}

func isPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
