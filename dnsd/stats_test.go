package dnsd

import (
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestQueryLogAndTopLists(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
	cfg := DefaultConfig()
	cfg.Forward = "only"
	s, err := New(cfg, Deps{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	a, b := netip.MustParseAddr("192.168.10.11"), netip.MustParseAddr("192.168.10.12")
	for i := range 5 {
		s.stats.record(s, a, "Admin.Lab.Internal.", dns.TypeA, dns.RcodeSuccess, "local", clk.now())
		if i < 2 {
			s.stats.record(s, b, "www.example.test.", dns.TypeAAAA, dns.RcodeNameError, "upstream", clk.now())
		}
	}
	recent := s.stats.recent(3)
	if len(recent) != 3 || recent[0].Client != "192.168.10.11" || recent[0].Type != "A" || recent[0].Source != "local" {
		t.Errorf("recent = %+v", recent)
	}
	clk.add(time.Minute) // the top lists show the last full minute
	s.stats.record(s, a, "x.", dns.TypeA, dns.RcodeSuccess, "cache", clk.now())
	st := s.Status()
	if len(st.TopClients) != 2 || st.TopClients[0] != (Count{Key: "192.168.10.11", Count: 5}) || st.TopClients[1] != (Count{Key: "192.168.10.12", Count: 2}) {
		t.Errorf("top clients = %+v", st.TopClients)
	}
	if len(st.TopNames) != 2 || st.TopNames[0] != (Count{Key: "admin.lab.internal.", Count: 5}) {
		t.Errorf("top names = %+v", st.TopNames)
	}
	if st.Sources["local"] != 5 || st.Rcodes["NXDOMAIN"] != 2 || st.Queries != 8 {
		t.Errorf("counters: sources %v rcodes %v queries %d", st.Sources, st.Rcodes, st.Queries)
	}
}
