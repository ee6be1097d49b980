package dnsd

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func testZones(t *testing.T) *zoneSet {
	t.Helper()
	zs, err := newZoneSet([]Zone{{
		Name: "lab.internal",
		PTR:  true,
		Records: []string{
			"admin 300 A 192.168.10.10",
			"admin 300 AAAA fd00::10",
			"registry CNAME admin",
			"chain CNAME registry",
			"out CNAME www.example.test.",
			"@ MX 10 admin",
			"_https._tcp SRV 0 1 443 admin",
			"*.apps A 192.168.10.20",
			"a.b.deep TXT \"hello\"",
		},
	}}, nil, "admin.lab.internal")
	if err != nil {
		t.Fatal(err)
	}
	return zs
}

// upstreamStub answers everything with one A record, and counts calls.
type upstreamStub struct{ calls int }

func (u *upstreamStub) Resolve(ctx context.Context, q *Query) (*dns.Msg, error) {
	u.calls++
	m := reply(q.Msg, dns.RcodeSuccess)
	rr, _ := dns.NewRR(q.Question().Name + " 60 A 203.0.113.7")
	m.Answer = []dns.RR{rr}
	return m, nil
}

func ask(t *testing.T, h Handler, name string, qtype uint16, recursion bool) *dns.Msg {
	t.Helper()
	req := new(dns.Msg)
	req.SetQuestion(name, qtype)
	m, err := h.Resolve(context.Background(), &Query{Msg: req, Client: netip.MustParseAddr("127.0.0.1"), Recursion: recursion})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLocalZones(t *testing.T) {
	up := &upstreamStub{}
	h := testZones(t).middleware(up)
	cases := []struct {
		name     string
		qtype    uint16
		rcode    int
		answers  []string // substrings, one per answer RR, in order
		authSOA  bool
		upstream bool
	}{
		{"admin.lab.internal.", dns.TypeA, dns.RcodeSuccess, []string{"A\t192.168.10.10"}, false, false},
		{"ADMIN.Lab.Internal.", dns.TypeAAAA, dns.RcodeSuccess, []string{"AAAA\tfd00::10"}, false, false},
		{"chain.lab.internal.", dns.TypeA, dns.RcodeSuccess, []string{"CNAME\tregistry.lab.internal.", "CNAME\tadmin.lab.internal.", "A\t192.168.10.10"}, false, false},
		{"registry.lab.internal.", dns.TypeCNAME, dns.RcodeSuccess, []string{"CNAME\tadmin.lab.internal."}, false, false},
		{"lab.internal.", dns.TypeMX, dns.RcodeSuccess, []string{"MX\t10 admin.lab.internal."}, false, false},
		{"_https._tcp.lab.internal.", dns.TypeSRV, dns.RcodeSuccess, []string{"SRV\t0 1 443 admin.lab.internal."}, false, false},
		{"x.apps.lab.internal.", dns.TypeA, dns.RcodeSuccess, []string{"x.apps.lab.internal.\t3600\tIN\tA\t192.168.10.20"}, false, false},
		{"nope.lab.internal.", dns.TypeA, dns.RcodeNameError, nil, true, false},
		{"admin.lab.internal.", dns.TypeMX, dns.RcodeSuccess, nil, true, false}, // NODATA
		{"deep.lab.internal.", dns.TypeA, dns.RcodeSuccess, nil, true, false},   // empty non-terminal
		{"lab.internal.", dns.TypeNS, dns.RcodeSuccess, []string{"NS\tadmin.lab.internal."}, false, false},
		{"lab.internal.", dns.TypeSOA, dns.RcodeSuccess, []string{"SOA\tadmin.lab.internal. hostmaster.lab.internal."}, false, false},
		{"10.10.168.192.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, []string{"PTR\tadmin.lab.internal."}, false, false},
		{"out.lab.internal.", dns.TypeA, dns.RcodeSuccess, []string{"CNAME\twww.example.test.", "A\t203.0.113.7"}, false, true},
		{"www.example.test.", dns.TypeA, dns.RcodeSuccess, []string{"A\t203.0.113.7"}, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name+"/"+dns.TypeToString[tc.qtype], func(t *testing.T) {
			before := up.calls
			m := ask(t, h, tc.name, tc.qtype, true)
			if m.Rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode])
			}
			if len(m.Answer) != len(tc.answers) {
				t.Fatalf("answers %v, want %d", m.Answer, len(tc.answers))
			}
			for i, want := range tc.answers {
				if !strings.Contains(m.Answer[i].String(), want) {
					t.Errorf("answer %d = %q, want %q", i, m.Answer[i], want)
				}
			}
			if gotSOA := len(m.Ns) == 1 && m.Ns[0].Header().Rrtype == dns.TypeSOA; gotSOA != tc.authSOA {
				t.Errorf("authority %v, want SOA=%v", m.Ns, tc.authSOA)
			}
			if (up.calls > before) != tc.upstream {
				t.Errorf("upstream called: %v, want %v", up.calls > before, tc.upstream)
			}
			if !tc.upstream && !m.Authoritative {
				t.Error("local answer without AA")
			}
		})
	}
}

func TestLocalCNAMEOutNeedsRecursion(t *testing.T) {
	up := &upstreamStub{}
	m := ask(t, testZones(t).middleware(up), "out.lab.internal.", dns.TypeA, false)
	if up.calls != 0 || len(m.Answer) != 1 {
		t.Errorf("a client without recursion followed a CNAME upstream: %v (calls %d)", m.Answer, up.calls)
	}
}

func TestZoneSerialBumpsOnChange(t *testing.T) {
	cfg := []Zone{{Name: "lab.internal", Records: []string{"admin A 10.0.0.1"}}}
	a, err := newZoneSet(cfg, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	same, _ := newZoneSet(cfg, a, "")
	if same.zones["lab.internal."].soa.Serial != a.zones["lab.internal."].soa.Serial {
		t.Error("serial changed without a change")
	}
	cfg[0].Records = append(cfg[0].Records, "new A 10.0.0.2")
	b, _ := newZoneSet(cfg, same, "")
	if int32(b.zones["lab.internal."].soa.Serial-same.zones["lab.internal."].soa.Serial) <= 0 {
		t.Errorf("serial %d not above %d after a change", b.zones["lab.internal."].soa.Serial, same.zones["lab.internal."].soa.Serial)
	}
}

func TestZoneErrors(t *testing.T) {
	cases := []struct {
		records []string
		want    string
	}{
		{[]string{"admin A not-an-ip"}, "records[0]"},
		{[]string{"x.other.test. A 10.0.0.1"}, "outside the zone"},
		{[]string{"@ SOA a. b. 1 2 3 4 5", "@ SOA a. b. 2 2 3 4 5"}, "more than one SOA"},
	}
	for _, tc := range cases {
		_, err := newZoneSet([]Zone{{Name: "lab.internal", Records: tc.records}}, nil, "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want %q", tc.records, err, tc.want)
		}
	}
}
