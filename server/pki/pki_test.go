package pki

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const day = 24 * time.Hour

// clock is an injectable Options.Now that tests move by hand. Run reads it
// from its own goroutine, hence the mutex.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func testOptions(t *testing.T, dir string, clk *clock) Options {
	t.Helper()
	return Options{
		Dir:       dir,
		Names:     []string{"localhost", "admin.lab.internal"},
		Addresses: []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")},
		Now:       clk.Now,
		Logger:    slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	}
}

// testWriter sends log lines to t.Log, so they show only for failing tests.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func mustOpen(t *testing.T, opts Options) *Authority {
	t.Helper()
	a, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return a
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func reversed[T any](s []T) []T {
	r := slices.Clone(s)
	slices.Reverse(r)
	return r
}

func currentLeaf(t *testing.T, a *Authority) *x509.Certificate {
	t.Helper()
	c, err := a.TLSConfig().GetCertificate(&tls.ClientHelloInfo{})
	if err != nil || c == nil || c.Leaf == nil {
		t.Fatalf("GetCertificate = %v, %v; want a certificate with Leaf", c, err)
	}
	return c.Leaf
}

func caPool(t *testing.T, a *Authority) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(a.CACertPEM()) {
		t.Fatal("CACertPEM holds no certificate")
	}
	return pool
}

func TestOpenCreatesFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	clk := newClock()
	a := mustOpen(t, testOptions(t, dir, clk))

	for _, tc := range []struct {
		name string
		mode fs.FileMode
	}{
		{name: ".", mode: fs.ModeDir | 0o700},
		{name: caCertFile, mode: 0o644},
		{name: caKeyFile, mode: 0o600},
		{name: serverCertFile, mode: 0o644},
		{name: serverKeyFile, mode: 0o600},
	} {
		fi, err := os.Stat(filepath.Join(dir, tc.name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != tc.mode {
			t.Errorf("%s mode = %v, want %v", tc.name, fi.Mode(), tc.mode)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 4 {
		t.Errorf("pki dir holds %d entries, want 4 (no temp files left behind)", len(entries))
	}

	if got := readFile(t, filepath.Join(dir, caCertFile)); !bytes.Equal(got, a.CACertPEM()) {
		t.Error("CACertPEM differs from ca.crt")
	}
	ca, err := parseCertPEM(a.CACertPEM())
	if err != nil {
		t.Fatal(err)
	}
	if ca.Subject.CommonName != "airgapd appliance CA admin.lab.internal" { // advertise.name, not localhost
		t.Errorf("CA CN = %q", ca.Subject.CommonName)
	}
	if !ca.IsCA || !ca.BasicConstraintsValid || ca.MaxPathLen != 0 || !ca.MaxPathLenZero {
		t.Errorf("CA constraints: IsCA=%v valid=%v MaxPathLen=%d zero=%v",
			ca.IsCA, ca.BasicConstraintsValid, ca.MaxPathLen, ca.MaxPathLenZero)
	}
	if ca.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("CA KeyUsage = %v", ca.KeyUsage)
	}
	if pub, ok := ca.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", ca.PublicKey)
	}
	if want := clk.Now().AddDate(20, 0, 0); !ca.NotAfter.Equal(want.Truncate(time.Second)) {
		t.Errorf("CA NotAfter = %v, want %v", ca.NotAfter, want)
	}

	leaf := currentLeaf(t, a)
	onDisk, err := parseCertPEM(readFile(t, filepath.Join(dir, serverCertFile)))
	if err != nil {
		t.Fatal(err)
	}
	if !onDisk.Equal(leaf) {
		t.Error("server.crt differs from the certificate being served")
	}
	if err := leaf.CheckSignatureFrom(ca); err != nil {
		t.Errorf("server certificate not signed by the CA: %v", err)
	}
	if leaf.IsCA || !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("server cert IsCA=%v ExtKeyUsage=%v", leaf.IsCA, leaf.ExtKeyUsage)
	}
	if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("server key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	if want := clk.Now().Add(397 * day).Truncate(time.Second); !leaf.NotAfter.Equal(want) {
		t.Errorf("server NotAfter = %v, want %v", leaf.NotAfter, want)
	}
	names, addrs := leafSANs(leaf)
	if want := []string{"admin.lab.internal", "localhost"}; !slices.Equal(names, want) {
		t.Errorf("DNS SANs = %v, want %v", names, want)
	}
	if want := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}; !slices.Equal(addrs, want) {
		t.Errorf("IP SANs = %v, want %v", addrs, want)
	}
}

