// Package pki is the appliance certificate authority: the CA that nodes of
// the air-gapped network trust, and the server certificate that web and
// registry present when their `tls:` is `auto`.
//
// At first start Open creates the CA under data_dir/pki (ca.crt, ca.key) and
// issues a server certificate (server.crt, server.key) for the advertised
// names and addresses. Later starts load the same CA, so nodes that trust
// ca.crt keep trusting airgapd; the server certificate is reissued whenever
// its names change or it nears expiry, and Run renews it while airgapd keeps
// running. A damaged CA is never replaced silently: that would break every
// node that trusts the old one, so it is an error the operator resolves.
//
// LoadKeyPair covers the other case, `tls: {cert, key}` files the operator
// supplies.
package pki

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// File names inside Options.Dir.
const (
	caCertFile     = "ca.crt"
	caKeyFile      = "ca.key"
	serverCertFile = "server.crt"
	serverKeyFile  = "server.key"
)

const (
	// renewBefore is how long before expiry a server certificate is
	// reissued: long enough that a month of failed attempts (full disk,
	// airgapd stopped) still leaves time to notice.
	renewBefore = 30 * 24 * time.Hour
	// checkEvery is how often Run looks at the expiry date. Twice a day is
	// plenty against a 30-day window and costs nothing.
	checkEvery = 12 * time.Hour
)

// Options configures Open.
type Options struct {
	// Dir holds the CA and server certificate, normally data_dir/pki.
	Dir string
	// Names are the DNS names the server certificate covers: advertise.name
	// and "localhost"; listen hosts are always IPs and go in Addresses.
	Names []string
	// Addresses are the IP addresses the server certificate covers:
	// advertise.addresses and every configured listen IP (127.0.0.1 and ::1
	// included, so local clients can verify too).
	Addresses []netip.Addr
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives certificate events; nil discards them.
	Logger *slog.Logger
}

// Authority is the appliance CA and the server certificate it issued. Its
// methods are safe for concurrent use.
type Authority struct {
	dir    string
	now    func() time.Time
	log    *slog.Logger
	every  time.Duration // Run's check interval; tests shorten it
	caCert *x509.Certificate
	caKey  crypto.Signer
	caPEM  []byte

	// mu serialises issuing, so Update (config reload) and Run (renewal)
	// never write server.crt/server.key at the same time.
	mu    sync.Mutex
	names []string
	addrs []netip.Addr

	// cert is read on every TLS handshake, so it is an atomic pointer
	// rather than behind mu: handshakes never wait for an issue in progress.
	cert atomic.Pointer[tls.Certificate]
}

// Open loads the CA in opts.Dir, creating it at first start, and makes sure
// the server certificate there is valid for opts.Names and opts.Addresses,
// signed by this CA and not about to expire.
func Open(opts Options) (*Authority, error) {
	if opts.Dir == "" {
		return nil, errors.New("pki: no directory given")
	}
	names, addrs, err := normalize(opts.Names, opts.Addresses)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	a := &Authority{
		dir:   opts.Dir,
		now:   opts.Now,
		log:   opts.Logger,
		every: checkEvery,
		names: names,
		addrs: addrs,
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	// 0700: the directory holds the CA key; nobody but airgapd has
	// business listing it.
	if err := os.MkdirAll(a.dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: create %s: %w", a.dir, err)
	}
	if err := a.loadOrCreateCA(opts.Names); err != nil {
		return nil, err
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	cur, err := tls.LoadX509KeyPair(a.path(serverCertFile), a.path(serverKeyFile))
	switch {
	case err == nil:
		err = a.ensureLocked(&cur)
	case errors.Is(err, fs.ErrNotExist):
		err = a.ensureLocked(nil)
	default:
		// A damaged server certificate is ours to replace: unlike the CA,
		// nothing outside this host depends on its exact bytes.
		a.log.Warn("server certificate unusable, issuing a new one",
			"cert", a.path(serverCertFile), "err", err)
		err = a.ensureLocked(nil)
	}
	if err != nil {
		return nil, err
	}
	return a, nil
}

// CACertPEM returns the CA certificate in PEM form, as served at /ca.crt.
func (a *Authority) CACertPEM() []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.caPEM)
}

// TLSConfig returns a new TLS server configuration that presents the current
// server certificate. The certificate is looked up on every handshake, so a
// renewal or an Update takes effect without restarting listeners. Callers
// may change the returned config (NextProtos, for one).
func (a *Authority) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return a.cert.Load(), nil
		},
	}
}

// Update sets the names and addresses the server certificate must cover and
// reissues it if they changed. server calls it on config reload.
func (a *Authority) Update(names []string, addrs []netip.Addr) error {
	n, ad, err := normalize(names, addrs)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.names, a.addrs = n, ad
	return a.ensureLocked(a.cert.Load())
}

// Run renews the server certificate when it comes within 30 days of expiry,
// checking every 12 hours, until ctx ends; then it returns nil. A failed
// renewal is logged and retried at the next check, since the old
// certificate is still valid for weeks.
func (a *Authority) Run(ctx context.Context) error {
	t := time.NewTicker(a.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			a.mu.Lock()
			err := a.ensureLocked(a.cert.Load())
			a.mu.Unlock()
			if err != nil {
				a.log.Error("server certificate renewal failed; retrying later",
					"retry_in", a.every, "err", err)
			}
		}
	}
}

