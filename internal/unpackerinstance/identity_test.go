package unpackerinstance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"
)

func TestNewIdentity(t *testing.T) {
	id, err := NewIdentity("autoami unpacker 123456789012/eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	parse := func(s string) *x509.Certificate {
		block, rest := pem.Decode([]byte(s))
		if block == nil || block.Type != "CERTIFICATE" || len(strings.TrimSpace(string(rest))) != 0 {
			t.Fatalf("not one PEM certificate: %q", s)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ca, leaf := parse(id.ClientCACertificatePEM), parse(id.ClientCertificatePEM)
	if !ca.IsCA || leaf.IsCA {
		t.Fatalf("CA IsCA %v, client IsCA %v", ca.IsCA, leaf.IsCA)
	}
	for _, c := range []*x509.Certificate{ca, leaf} {
		pub, ok := c.PublicKey.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			t.Errorf("%s: key %T, want ECDSA P-256", c.Subject, c.PublicKey)
		}
		if life := c.NotAfter.Sub(time.Now()); life < 29*365*24*time.Hour {
			t.Errorf("%s is valid for %s only; want long-lived", c.Subject, life)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("the client certificate does not chain to its CA for client authentication: %v", err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("the client certificate is good for server authentication too")
	}
	if _, err := id.TLSCertificate(); err != nil {
		t.Fatalf("the key does not match the certificate: %v", err)
	}
	other, err := NewIdentity("autoami unpacker 123456789012/eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	if other.ClientCACertificatePEM == id.ClientCACertificatePEM || other.ClientPrivateKeyPEM == id.ClientPrivateKeyPEM {
		t.Error("two identities share a CA or key")
	}
	if _, err := (Identity{ClientCACertificatePEM: id.ClientCACertificatePEM}).TLSCertificate(); err == nil ||
		!strings.Contains(err.Error(), "import") {
		t.Errorf("an identity without a client certificate: %v", err)
	}
}
