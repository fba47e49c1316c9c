package objects

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-retryablehttp"
)

func newHTTPFetcher(opts FetcherOptions) *HTTPFetcher {
	f := &HTTPFetcher{
		httpClient: opts.HTTPClient,
		retryMax:   opts.RetryMax,
		log:        opts.Logger,
		now:        time.Now,
		pause:      func(d time.Duration) time.Duration { return d },
	}
	if f.httpClient == nil {
		f.httpClient = cleanhttp.DefaultPooledClient()
	}
	switch {
	case f.retryMax == 0:
		f.retryMax = defaultRetryMax
	case f.retryMax < 0:
		f.retryMax = 0
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	return f
}

// redact keeps scheme, host and path of a URL: the query of a presigned URL
// is a credential.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host + u.Path
}

// redactError replaces the URL in a transport error (net/http puts the
// whole URL, query and all, into its *url.Error) with where.
func redactError(err error, where string) error {
	if ue, ok := err.(*url.Error); ok {
		return &url.Error{Op: ue.Op, URL: where, Err: ue.Err}
	}
	return err
}

func (f *HTTPFetcher) get(ctx context.Context, rawURL string, want Want, sink Sink) error {
	err := f.download(ctx, rawURL, func(resp *http.Response) error {
		if resp.ContentLength >= 0 && resp.ContentLength != want.Size {
			return permanent(fmt.Errorf("server announces %d bytes, want %d: %w", resp.ContentLength, want.Size, ErrMismatch))
		}
		if err := sink.Put(ctx, want, resp.Body); err != nil {
			// Wrong content of the right length is not cured by another
			// attempt; a body that broke off (short or failed read) may be.
			if errors.Is(err, errWrongDigest) {
				return permanent(err)
			}
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("fetch object %s from %s: %w", want.Digest, redact(rawURL), err)
	}
	return nil
}

func (f *HTTPFetcher) getBytes(ctx context.Context, rawURL string, limit int64) ([]byte, error) {
	var body []byte
	err := f.download(ctx, rawURL, func(resp *http.Response) error {
		if resp.ContentLength > limit {
			return permanent(fmt.Errorf("server announces %d bytes, more than the %d allowed", resp.ContentLength, limit))
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
		if err != nil {
			return fmt.Errorf("read body after %d bytes: %w", len(b), err)
		}
		if int64(len(b)) > limit {
			return permanent(fmt.Errorf("body is larger than the %d bytes allowed", limit))
		}
		body = b
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", redact(rawURL), err)
	}
	return body, nil
}

// download GETs rawURL, retrying transient failures (see retry.go), and
// hands a 200 response to receive, whose error is retried too unless it is
// permanent (the body broke off: retry; it is not what was asked for: stop).
// Errors name the URL only without its query.
func (f *HTTPFetcher) download(ctx context.Context, rawURL string, receive func(*http.Response) error) error {
	dl := &download{f: f, where: redact(rawURL), receive: receive}
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		return fmt.Errorf("bad URL %s: %w", dl.where, err)
	}
	req.SetResponseHandler(dl.handle)
	// A client per download: the retry functions share the download's
	// state (the last failure decides the next wait). The transport, and
	// with it the connection pool, is shared.
	c := &retryablehttp.Client{
		HTTPClient:     f.httpClient,
		RetryMax:       f.retryMax,
		RetryWaitMin:   retryWaitMin,
		RetryWaitMax:   retryWaitMax,
		CheckRetry:     dl.checkRetry,
		Backoff:        dl.backoff,
		RequestLogHook: dl.logAttempt,
		ErrorHandler:   dl.giveUp,
	}
	resp, err := c.Do(req)
	if err != nil {
		if ctx.Err() != nil && dl.last != nil && errors.Is(err, ctx.Err()) {
			return fmt.Errorf("%w after %s (the last failed: %v)", err, attemptsText(dl.attempts), dl.last)
		}
		return err
	}
	resp.Body.Close()
	return nil
}

// download is the state of one download that retryablehttp's hooks share.
// retryablehttp calls them one at a time, from the goroutine of Do.
type download struct {
	f       *HTTPFetcher
	where   string // the URL without its query
	receive func(*http.Response) error

	attempts int   // started so far
	last     error // why the last attempt failed (redacted)
	// lastStatus is the last attempt's error response, nil when it failed
	// otherwise; lastResp is the response it describes.
	lastStatus *StatusError
	lastResp   *http.Response
	wait       time.Duration // before the attempt now running
}

// statusOf describes an error response, reading its body once.
func (dl *download) statusOf(resp *http.Response) *StatusError {
	if dl.lastResp != resp || dl.lastStatus == nil {
		dl.lastResp, dl.lastStatus = resp, statusErrorOf(resp, dl.f.now())
	}
	return dl.lastStatus
}

// handle receives a response retryablehttp does not retry.
func (dl *download) handle(resp *http.Response) error {
	if resp.StatusCode != http.StatusOK {
		return permanent(dl.statusOf(resp))
	}
	if err := dl.receive(resp); err != nil {
		if isPermanent(err) {
			return err
		}
		return transient(err)
	}
	return nil
}

// checkRetry is the retryablehttp.CheckRetry of the download: called after
// each attempt, and again with the error of handle.
func (dl *download) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if err == nil && resp != nil && resp.StatusCode == http.StatusOK {
		// A body to receive, or one received in full: a context that
		// ends now does not undo what the sink kept.
		return false, nil
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		dl.last = redactError(err, dl.where)
		if isPermanent(err) {
			return false, nil
		}
		dl.lastStatus, dl.lastResp = nil, nil
		if isTransient(err) {
			return true, nil // the body broke off
		}
		// A transport error: retried unless it is one no retry cures (a
		// bad certificate, too many redirects, a bad scheme).
		retry, _ := retryablehttp.ErrorPropagatedRetryPolicy(ctx, resp, err)
		return retry, nil
	}
	se := dl.statusOf(resp)
	dl.last = se
	return se.Retryable() && se.RetryAfter <= maxRetryAfter, nil
}

// backoff is the retryablehttp.Backoff of the download: the wait before
// retry number retry, from the last failure (see retryWait).
func (dl *download) backoff(_, _ time.Duration, retry int, _ *http.Response) time.Duration {
	dl.wait = retryWait(retry, dl.lastStatus)
	return dl.f.pause(dl.wait)
}

// logAttempt counts attempts and logs each retry (without the URL's query).
func (dl *download) logAttempt(_ retryablehttp.Logger, _ *http.Request, i int) {
	dl.attempts = i + 1
	if i == 0 {
		return
	}
	dl.f.log.Info("retrying download", "url", dl.where, "attempt", i+1, "attempts", dl.f.retryMax+1,
		"after", dl.last, "waited", dl.wait)
}

// giveUp is the retryablehttp.ErrorHandler: the download's error after its
// last attempt.
func (dl *download) giveUp(resp *http.Response, err error, attempts int) (*http.Response, error) {
	if resp != nil {
		resp.Body.Close()
	}
	if err == nil {
		err = dl.last // retries exhausted on an error status
	}
	err = redactError(err, dl.where)
	var se *StatusError
	if errors.As(err, &se) && se.Retryable() && se.RetryAfter > maxRetryAfter {
		err = fmt.Errorf("%w: not retried, the server asks for a longer pause than the %s this fetcher waits", err, maxRetryAfter)
	}
	if attempts > 1 {
		err = fmt.Errorf("giving up after %s: %w", attemptsText(attempts), err)
	}
	return nil, err
}

func attemptsText(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}