// ensureLocked makes cur the current certificate if it still fits, or
// issues, writes and installs a new one. a.mu must be held.
func (a *Authority) ensureLocked(cur *tls.Certificate) error {
	reason := a.reissueReason(cur)
	if reason == "" {
		a.cert.Store(cur)
		return nil
	}
	c, err := a.issueServer()
	if err != nil {
		return err
	}
	a.cert.Store(c)
	a.log.Info("issued server certificate",
		"reason", reason,
		"names", a.names,
		"addresses", a.addrs,
		"not_after", c.Leaf.NotAfter.UTC().Format(time.RFC3339),
		"cert", a.path(serverCertFile))
	return nil
}

// reissueReason says why cur cannot keep serving, or "" when it can.
func (a *Authority) reissueReason(cur *tls.Certificate) string {
	if cur == nil || len(cur.Certificate) == 0 {
		return "no server certificate"
	}
	leaf := cur.Leaf
	if leaf == nil {
		// tls.LoadX509KeyPair fills Leaf unless GODEBUG x509keypairleaf=0
		// says otherwise; parse it ourselves then.
		var err error
		if leaf, err = x509.ParseCertificate(cur.Certificate[0]); err != nil {
			return "server certificate does not parse"
		}
		cur.Leaf = leaf
	}
	if err := leaf.CheckSignatureFrom(a.caCert); err != nil {
		return "server certificate not signed by this CA"
	}
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		return "server certificate not for server authentication"
	}
	now := a.now()
	if now.Before(leaf.NotBefore) {
		// The clock went backwards past the issue date (a host without
		// a battery-backed clock, say); clients would reject it too.
		return "server certificate not valid yet"
	}
	// A certificate cannot outlive the CA, so once the CA itself is near its
	// end reissuing gains nothing; only reissue when the new one would last
	// longer, or Run would reissue on every tick.
	if now.Add(renewBefore).After(leaf.NotAfter) && a.caCert.NotAfter.After(leaf.NotAfter) {
		return "server certificate expires " + leaf.NotAfter.UTC().Format(time.DateOnly)
	}
	names, addrs := leafSANs(leaf)
	if !slices.Equal(names, a.names) || !slices.Equal(addrs, a.addrs) {
		return "names or addresses changed"
	}
	return ""
}

// leafSANs returns the certificate's SANs in the form normalize produces,
// so the two compare with slices.Equal regardless of order.
func leafSANs(leaf *x509.Certificate) ([]string, []netip.Addr) {
	names := make([]string, 0, len(leaf.DNSNames))
	for _, n := range leaf.DNSNames {
		names = append(names, strings.ToLower(n))
	}
	slices.Sort(names)
	names = slices.Compact(names)
	addrs := make([]netip.Addr, 0, len(leaf.IPAddresses))
	for _, ip := range leaf.IPAddresses {
		if ad, ok := netip.AddrFromSlice(ip); ok {
			addrs = append(addrs, ad.Unmap())
		}
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	addrs = slices.Compact(addrs)
	return names, addrs
}

// normalize returns names and addresses sorted, deduplicated and in the
// form a certificate stores them, so that option order or case never
// causes a reissue.
func normalize(names []string, addrs []netip.Addr) ([]string, []netip.Addr, error) {
	var ns []string
	var as []netip.Addr
	for _, n := range names {
		n = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(n), "."))
		if n == "" {
			continue
		}
		// An IP written where a name was expected (a listen host, say)
		// belongs in an IP SAN: clients never match an IP against a DNS
		// SAN.
		if ad, err := netip.ParseAddr(n); err == nil {
			as = append(as, ad)
			continue
		}
		if !validName(n) {
			return nil, nil, fmt.Errorf("%q is not a DNS name", n)
		}
		ns = append(ns, n)
	}
	for _, ad := range addrs {
		if !ad.IsValid() {
			return nil, nil, errors.New("invalid (zero) IP address")
		}
		as = append(as, ad)
	}
	for i, ad := range as {
		// Certificates hold neither zones nor the IPv4-in-IPv6 form.
		as[i] = ad.WithZone("").Unmap()
	}
	slices.Sort(ns)
	ns = slices.Compact(ns)
	slices.SortFunc(as, netip.Addr.Compare)
	as = slices.Compact(as)
	if len(ns) == 0 && len(as) == 0 {
		return nil, nil, errors.New("no names or addresses for the server certificate")
	}
	return ns, as, nil
}

// validName accepts what may go in a DNS SAN: letters, digits, hyphens,
// underscores and dots, with an optional leading "*." wildcard label.
func validName(n string) bool {
	n = strings.TrimPrefix(n, "*.")
	if n == "" || len(n) > 253 {
		return false
	}
	for label := range strings.SplitSeq(n, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

func (a *Authority) path(name string) string { return filepath.Join(a.dir, name) }
