package dnsd

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// hostileUpstream is a DNS server on loopback that answers each name with
// a reply a hostile or broken upstream would send. No real resolver sends
// these on purpose, so a stand-in is the only way to test them; the
// e2e tests run the same checks against named where named can be made to.
func hostileUpstream(t *testing.T, replies map[string]func(req *dns.Msg) *dns.Msg) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		if f, ok := replies[strings.ToLower(req.Question[0].Name)]; ok {
			w.WriteMsg(f(req))
			return
		}
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeNameError)
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// answer builds a reply to req with the given records (RFC 1035 lines).
func answer(t *testing.T, req *dns.Msg, ans []string, ns []string, extra []string) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	for _, set := range []struct {
		lines []string
		to    *[]dns.RR
	}{{ans, &m.Answer}, {ns, &m.Ns}, {extra, &m.Extra}} {
		for _, l := range set.lines {
			rr, err := dns.NewRR(l)
			if err != nil {
				t.Fatalf("%q: %v", l, err)
			}
			*set.to = append(*set.to, rr)
		}
	}
	return m
}

func TestScrubUpstreamReplies(t *testing.T) {
	up := hostileUpstream(t, map[string]func(*dns.Msg) *dns.Msg{
		"qr0.test.": func(req *dns.Msg) *dns.Msg {
			m := answer(t, req, []string{"qr0.test. 60 A 6.6.6.6"}, nil, nil)
			m.Response = false
			return m
		},
		"bigttl.test.": func(req *dns.Msg) *dns.Msg {
			return answer(t, req, []string{"bigttl.test. 2147483647 A 192.0.2.1"}, nil, nil)
		},
		"topbit.test.": func(req *dns.Msg) *dns.Msg {
			return answer(t, req, []string{"topbit.test. 4294967295 A 192.0.2.2"}, nil, nil)
		},
		"junk.test.": func(req *dns.Msg) *dns.Msg {
			return answer(t, req,
				[]string{"junk.test. 60 A 192.0.2.3", "www.bank.test. 60 A 6.6.6.6"},
				[]string{"test. 60 NS ns.test.", "bank.test. 60 NS ns.evil.test."},
				[]string{"ns.test. 60 A 192.0.2.53", "ns.evil.test. 60 A 6.6.6.6", "www.bank.test. 60 A 6.6.6.6"})
		},
		"into-local.test.": func(req *dns.Msg) *dns.Msg {
			return answer(t, req, []string{"into-local.test. 60 CNAME admin.lab.internal.", "admin.lab.internal. 60 A 6.6.6.6"}, nil, nil)
		},
		"x.corp.test.": func(req *dns.Msg) *dns.Msg {
			return answer(t, req, []string{"x.corp.test. 60 A 10.0.0.1", "y.other.test. 60 A 6.6.6.6"}, nil, nil)
		},
	})
	cfg := DefaultConfig()
	cfg.Forward = "only"
	cfg.Forwarders = []string{up}
	// qr0.test has a pool of its own: its broken answers mark that pool's
	// upstream dead, which must not fail the other cases.
	cfg.ForwardZones = []ForwardZone{{Name: "corp.test", Forwarders: []string{up}}, {Name: "qr0.test", Forwarders: []string{up}}}
	cfg.AllowQuery = []string{"127.0.0.0/8"}
	cfg.AllowRecursion = []string{"127.0.0.0/8"}
	cfg.Zones = []Zone{{Name: "lab.internal", Records: []string{"admin 300 A 192.168.10.10"}}}
	s, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	maxTTL := uint32(cfg.Cache.MaxTTL.D().Seconds())

	tests := []struct {
		name    string
		rcode   int
		want    []string // answer records, "NAME TYPE DATA", in order
		maxTTL  uint32   // every served TTL at most this
		allowed func(rr dns.RR) bool
	}{
		{name: "qr0.test.", rcode: dns.RcodeServerFailure},
		{name: "bigttl.test.", rcode: dns.RcodeSuccess, want: []string{"bigttl.test. A 192.0.2.1"}, maxTTL: maxTTL},
		{name: "topbit.test.", rcode: dns.RcodeSuccess, want: []string{"topbit.test. A 192.0.2.2"}, maxTTL: 0},
		{name: "junk.test.", rcode: dns.RcodeSuccess, want: []string{"junk.test. A 192.0.2.3"}, maxTTL: 60},
		{name: "into-local.test.", rcode: dns.RcodeSuccess, want: []string{"into-local.test. CNAME admin.lab.internal.", "admin.lab.internal. A 192.168.10.10"}, maxTTL: 300},
		{name: "x.corp.test.", rcode: dns.RcodeSuccess, want: []string{"x.corp.test. A 10.0.0.1"}, maxTTL: 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Twice: the first answer comes from upstream, the second
			// from the cache (fast path), which must hold the scrubbed
			// reply.
			for _, round := range []string{"upstream", "cache"} {
				out := handle(s, packQuery(t, tt.name, dns.TypeA, true), netip.MustParseAddr("127.0.0.1"))
				m := new(dns.Msg)
				if err := m.Unpack(out); err != nil {
					t.Fatalf("%s: unpack: %v", round, err)
				}
				if m.Rcode != tt.rcode {
					t.Fatalf("%s: rcode %s, want %s", round, dns.RcodeToString[m.Rcode], dns.RcodeToString[tt.rcode])
				}
				var got []string
				for _, rr := range m.Answer {
					got = append(got, rrKey(rr))
					if rr.Header().Ttl > tt.maxTTL {
						t.Errorf("%s: %s served with TTL %d, want at most %d", round, rrKey(rr), rr.Header().Ttl, tt.maxTTL)
					}
				}
				if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
					t.Errorf("%s: answer\n%s\nwant\n%s", round, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
				}
				for _, rr := range append(m.Ns, m.Extra...) {
					if strings.Contains(rr.String(), "6.6.6.6") || strings.Contains(rr.String(), "evil") {
						t.Errorf("%s: kept %s", round, rr)
					}
				}
			}
		})
	}
}

// rrKey is a record without its TTL and class: "NAME TYPE DATA".
func rrKey(rr dns.RR) string {
	f := strings.Fields(rr.String())
	if len(f) < 5 {
		return rr.String()
	}
	return strings.Join(append([]string{f[0], f[3]}, f[4:]...), " ")
}
