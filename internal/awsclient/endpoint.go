package awsclient

import (
	"errors"
	"fmt"
	"net"
	"net/url"

	"github.com/aws/smithy-go"
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

// operationFailed reports whether an AWS operation called name failed
// anywhere in err's chain (GetCallerIdentity wraps the AssumeRole that
// fetching its credentials needed).
func operationFailed(err error, name string) bool {
	for err != nil {
		var opErr *smithy.OperationError
		if !errors.As(err, &opErr) {
			return false
		}
		if opErr.Operation() == name {
			return true
		}
		err = opErr.Unwrap()
	}
	return false
}
