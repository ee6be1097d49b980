package dnsd

import (
	"context"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// testServer has the local zones of testZones, a cache, and no upstream
// (forward only, no forwarders): nothing leaves the process.
func testServer(t testing.TB) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Forward = "only"
	cfg.AllowQuery = []string{"127.0.0.0/8", "10.0.0.0/8"}
	cfg.AllowRecursion = []string{"127.0.0.0/8"}
	cfg.Zones = []Zone{{Name: "lab.internal", PTR: true, Records: []string{"admin 300 A 192.168.10.10", "registry CNAME admin", "*.apps A 10.1.1.1"}}}
	s, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func packQuery(t testing.TB, name string, qtype uint16, edns bool) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if edns {
		m.SetEdns0(4096, true)
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// handle is the UDP request path without a socket: fast path, else the
// full parse, pipeline and pack.
func handle(s *Server, pkt []byte, client netip.Addr) []byte {
	if out := s.fastAnswer(pkt, client); out != nil {
		return out
	}
	req := new(dns.Msg)
	if err := req.Unpack(pkt); err != nil {
		return formErr(pkt)
	}
	resp := s.serve(context.Background(), req, client, false)
	if resp == nil {
		return nil
	}
	out, err := s.pack(req, resp, false)
	if err != nil {
		return nil
	}
	return out
}

func TestServeACLAndBasics(t *testing.T) {
	s := testServer(t)
	cases := []struct {
		client string
		name   string
		qtype  uint16
		rcode  int
	}{
		{"127.0.0.1", "admin.lab.internal.", dns.TypeA, dns.RcodeSuccess},
		{"10.0.0.5", "admin.lab.internal.", dns.TypeA, dns.RcodeSuccess},      // query, no recursion: local ok
		{"10.0.0.5", "www.example.test.", dns.TypeA, dns.RcodeRefused},        // no recursion
		{"192.0.2.1", "admin.lab.internal.", dns.TypeA, dns.RcodeRefused},     // outside allow_query
		{"127.0.0.1", "www.example.test.", dns.TypeA, dns.RcodeServerFailure}, // forward only, no forwarders
	}
	for _, tc := range cases {
		out := handle(s, packQuery(t, tc.name, tc.qtype, true), netip.MustParseAddr(tc.client))
		m := new(dns.Msg)
		if err := m.Unpack(out); err != nil {
			t.Fatalf("%s from %s: unpack reply: %v", tc.name, tc.client, err)
		}
		if m.Rcode != tc.rcode {
			t.Errorf("%s from %s: %s, want %s", tc.name, tc.client, dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode])
		}
		if opt := m.IsEdns0(); opt == nil || opt.UDPSize() != ednsSize || !opt.Do() {
			t.Errorf("%s: EDNS not echoed with size %d and DO: %v", tc.name, ednsSize, opt)
		}
	}
}

func TestFastPathMatchesSlowPath(t *testing.T) {
	s := testServer(t)
	client := netip.MustParseAddr("127.0.0.1")
	// Put an upstream answer in the cache as the pipeline would.
	up := new(dns.Msg)
	up.SetQuestion("www.example.test.", dns.TypeA)
	up.Response, up.RecursionAvailable = true, true
	rr, _ := dns.NewRR("www.example.test. 300 IN A 192.0.2.1")
	up.Answer = []dns.RR{rr}
	for _, edns := range []bool{false, true} {
		key := cacheKey{name: "www.example.test.", qtype: dns.TypeA, qclass: dns.ClassINET, do: edns}
		s.cache.set(key, up)
		q := packQuery(t, "WWW.Example.TEST.", dns.TypeA, edns)
		fast := s.fastAnswer(q, client)
		if fast == nil {
			t.Fatalf("edns=%v: fast path declined a cached name", edns)
		}
		m := new(dns.Msg)
		if err := m.Unpack(fast); err != nil {
			t.Fatalf("fast reply does not parse: %v", err)
		}
		req := new(dns.Msg)
		req.Unpack(q)
		if m.Id != req.Id || m.Question[0].Name != "WWW.Example.TEST." || !m.RecursionDesired || !m.Response {
			t.Errorf("edns=%v: header/question not the client's: %v", edns, m)
		}
		if len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.1" {
			t.Errorf("answer %v", m.Answer)
		}
		if (m.IsEdns0() != nil) != edns {
			t.Errorf("edns=%v: OPT present=%v", edns, m.IsEdns0() != nil)
		}
	}
	// Local zone names never come from the cache.
	s.cache.set(cacheKey{name: "admin.lab.internal.", qtype: dns.TypeA, qclass: dns.ClassINET}, up)
	if s.fastAnswer(packQuery(t, "admin.lab.internal.", dns.TypeA, false), client) != nil {
		t.Error("fast path answered a local-zone name from the cache")
	}
	// Nor for clients that may not recurse.
	if s.fastAnswer(packQuery(t, "www.example.test.", dns.TypeA, false), netip.MustParseAddr("10.0.0.5")) != nil {
		t.Error("fast path answered a client outside allow_recursion")
	}
}

// FuzzServe feeds arbitrary packets to the request path: no panic, no
// hang, and whatever it sends back parses.
func FuzzServe(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
		edns  bool
	}{
		{"admin.lab.internal.", dns.TypeA, false},
		{"registry.lab.internal.", dns.TypeAAAA, true},
		{"x.apps.lab.internal.", dns.TypeANY, true},
		{"10.10.168.192.in-addr.arpa.", dns.TypePTR, false},
		{"lab.internal.", dns.TypeAXFR, false},
		{"www.example.test.", dns.TypeTXT, true},
		{".", dns.TypeNS, false},
	} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		if q.edns {
			m.SetEdns0(1232, true)
		}
		b, _ := m.Pack()
		f.Add(b, uint8(1))
	}
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0xc0, 0x0c, 0, 1, 0, 1}, uint8(1)) // pointer loop in the question
	f.Add(make([]byte, 12), uint8(2))
	s := testServer(f)
	// A cache entry, so the fast path has something to serve.
	up := new(dns.Msg)
	up.SetQuestion("www.example.test.", dns.TypeA)
	up.Response = true
	rr, _ := dns.NewRR("www.example.test. 300 IN A 192.0.2.1")
	up.Answer = []dns.RR{rr}
	s.cache.set(cacheKey{name: "www.example.test.", qtype: dns.TypeA, qclass: dns.ClassINET}, up)
	clients := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("192.0.2.1")}
	f.Fuzz(func(t *testing.T, pkt []byte, who uint8) {
		out := handle(s, pkt, clients[int(who)%len(clients)])
		if out == nil {
			return
		}
		m := new(dns.Msg)
		if err := m.Unpack(out); err != nil && len(out) > 12 {
			t.Fatalf("reply does not parse: %v", err)
		}
		if len(out) > 65535 {
			t.Fatalf("reply of %d bytes", len(out))
		}
	})
}