func TestOpenReusesCA(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	mustOpen(t, testOptions(t, dir, clk))
	var before [][]byte
	for _, f := range []string{caCertFile, caKeyFile, serverCertFile, serverKeyFile} {
		before = append(before, readFile(t, filepath.Join(dir, f)))
	}

	clk.Advance(day)
	a := mustOpen(t, testOptions(t, dir, clk))
	for i, f := range []string{caCertFile, caKeyFile, serverCertFile, serverKeyFile} {
		if !bytes.Equal(before[i], readFile(t, filepath.Join(dir, f))) {
			t.Errorf("%s changed on the second Open", f)
		}
	}
	if !bytes.Equal(a.CACertPEM(), before[0]) {
		t.Error("second Open serves a different CA")
	}
}

func TestOpenReissuesServerCert(t *testing.T) {
	tests := []struct {
		name string
		// change prepares the second Open: edits its options, the files
		// in dir, or the clock.
		change      func(t *testing.T, dir string, opts *Options, clk *clock)
		wantReissue bool
	}{
		{
			name:   "nothing changed",
			change: func(*testing.T, string, *Options, *clock) {},
		},
		{
			name: "same SANs in another order and case",
			change: func(_ *testing.T, _ string, o *Options, _ *clock) {
				o.Names = []string{"Admin.Lab.Internal.", "localhost", "localhost"}
				o.Addresses = []netip.Addr{netip.MustParseAddr("::1"), netip.MustParseAddr("::ffff:127.0.0.1")}
			},
		},
		{
			name: "name added",
			change: func(_ *testing.T, _ string, o *Options, _ *clock) {
				o.Names = append(o.Names, "registry.lab.internal")
			},
			wantReissue: true,
		},
		{
			name: "address removed",
			change: func(_ *testing.T, _ string, o *Options, _ *clock) {
				o.Addresses = o.Addresses[:1]
			},
			wantReissue: true,
		},
		{
			name:   "31 days left",
			change: func(_ *testing.T, _ string, _ *Options, c *clock) { c.Advance(366 * day) },
		},
		{
			name:        "17 days left",
			change:      func(_ *testing.T, _ string, _ *Options, c *clock) { c.Advance(380 * day) },
			wantReissue: true,
		},
		{
			name: "clock set back before NotBefore",
			change: func(t *testing.T, dir string, o *Options, c *clock) {
				// Issue a certificate 10 days after the CA, then turn the
				// clock back 5 days: the CA is still valid, the server
				// certificate not yet.
				c.Advance(10 * day)
				if err := os.Remove(filepath.Join(dir, serverCertFile)); err != nil {
					t.Fatal(err)
				}
				mustOpen(t, *o)
				c.Advance(-5 * day)
			},
			wantReissue: true,
		},
		{
			name: "server.crt corrupt",
			change: func(t *testing.T, dir string, _ *Options, _ *clock) {
				writeFile(t, filepath.Join(dir, serverCertFile), []byte("garbage"))
			},
			wantReissue: true,
		},
		{
			name: "server.key missing",
			change: func(t *testing.T, dir string, _ *Options, _ *clock) {
				if err := os.Remove(filepath.Join(dir, serverKeyFile)); err != nil {
					t.Fatal(err)
				}
			},
			wantReissue: true,
		},
		{
			name: "signed by another CA",
			change: func(t *testing.T, dir string, o *Options, c *clock) {
				other := t.TempDir()
				oo := *o
				oo.Dir = other
				mustOpen(t, oo)
				for _, f := range []string{serverCertFile, serverKeyFile} {
					writeFile(t, filepath.Join(dir, f), readFile(t, filepath.Join(other, f)))
				}
			},
			wantReissue: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			clk := newClock()
			mustOpen(t, testOptions(t, dir, clk))
			caBefore := readFile(t, filepath.Join(dir, caCertFile))

			opts := testOptions(t, dir, clk)
			tc.change(t, dir, &opts, clk)
			before, _ := os.ReadFile(filepath.Join(dir, serverCertFile))
			a := mustOpen(t, opts)
			after := readFile(t, filepath.Join(dir, serverCertFile))

			if reissued := !bytes.Equal(before, after); reissued != tc.wantReissue {
				t.Fatalf("reissued = %v, want %v", reissued, tc.wantReissue)
			}
			if !bytes.Equal(caBefore, a.CACertPEM()) {
				t.Fatal("the CA changed")
			}
			leaf := currentLeaf(t, a)
			if onDisk, err := parseCertPEM(after); err != nil || !onDisk.Equal(leaf) {
				t.Fatalf("served certificate is not server.crt (parse error %v)", err)
			}
			if _, err := leaf.Verify(x509.VerifyOptions{
				Roots:       caPool(t, a),
				CurrentTime: clk.Now(),
				DNSName:     "localhost",
			}); err != nil {
				t.Errorf("served certificate does not verify: %v", err)
			}
			wantNames, wantAddrs, err := normalize(opts.Names, opts.Addresses)
			if err != nil {
				t.Fatal(err)
			}
			if names, addrs := leafSANs(leaf); !slices.Equal(names, wantNames) || !slices.Equal(addrs, wantAddrs) {
				t.Errorf("SANs = %v %v, want %v %v", names, addrs, wantNames, wantAddrs)
			}
			if tc.wantReissue {
				if want := clk.Now().Add(397 * day).Truncate(time.Second); !leaf.NotAfter.Equal(want) {
					t.Errorf("NotAfter = %v, want %v", leaf.NotAfter, want)
				}
			}
		})
	}
}

