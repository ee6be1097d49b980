package ntpd

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/facebook/time/ntp/ntske"
	ntpproto "github.com/facebook/time/ntp/protocol"
	"github.com/facebook/time/ntp/protocol/nts"

	"github.com/airgapd/airgapd/internal/testpki"
)

func TestKeyRing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ntp", ntsKeysFile)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	r, err := openKeyRing(path, clock)
	if err != nil {
		t.Fatal(err)
	}
	c2s, s2c := make([]byte, 32), make([]byte, 32)
	rand.Read(c2s)
	cookie, err := r.SealCookie(ntpproto.AEADAESSIVCMAC256, c2s, s2c)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name     string
		advance  time.Duration
		wantID   uint32
		wantOpen bool
	}{
		{"reopened the same day: same key", time.Hour, 1, true},
		{"a day later: rotated, old cookie opens", 24 * time.Hour, 2, true},
		{"two days later: rotated again, still opens", 24 * time.Hour, 3, true},
		{"three rotations later: the first key is gone", 24 * time.Hour, 4, false},
	}
	for _, st := range steps {
		now = now.Add(st.advance)
		r, err = openKeyRing(path, clock) // from the file, as after a restart
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if id, _ := r.current(); id != st.wantID {
			t.Errorf("%s: key %d, want %d", st.name, id, st.wantID)
		}
		a, k, _, err := r.OpenCookie(cookie)
		if (err == nil) != st.wantOpen {
			t.Errorf("%s: open: %v", st.name, err)
		}
		if err == nil && (a != ntpproto.AEADAESSIVCMAC256 || string(k) != string(c2s)) {
			t.Errorf("%s: opened to aead %d and other keys", st.name, a)
		}
	}
	bad := append([]byte(nil), cookie...)
	bad[len(bad)-1] ^= 1
	if _, _, _, err := r.OpenCookie(bad); err == nil {
		t.Error("a damaged cookie opened")
	}
}

// TestNTSExchange: facebook/time's NTS-KE client gets cookies from the
// server over TLS 1.3; an NTS request made with one is answered with an
// authenticated reply and a fresh cookie, for both AEADs. A plain request
// is answered unless nts.required; a cookie the ring does not know gets a
// KoD NTSN; a tampered request none.
func TestNTSExchange(t *testing.T) {
	dir := t.TempDir()
	pki := testpki.New(t, dir)
	srvTLS := pki.ServerTLS(t)
	srvTLS.ClientAuth, srvTLS.ClientCAs = tls.NoClientCert, nil
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	cfg := loopbackConfig()
	cfg.RateLimit.Enabled = false
	cfg.NTS = NTS{Enabled: true, Listen: "127.0.0.1:0"}
	s := startServer(t, cfg, Deps{NTSKE: []net.Listener{ln}, NTSTLS: srvTLS, DataDir: dir})

	roots := x509.NewCertPool()
	roots.AddCert(pki.CA)
	for _, aead := range []ntpproto.AEADAlgorithm{ntpproto.AEADAESSIVCMAC256, ntpproto.AEADAES128GCMSIV} {
		cl := &ntske.Client{SupportedAEAD: []uint16{uint16(aead)}, RequestCompliantExport: true}
		hs, err := cl.Handshake(context.Background(), ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatalf("aead %d: handshake: %v", aead, err)
		}
		if hs.AEAD != uint16(aead) || len(hs.Cookies) != keCookies {
			t.Fatalf("aead %d: negotiated %d with %d cookies", aead, hs.AEAD, len(hs.Cookies))
		}
		uid := make([]byte, 32)
		rand.Read(uid)
		req, err := nts.BuildNTSRequest(ntpproto.Packet{Settings: 0x23}, nts.RequestParams{AEAD: aead, C2S: hs.C2S, Cookie: hs.Cookies[0], UniqueID: uid, Placeholders: 1})
		if err != nil {
			t.Fatal(err)
		}
		reply := exchange(t, s.addr, req)
		var p ntpproto.Packet
		if err := p.UnmarshalBinary(reply); err != nil {
			t.Fatalf("aead %d: reply: %v", aead, err)
		}
		if len(reply) > len(req) || len(p.ExtensionFields) != 2 || string(p.ExtensionFields[0].Body) != string(uid) {
			t.Fatalf("aead %d: %d-byte reply to %d bytes, fields %v", aead, len(reply), len(req), p.ExtensionFields)
		}
		s2c, _ := newNTSAEAD(aead, hs.S2C)
		ad, _ := p.AssociatedData(1)
		enc, err := s2c.open(ad, p.ExtensionFields[1])
		if err != nil {
			t.Fatalf("aead %d: reply does not authenticate: %v", aead, err)
		}
		// One cookie per spent one and placeholder, as many as fit in
		// the request's size (this client's SIV authenticator has no nonce,
		// the reply's has 16 octets: one cookie fewer for algorithm 15).
		if efs, err := ntpproto.ParseExtensionFields(enc); err != nil || len(efs) < 1 || efs[0].Type != ntpproto.NTSCookie {
			t.Errorf("aead %d: want fresh cookies in the reply, got %v (%v)", aead, efs, err)
		}

		req[60] ^= 1 // inside the unique identifier: authenticator fails
		if got := exchange(t, s.addr, req); got != nil {
			t.Errorf("aead %d: tampered request answered", aead)
		}
	}
	// A cookie from another key ring: NTS NAK.
	other, _ := openKeyRing("", time.Now)
	k := make([]byte, 32)
	foreign, _ := other.SealCookie(ntpproto.AEADAESSIVCMAC256, k, k)
	req, _ := nts.BuildNTSRequest(ntpproto.Packet{Settings: 0x23}, nts.RequestParams{AEAD: ntpproto.AEADAESSIVCMAC256, C2S: k, Cookie: foreign, UniqueID: make([]byte, 32)})
	var p ntpproto.Packet
	if err := p.UnmarshalBinary(exchange(t, s.addr, req)); err != nil || p.Stratum != 0 || p.ReferenceID != refidNTSN {
		t.Errorf("foreign cookie: want KoD NTSN, got stratum %d refid %#x (%v)", p.Stratum, p.ReferenceID, err)
	}
	if got := exchange(t, s.addr, request(0x23, time.Now())); len(got) != 48 {
		t.Errorf("plain request with nts.required off: %d-byte reply", len(got))
	}
	st := s.Status().NTS
	if st == nil || st.Handshakes != 2 || st.Authenticated != 2 || st.Failures["auth"] != 2 || st.Failures["cookie"] != 1 {
		t.Errorf("status %+v", st)
	}

	cfg.NTS.Required = true
	if err := s.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if got := exchange(t, s.addr, request(0x23, time.Now())); got != nil {
		t.Errorf("plain request answered with nts.required")
	}
}

// exchange sends req and returns the reply, nil after a short wait.
func exchange(t *testing.T, addr string, req []byte) []byte {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1500)
	n, err := c.Read(b)
	if err != nil {
		return nil
	}
	return b[:n]
}
