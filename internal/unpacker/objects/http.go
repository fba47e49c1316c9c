package objects

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-retryablehttp"
)

func newHTTPFetcher(opts FetcherOptions) *HTTPFetcher {
	c := retryablehttp.NewClient()
	c.HTTPClient = opts.HTTPClient
	if c.HTTPClient == nil {
		c.HTTPClient = cleanhttp.DefaultPooledClient()
	}
	c.RetryMax = opts.RetryMax
	if c.RetryMax == 0 {
		c.RetryMax = 5
	}
	c.RetryWaitMin = 200 * time.Millisecond
	c.RetryWaitMax = 5 * time.Second
	// Presigned URLs carry credentials in the query: never log them.
	c.Logger = nil
	if opts.Logger != nil {
		c.Logger = opts.Logger
	}
	c.ErrorHandler = retryablehttp.PassthroughErrorHandler
	return &HTTPFetcher{client: c}
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

// get downloads once per attempt; a body that breaks off or does not verify is
// retried too (the sink kept nothing), up to RetryMax attempts in all.
func (f *HTTPFetcher) get(ctx context.Context, rawURL string, want Want, sink Sink) error {
	var err error
	for attempt := 0; attempt <= f.client.RetryMax; attempt++ {
		if attempt > 0 {
			wait := f.client.RetryWaitMin << (attempt - 1)
			if wait > f.client.RetryWaitMax {
				wait = f.client.RetryWaitMax
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("fetch object %s from %s: %w (last error: %v)", want.Digest, redact(rawURL), ctx.Err(), err)
			case <-time.After(wait):
			}
		}
		var retry bool
		retry, err = f.getOnce(ctx, rawURL, want, sink)
		if err == nil || !retry {
			return err
		}
	}
	return err
}

func (f *HTTPFetcher) getOnce(ctx context.Context, rawURL string, want Want, sink Sink) (retry bool, err error) {
	where := redact(rawURL)
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return false, fmt.Errorf("fetch object %s: bad URL %s: %w", want.Digest, where, err)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return false, fmt.Errorf("fetch object %s from %s: %w", want.Digest, where, err)
	}
	defer func() {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests,
			fmt.Errorf("fetch object %s from %s: HTTP %s: %q", want.Digest, where, resp.Status, msg)
	}
	if resp.ContentLength >= 0 && resp.ContentLength != want.Size {
		return false, fmt.Errorf("fetch object %s from %s: server announces %d bytes, want %d: %w",
			want.Digest, where, resp.ContentLength, want.Size, ErrMismatch)
	}
	if err := sink.Put(ctx, want, resp.Body); err != nil {
		if ctx.Err() != nil {
			return false, fmt.Errorf("fetch object %s from %s: %w", want.Digest, where, err)
		}
		// A connection that broke off mid-body shows up as a short or failed
		// read: worth another attempt. Wrong content of the right length is not.
		return !isWrongContent(err), fmt.Errorf("fetch object %s from %s: %w", want.Digest, where, err)
	}
	return false, nil
}

// isWrongContent reports a digest mismatch of a complete body (as opposed to
// a truncated one), which a retry will not cure.
func isWrongContent(err error) bool {
	return errors.Is(err, ErrMismatch) && errors.Is(err, errWrongDigest)
}