func TestOpenRefusesDamagedCA(t *testing.T) {
	tests := []struct {
		name     string
		damage   func(t *testing.T, dir string) // returns after changing dir
		wantFile string
	}{
		{
			name: "corrupt ca.key",
			damage: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, caKeyFile), []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
			},
			wantFile: caKeyFile,
		},
		{
			name: "ca.key not PEM",
			damage: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, caKeyFile), []byte("not a key"))
			},
			wantFile: caKeyFile,
		},
		{
			name: "truncated ca.crt",
			damage: func(t *testing.T, dir string) {
				p := filepath.Join(dir, caCertFile)
				b := readFile(t, p)
				writeFile(t, p, b[:len(b)/2])
			},
			wantFile: caCertFile,
		},
		{
			name: "ca.key missing",
			damage: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, caKeyFile)); err != nil {
					t.Fatal(err)
				}
			},
			wantFile: caKeyFile,
		},
		{
			name: "ca.key of another CA",
			damage: func(t *testing.T, dir string) {
				other := t.TempDir()
				mustOpen(t, Options{Dir: other, Names: []string{"localhost"}})
				writeFile(t, filepath.Join(dir, caKeyFile), readFile(t, filepath.Join(other, caKeyFile)))
			},
			wantFile: caKeyFile,
		},
		{
			name: "ca.crt is the server certificate",
			damage: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, caCertFile), readFile(t, filepath.Join(dir, serverCertFile)))
			},
			wantFile: caCertFile,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			clk := newClock()
			mustOpen(t, testOptions(t, dir, clk))
			tc.damage(t, dir)
			var before [][]byte
			for _, f := range []string{caCertFile, caKeyFile} {
				b, _ := os.ReadFile(filepath.Join(dir, f))
				before = append(before, b)
			}

			_, err := Open(testOptions(t, dir, clk))
			if err == nil {
				t.Fatal("Open succeeded with a damaged CA")
			}
			msg := err.Error()
			for _, want := range []string{filepath.Join(dir, tc.wantFile), "move the folder " + dir + " aside", "trust the new ca.crt"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
			for i, f := range []string{caCertFile, caKeyFile} {
				b, _ := os.ReadFile(filepath.Join(dir, f))
				if !bytes.Equal(b, before[i]) {
					t.Errorf("%s was replaced", f)
				}
			}
		})
	}
}

func TestOpenRejectsOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{name: "no dir", opts: Options{Names: []string{"localhost"}}, wantErr: "no directory"},
		{name: "no SANs", opts: Options{Dir: t.TempDir()}, wantErr: "no names or addresses"},
		{name: "bad name", opts: Options{Dir: t.TempDir(), Names: []string{"admin host"}}, wantErr: `"admin host" is not a DNS name`},
		{name: "zero address", opts: Options{Dir: t.TempDir(), Addresses: []netip.Addr{{}}}, wantErr: "invalid (zero) IP address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Open error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	opts := testOptions(t, dir, clk)
	a := mustOpen(t, opts)
	first := currentLeaf(t, a)

	steps := []struct {
		name        string
		names       []string
		addrs       []netip.Addr
		wantErr     bool
		wantReissue bool
	}{
		{name: "same SANs reordered", names: reversed(opts.Names), addrs: reversed(opts.Addresses)},
		{name: "invalid name", names: []string{"bad name"}, addrs: opts.Addresses, wantErr: true},
		{
			name:        "advertise address added",
			names:       opts.Names,
			addrs:       append(slices.Clone(opts.Addresses), netip.MustParseAddr("192.168.10.10")),
			wantReissue: true,
		},
	}
	prev := first
	for _, st := range steps {
		err := a.Update(st.names, st.addrs)
		if (err != nil) != st.wantErr {
			t.Fatalf("%s: Update error = %v, want error %v", st.name, err, st.wantErr)
		}
		cur := currentLeaf(t, a)
		if reissued := !cur.Equal(prev); reissued != st.wantReissue {
			t.Fatalf("%s: reissued = %v, want %v", st.name, reissued, st.wantReissue)
		}
		if st.wantReissue {
			onDisk, err := parseCertPEM(readFile(t, filepath.Join(dir, serverCertFile)))
			if err != nil || !onDisk.Equal(cur) {
				t.Fatalf("%s: server.crt is not the served certificate (%v)", st.name, err)
			}
			if err := cur.VerifyHostname("192.168.10.10"); err != nil {
				t.Errorf("%s: %v", st.name, err)
			}
		}
		prev = cur
	}
}

func TestRunRenews(t *testing.T) {
	clk := newClock()
	a := mustOpen(t, testOptions(t, t.TempDir(), clk))
	old := currentLeaf(t, a)
	a.every = 5 * time.Millisecond // instead of 12 hours

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after ctx ended, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after ctx ended")
		}
	})

	// Some ticks with nothing to do must leave the certificate alone.
	time.Sleep(30 * time.Millisecond)
	if !currentLeaf(t, a).Equal(old) {
		t.Fatal("Run renewed a certificate with a year left")
	}

	clk.Advance(380 * day)
	deadline := time.Now().Add(5 * time.Second)
	for currentLeaf(t, a).Equal(old) {
		if time.Now().After(deadline) {
			t.Fatal("Run did not renew a certificate expiring in 17 days")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got, want := currentLeaf(t, a).NotAfter, clk.Now().Add(397*day).Truncate(time.Second); !got.Equal(want) {
		t.Errorf("renewed NotAfter = %v, want %v", got, want)
	}
}

// serveTLS serves "ok" over HTTPS with cfg on a loopback port and returns
// the address.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, "ok")
		}),
		TLSConfig: cfg,
		// The failing clients make the server log handshake errors.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("ServeTLS: %v", err)
		}
	})
	return ln.Addr().String()
}

