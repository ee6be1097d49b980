package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"time"

	"github.com/airgapd/airgapd/internal/atomicfile"
)

const (
	caCommonName = "airgapd appliance CA"
	caValidYears = 20
	// serverValid is 397 days, the longest validity browsers accept for a
	// server certificate (Apple and Chrome cap it at 398 days), so the UI
	// works in browsers once the CA is trusted.
	serverValid = 397 * 24 * time.Hour
	// backdate moves NotBefore into the past so that nodes whose clocks lag
	// this host's (before they sync NTP from it) accept a fresh certificate.
	backdate = time.Hour
)

// loadOrCreateCA loads ca.crt and ca.key, or creates both when neither
// exists. Any other state is an error: replacing a CA that nodes trust
// would break them without a word.
func (a *Authority) loadOrCreateCA(names []string) error {
	certPath, keyPath := a.path(caCertFile), a.path(caKeyFile)
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	certMissing, keyMissing := errors.Is(certErr, fs.ErrNotExist), errors.Is(keyErr, fs.ErrNotExist)
	switch {
	case certMissing && keyMissing:
		return a.createCA(names)
	case certMissing:
		return a.caError(certPath, fmt.Errorf("missing, but %s exists", keyPath))
	case keyMissing:
		return a.caError(keyPath, fmt.Errorf("missing, but %s exists", certPath))
	case certErr != nil:
		// Permissions and the like: not damage, so no advice to start over.
		return fmt.Errorf("pki: read CA certificate: %w", certErr)
	case keyErr != nil:
		return fmt.Errorf("pki: read CA key: %w", keyErr)
	}

	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return a.caError(certPath, err)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return a.caError(certPath, errors.New("not a CA certificate"))
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return a.caError(keyPath, err)
	}
	if !publicKeysEqual(key.Public(), cert.PublicKey) {
		return a.caError(keyPath, fmt.Errorf("key does not belong to the certificate in %s", certPath))
	}
	if fi, err := os.Stat(keyPath); err == nil && fi.Mode().Perm()&0o077 != 0 {
		// Not fatal (the operator may have reasons), but whoever can read
		// the key can mint certificates every node trusts.
		a.log.Warn("CA key is readable by other users; chmod 600 it", "key", keyPath, "mode", fi.Mode().Perm())
	}
	if now := a.now(); now.After(cert.NotAfter) {
		a.log.Error("appliance CA has expired; nodes will reject its certificates; move the pki folder aside and restart to create a new CA, then make every node trust the new ca.crt",
			"cert", certPath, "not_after", cert.NotAfter)
	}
	a.caCert, a.caKey, a.caPEM = cert, key, certPEM
	return nil
}

// caError wraps a problem with ca.crt or ca.key with what the operator can
// do about it.
func (a *Authority) caError(file string, err error) error {
	return fmt.Errorf("pki: appliance CA file %s is unusable; restore it from a backup, "+
		"or move the folder %s aside and restart airgapd to create a new CA "+
		"(every node must then trust the new ca.crt): %w", file, a.dir, err)
}

// caHostName is the first name that is not localhost, else localhost.
func caHostName(names []string) string {
	for _, n := range names {
		if n = strings.TrimSpace(n); n != "" && n != "localhost" {
			return n
		}
	}
	return "localhost"
}

func (a *Authority) createCA(names []string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pki: generate CA key: %w", err)
	}
	// The host name in the CN tells apart the CAs of several airgapd
	// instances in one trust store: advertise.name, not the localhost
	// every instance's certificate also covers.
	cn := caCommonName + " " + caHostName(names)
	now := a.now()
	tmpl := &x509.Certificate{
		// SerialNumber is left nil: CreateCertificate then picks a random
		// RFC 5280 serial.
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"airgapd"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.AddDate(caValidYears, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		// This CA signs leaf certificates only, never another CA.
		MaxPathLen:     0,
		MaxPathLenZero: true,
		KeyUsage:       x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return fmt.Errorf("pki: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("pki: parse new CA certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return fmt.Errorf("pki: encode CA key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	// Key first: a crash in between leaves ca.key without ca.crt, which
	// the next start reports instead of creating a second CA over it.
	if err := atomicfile.WriteFile(a.path(caKeyFile), keyPEM, 0o600); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := atomicfile.WriteFile(a.path(caCertFile), certPEM, 0o644); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	a.caCert, a.caKey, a.caPEM = cert, key, certPEM
	a.log.Info("created appliance CA; nodes must trust its ca.crt",
		"cert", a.path(caCertFile), "subject", cn,
		"not_after", cert.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// issueServer creates a server certificate for a.names and a.addrs, writes
// it to server.crt and server.key, and returns it.
func (a *Authority) issueServer() (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate server key: %w", err)
	}
	now := a.now()
	notAfter := now.Add(serverValid)
	if notAfter.After(a.caCert.NotAfter) {
		// Clients reject a chain that outlives its CA.
		notAfter = a.caCert.NotAfter
	}
	ips := make([]net.IP, 0, len(a.addrs))
	for _, ad := range a.addrs {
		ips = append(ips, net.IP(ad.AsSlice()))
	}
	// The CN is for people reading the certificate; clients go by SANs.
	cn := ""
	if len(a.names) > 0 {
		cn = a.names[0]
	} else if len(a.addrs) > 0 {
		cn = a.addrs[0].String()
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"airgapd"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		// ECDSA keys sign the handshake; no key encipherment.
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    a.names,
		IPAddresses: ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.caCert, key.Public(), a.caKey)
	if err != nil {
		return nil, fmt.Errorf("pki: sign server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse new server certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: encode server key: %w", err)
	}
	// Key first, then certificate. A crash in between leaves a pair that
	// does not match; the next Open fails to load it and issues anew.
	if err := atomicfile.WriteFile(a.path(serverKeyFile), keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := atomicfile.WriteFile(a.path(serverCertFile), certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// parseCertPEM parses the first PEM block, which must be a certificate.
func parseCertPEM(data []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, errors.New("no PEM data found")
	}
	if b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("PEM block is %q, not CERTIFICATE", b.Type)
	}
	return x509.ParseCertificate(b.Bytes)
}

// parseKeyPEM parses a private key in the PEM forms openssl writes, so an
// operator can also put a CA of their own in place of the generated one.
func parseKeyPEM(data []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, errors.New("no PEM data found")
	}
	if b.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED") {
		// airgapd starts unattended; there is nobody to type a passphrase.
		return nil, errors.New("key is encrypted; write it unencrypted (openssl pkey -in KEY -out KEY.plain) and chmod 600 it")
	}
	var key any
	var err error
	switch b.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("PEM block is %q, not a private key", b.Type)
	}
	if err != nil {
		return nil, err
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%T keys cannot sign", key)
	}
	return s, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}
