package publisher

import (
	"crypto/tls"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/autoami/terraform-provider-autoami/internal/awsclient"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/client"
	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

func targetKey(account, region string) string { return account + "/" + region }

var (
	accountIDPattern  = regexp.MustCompile(`^[0-9]{12}$`)
	instanceIDPattern = regexp.MustCompile(`^i-[0-9a-f]{8,17}$`)
)

// validateTargets checks what every step relies on; the error names the
// target by its index and attribute.
func validateTargets(targets []Target) error {
	if len(targets) == 0 {
		return errors.New("targets: at least one target is needed")
	}
	seen := map[string]int{}
	var errs []error
	for i, t := range targets {
		at := func(attr, format string, args ...any) {
			errs = append(errs, fmt.Errorf("targets[%d].%s: %s", i, attr, fmt.Sprintf(format, args...)))
		}
		if !accountIDPattern.MatchString(t.AccountID) {
			at("account_id", "%q is not a 12-digit account ID", t.AccountID)
		}
		if err := awsclient.ValidateRegion(t.Region); err != nil {
			at("region", "%v", err)
		}
		if j, dup := seen[t.Key()]; dup {
			at("account_id", "%s is also targets[%d]: one AMI per account and region", t, j)
		}
		seen[t.Key()] = i
		if !instanceIDPattern.MatchString(t.InstanceID) {
			at("instance_id", "%q is not an EC2 instance ID", t.InstanceID)
		}
		if t.Endpoint == "" {
			at("endpoint", "empty: the unpacker's address is needed")
		}
		if _, err := wire.ParseFingerprint(t.ServerCertificateFingerprint); err != nil {
			at("server_certificate_fingerprint", "%v", err)
		}
		if t.ClientCertificatePEM == "" || t.ClientKeyPEM == "" {
			at("client_certificate_pem", "the client certificate and key are needed to reach the unpacker")
		} else if _, err := tls.X509KeyPair([]byte(t.ClientCertificatePEM), []byte(t.ClientKeyPEM)); err != nil {
			at("client_certificate_pem", "not a certificate and key pair: %v", err)
		}
	}
	return errors.Join(errs...)
}

// dial connects to the target's daemon with the target's credentials.
func dial(t Target) (*client.Client, error) {
	cert, err := tls.X509KeyPair([]byte(t.ClientCertificatePEM), []byte(t.ClientKeyPEM))
	if err != nil {
		return nil, fmt.Errorf("client certificate of the unpacker in %s: %w", t, err)
	}
	c, err := client.New(client.Config{
		Address:     t.Endpoint,
		Fingerprint: t.ServerCertificateFingerprint,
		Certificate: cert,
		Timeout:     2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("unpacker %s in %s: %w", t.InstanceID, t, err)
	}
	return c, nil
}