func TestTLSEndToEnd(t *testing.T) {
	a := mustOpen(t, testOptions(t, t.TempDir(), newClock()))
	addr := serveTLS(t, a.TLSConfig())
	_, port, _ := net.SplitHostPort(addr)

	tests := []struct {
		name       string
		url        string
		serverName string // when set, dial addr and verify this name
		roots      *x509.CertPool
		wantErr    any // pointer to the error type errors.As must find
	}{
		{name: "by IP", url: "https://" + addr + "/", roots: caPool(t, a)},
		{name: "by name", url: "https://localhost:" + port + "/", serverName: "localhost", roots: caPool(t, a)},
		{name: "empty pool", url: "https://" + addr + "/", roots: x509.NewCertPool(), wantErr: new(x509.UnknownAuthorityError)},
		{name: "name not in certificate", url: "https://other.example:" + port + "/", serverName: "other.example", roots: caPool(t, a), wantErr: new(x509.HostnameError)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := &http.Transport{
				// RootCAs set means the system roots play no part.
				TLSClientConfig:   &tls.Config{RootCAs: tc.roots, ServerName: tc.serverName},
				DisableKeepAlives: true,
			}
			if tc.serverName != "" {
				// No DNS in tests: every name goes to the loopback server.
				tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, network, addr)
				}
			}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

			resp, err := client.Get(tc.url)
			if tc.wantErr != nil {
				if err == nil {
					resp.Body.Close()
					t.Fatal("request succeeded, want a verification error")
				}
				if !errors.As(err, tc.wantErr) {
					t.Fatalf("error = %v, want %T", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK || string(body) != "ok" {
				t.Fatalf("got %d %q, want 200 \"ok\"", resp.StatusCode, body)
			}
			if v := resp.TLS.Version; v < tls.VersionTLS12 {
				t.Errorf("negotiated TLS version %x", v)
			}
		})
	}
}

func TestLoadKeyPair(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	mustOpen(t, Options{Dir: dirA, Names: []string{"localhost"}})
	mustOpen(t, Options{Dir: dirB, Names: []string{"localhost"}})
	certA, keyA := filepath.Join(dirA, serverCertFile), filepath.Join(dirA, serverKeyFile)
	keyB := filepath.Join(dirB, serverKeyFile)
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	writeFile(t, garbage, []byte("not PEM"))
	encrypted := filepath.Join(t.TempDir(), "enc.key")
	writeFile(t, encrypted, []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"))
	missing := filepath.Join(t.TempDir(), "missing.crt")

	tests := []struct {
		name      string
		cert, key string
		wantErr   []string // substrings of the error; nil means success
	}{
		{name: "matching pair", cert: certA, key: keyA},
		{name: "cert missing", cert: missing, key: keyA, wantErr: []string{missing}},
		{name: "cert not PEM", cert: garbage, key: keyA, wantErr: []string{garbage, "cert"}},
		{name: "key not PEM", cert: certA, key: garbage, wantErr: []string{garbage, "key"}},
		{name: "key encrypted", cert: certA, key: encrypted, wantErr: []string{encrypted, "encrypted"}},
		{name: "key of another cert", cert: certA, key: keyB, wantErr: []string{certA, keyB}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := LoadKeyPair(tc.cert, tc.key)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.MinVersion != tls.VersionTLS12 || len(cfg.Certificates) != 1 {
					t.Fatalf("config MinVersion=%x Certificates=%d", cfg.MinVersion, len(cfg.Certificates))
				}
				return
			}
			if err == nil {
				t.Fatal("LoadKeyPair succeeded")
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}
