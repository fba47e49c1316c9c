package awsclient

import (
	"errors"
	"fmt"
	"net"
	"net/url"
)

func validateEndpoint(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q must be an http:// or https:// URL", raw)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", raw)
	}
	return nil
}

// isNetError reports whether err was caused by the network (refused, DNS,
// timeout) rather than by AWS answering.
func isNetError(err error, target *net.Error) bool {
	if errors.As(err, target) {
		return true
	}
	var opErr *net.OpError
	var dnsErr *net.DNSError
	return errors.As(err, &opErr) || errors.As(err, &dnsErr)
}
