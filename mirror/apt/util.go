package apt

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"iter"
	"maps"
	"os"
)

func mapValues[K comparable, V any](m map[K]V) iter.Seq[V] { return maps.Values(m) }
func mapKeys[K comparable, V any](m map[K]V) iter.Seq[K]   { return maps.Keys(m) }
func mapsEqual(a, b map[string]string) bool                { return maps.Equal(a, b) }

func caPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("sslcacert: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("sslcacert %s holds no PEM certificate; give the upstream's CA certificate", file)
	}
	return pool, nil
}

func tlsWith(pool *x509.CertPool) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
}
