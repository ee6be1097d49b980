package dnsd

import (
	"context"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// transfer answers AXFR (and IXFR, with a full transfer as RFC 1995
// allows) for local zones to clients in allow_transfer, so a BIND
// secondary or a second admin host can replicate the internal zones.
func (s *Server) transfer(w dns.ResponseWriter, req *dns.Msg, client netip.Addr) {
	began := time.Now()
	s.mu.Lock()
	allowed, err := parsePrefixes(s.cfg.AllowTransfer)
	s.mu.Unlock()
	name := dns.CanonicalName(req.Question[0].Name)
	z := s.pipe.Load().zones.zones[name]
	if err != nil || !contains(allowed, client) || z == nil {
		m := reply(req, dns.RcodeRefused)
		if z == nil && contains(allowed, client) {
			m.Rcode = dns.RcodeNotAuth
		}
		s.stats.recordMsg(s, client, req, m, "refused", began)
		w.WriteMsg(m)
		return
	}
	ch := make(chan *dns.Envelope)
	tr := new(dns.Transfer)
	done := make(chan error, 1)
	go func() { done <- tr.Out(w, req, ch) }()
	// SOA, every record, SOA again; in chunks so big zones fit in messages.
	const chunk = 100
	rrs := append(append([]dns.RR{}, z.records...), z.soa)
	for i := 0; i < len(rrs); i += chunk {
		ch <- &dns.Envelope{RR: rrs[i:min(i+chunk, len(rrs))]}
	}
	close(ch)
	if err := <-done; err != nil {
		s.log.Warn("zone transfer failed", "zone", name, "client", client, "err", err)
	}
	s.log.Info("zone transferred", "zone", name, "client", client, "serial", z.soa.Serial, "records", len(z.records))
	s.stats.recordMsg(s, client, req, reply(req, dns.RcodeSuccess), "local", began)
}

// notifyChangedZones sends NOTIFY for every zone whose serial changed (or
// that is new) to the also_notify servers, in the background, retrying a
// few times as BIND does.
func (s *Server) notifyChangedZones(old, cur *zoneSet, targets []string) {
	if len(targets) == 0 {
		return
	}
	for name, z := range cur.zones {
		if prev, ok := old.zones[name]; ok && prev.soa.Serial == z.soa.Serial {
			continue
		}
		for _, t := range targets {
			addr, err := upstreamAddr(t)
			if err != nil {
				continue
			}
			go s.sendNotify(*s.bg.Load(), name, z.soa.Serial, addr)
		}
	}
}

func (s *Server) sendNotify(ctx context.Context, zoneName string, serial uint32, addr string) {
	m := new(dns.Msg)
	m.SetNotify(zoneName)
	m.Authoritative = true
	for attempt := range 3 {
		if _, err := exchangeOne(ctx, addr, m, 2*time.Second, false); err == nil {
			s.log.Info("NOTIFY sent", "zone", zoneName, "serial", serial, "to", addr)
			return
		} else if attempt == 2 || ctx.Err() != nil {
			s.log.Warn("NOTIFY not acknowledged", "zone", zoneName, "to", addr, "err", err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(attempt+1) * time.Second):
		}
	}
}
