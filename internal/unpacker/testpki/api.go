// Package testpki mints throwaway certificate authorities and certificates
// for tests of the unpacker's mutual-TLS API: a client CA for the daemon's
// --client-ca, client certificates it issues, and a second, unrelated CA
// whose certificates the daemon must refuse.
package testpki

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"testing"
)

// CA is a certificate authority that lives for one test.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	// PEM is the CA certificate, PEM-encoded (what --client-ca reads).
	PEM []byte
}

// NewCA makes a self-signed CA named commonName, failing t on error.
func NewCA(t testing.TB, commonName string) *CA { return newCA(t, commonName) }

// ClientCertificate issues a client-authentication certificate for commonName.
func (ca *CA) ClientCertificate(t testing.TB, commonName string) tls.Certificate {
	return ca.issue(t, commonName, x509.ExtKeyUsageClientAuth)
}

// ServerCertificate issues a server-authentication certificate for commonName
// valid for 127.0.0.1, ::1 and localhost.
func (ca *CA) ServerCertificate(t testing.TB, commonName string) tls.Certificate {
	return ca.issue(t, commonName, x509.ExtKeyUsageServerAuth)
}

// WritePEM writes the CA certificate to dir/name and returns the path.
func (ca *CA) WritePEM(t testing.TB, dir, name string) string { return ca.writePEM(t, dir, name) }
