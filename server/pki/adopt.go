package pki

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/airgapd/airgapd/internal/atomicfile"
)

// CAKeyPEM returns the CA key in PEM form, for an HA standby that serves
// certificates from the same CA (the primary hands it over to the peer
// token only).
func (a *Authority) CAKeyPEM() ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return encodeKey(a.caKey)
}

// Adopt replaces this CA with another instance's (an HA primary's): it
// checks that key belongs to cert, writes both, and reissues the server
// certificate from the new CA at once. Adopting the CA already in use
// changes nothing.
func (a *Authority) Adopt(certPEM, keyPEM []byte) error {
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return fmt.Errorf("pki: the peer's CA certificate: %w", err)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return errors.New("pki: the peer's CA certificate is not a CA certificate")
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return fmt.Errorf("pki: the peer's CA key: %w", err)
	}
	if !publicKeysEqual(key.Public(), cert.PublicKey) {
		return errors.New("pki: the peer's CA key does not belong to its certificate")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if bytes.Equal(a.caPEM, certPEM) {
		return nil
	}
	if err := atomicfile.WriteFile(a.path(caKeyFile), keyPEM, 0o600); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := atomicfile.WriteFile(a.path(caCertFile), certPEM, 0o644); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	a.caCert, a.caKey, a.caPEM = cert, key, bytes.Clone(certPEM)
	a.log.Info("adopted the HA peer's appliance CA", "subject", cert.Subject.CommonName)
	return a.ensureLocked(a.cert.Load())
}
