package pki

import (
	"crypto/tls"
	"fmt"
	"os"
)

// LoadKeyPair returns a TLS server configuration for the certificate and key
// files an operator configured with `tls: {cert, key}`. The certificate file
// may hold intermediates after the leaf. Errors name the file at fault, since
// the operator has to fix it by hand.
func LoadKeyPair(certFile, keyFile string) (*tls.Config, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("tls cert: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls key: %w", err)
	}
	// tls.X509KeyPair does not say which file is wrong; check each first.
	if _, err := parseCertPEM(certPEM); err != nil {
		return nil, fmt.Errorf("tls cert %s is not a PEM certificate: %w", certFile, err)
	}
	if _, err := parseKeyPEM(keyPEM); err != nil {
		return nil, fmt.Errorf("tls key %s is not a PEM private key: %w", keyFile, err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tls cert %s and key %s do not go together: %w", certFile, keyFile, err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{c},
	}, nil
}
