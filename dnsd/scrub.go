package dnsd

import (
	"context"
	"strings"

	"github.com/miekg/dns"
)

// scrubber cleans what upstreams send before it is cached or served, as
// Unbound's scrubber does:
//   - TTLs: one with the top bit set counts as 0 (RFC 2181 §8), and none is
//     served above max_ttl;
//   - the answer keeps only the question's own RRsets and the CNAME chain
//     that leads from it; the authority and additional sections keep only
//     the SOA, NS and glue for the names on that chain; all of it inside the
//     bailiwick of whoever was asked (the forward zone, or the root for the
//     forwarders) (RFC 5452 §6);
//   - nothing an upstream says about a name inside a local zone is passed
//     on: a chain that leads into a local zone is finished from the zone,
//     and one that leaves the bailiwick is chased through the pipeline.
type scrubber struct {
	zones  *zoneSet
	fwd    *forwarder
	maxTTL uint32 // seconds; 0 = no limit
}

// middleware scrubs upstream replies; answers from local zones and errors
// pass as they are.
func (sc scrubber) middleware(next Handler) Handler {
	var self Handler
	self = HandlerFunc(func(ctx context.Context, q *Query) (*dns.Msg, error) {
		m, err := next.Resolve(ctx, q)
		if err != nil || m == nil || q.Source != "upstream" {
			return m, err
		}
		return sc.scrub(ctx, q, m, sc.zones.middleware(self)), nil
	})
	return self
}

// scrub cleans m, the upstream's reply to q; chase resolves what is left
// of a chain that ends in a local zone or outside the bailiwick.
func (sc scrubber) scrub(ctx context.Context, q *Query, m *dns.Msg, chase Handler) *dns.Msg {
	qs := q.Question()
	qname := dns.CanonicalName(qs.Name)
	bailiwick := sc.fwd.bailiwick(qname)
	answer, last, rest := sc.chain(m.Answer, qname, qs.Qtype, bailiwick)
	m.Answer = answer
	m.Ns = sc.authority(m.Ns, last, bailiwick)
	m.Extra = sc.glue(m.Extra, m.Ns, bailiwick)
	if rest != "" {
		sc.finishChain(ctx, q, m, rest, chase)
	}
	sc.clampTTLs(m)
	return m
}

// chain returns the answer records that belong to qname's answer: its own
// RRsets and the CNAMEs (and DNAMEs above them) that lead on, each with its
// signatures. last is the chain's last name inside the bailiwick; rest is
// set when the chain goes on to a name the upstream must not answer for (a
// local zone, or outside the bailiwick).
func (sc scrubber) chain(rrs []dns.RR, qname string, qtype uint16, bailiwick string) (kept []dns.RR, last, rest string) {
	cur := qname
	last = qname
	for range maxCNAMEChain + 1 {
		if cur != qname && (sc.zones.covers(cur) || !dns.IsSubDomain(bailiwick, cur)) {
			return kept, last, cur
		}
		last = cur
		next := ""
		for _, rr := range rrs {
			h := rr.Header()
			owner := dns.CanonicalName(h.Name)
			switch {
			case h.Rrtype == dns.TypeDNAME && dns.IsSubDomain(owner, cur) && owner != cur && dns.IsSubDomain(bailiwick, owner):
				kept = appendOnce(kept, rr)
			case owner != cur:
			case h.Rrtype == qtype || qtype == dns.TypeANY || h.Rrtype == dns.TypeRRSIG:
				kept = append(kept, rr)
			case h.Rrtype == dns.TypeCNAME && next == "":
				kept = append(kept, rr)
				next = dns.CanonicalName(rr.(*dns.CNAME).Target)
			}
		}
		if next == "" || strings.EqualFold(next, cur) {
			return kept, last, ""
		}
		cur = next
	}
	return kept, last, ""
}

func appendOnce(rrs []dns.RR, rr dns.RR) []dns.RR {
	for _, have := range rrs {
		if have == rr {
			return rrs
		}
	}
	return append(rrs, rr)
}

// authority keeps the SOA, NS and DNSSEC records of the zones above name
// inside the bailiwick and outside the local zones.
func (sc scrubber) authority(rrs []dns.RR, name, bailiwick string) []dns.RR {
	var kept []dns.RR
	for _, rr := range rrs {
		h := rr.Header()
		owner := dns.CanonicalName(h.Name)
		switch h.Rrtype {
		case dns.TypeSOA, dns.TypeNS, dns.TypeDS, dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3:
		default:
			continue
		}
		nsecProof := h.Rrtype == dns.TypeNSEC || h.Rrtype == dns.TypeNSEC3 || h.Rrtype == dns.TypeRRSIG
		if !dns.IsSubDomain(bailiwick, owner) || sc.zones.covers(owner) {
			continue
		}
		if !nsecProof && !dns.IsSubDomain(owner, name) {
			continue
		}
		kept = append(kept, rr)
	}
	return kept
}

// glue keeps the OPT record and the addresses of the name servers the
// authority section names, inside the bailiwick and outside local zones.
func (sc scrubber) glue(rrs, authority []dns.RR, bailiwick string) []dns.RR {
	servers := map[string]bool{}
	for _, rr := range authority {
		if ns, ok := rr.(*dns.NS); ok {
			servers[dns.CanonicalName(ns.Ns)] = true
		}
	}
	var kept []dns.RR
	for _, rr := range rrs {
		h := rr.Header()
		owner := dns.CanonicalName(h.Name)
		switch {
		case h.Rrtype == dns.TypeOPT:
			kept = append(kept, rr)
		case (h.Rrtype == dns.TypeA || h.Rrtype == dns.TypeAAAA) && servers[owner] &&
			dns.IsSubDomain(bailiwick, owner) && !sc.zones.covers(owner):
			kept = append(kept, rr)
		}
	}
	return kept
}

// finishChain resolves the chain's rest name through chase (local zones
// first, then upstream, scrubbed in turn) and puts its answer after the
// chain, as a resolver that followed the CNAME itself would.
func (sc scrubber) finishChain(ctx context.Context, q *Query, m *dns.Msg, rest string, chase Handler) {
	if q.chased >= maxCNAMEChain {
		m.Rcode = dns.RcodeServerFailure
		return
	}
	sub := &Query{Msg: new(dns.Msg), Client: q.Client, TCP: q.TCP, Recursion: true, chased: q.chased + 1}
	sub.Msg.SetQuestion(rest, q.Question().Qtype)
	if opt := q.Msg.IsEdns0(); opt != nil {
		sub.Msg.SetEdns0(opt.UDPSize(), opt.Do())
	}
	r, err := chase.Resolve(ctx, sub)
	if err != nil || r == nil {
		m.Rcode = dns.RcodeServerFailure
		return
	}
	m.Answer = append(m.Answer, r.Answer...)
	m.Ns = r.Ns
	m.Rcode = r.Rcode
}

// clampTTLs applies RFC 2181 §8 and max_ttl to every record.
func (sc scrubber) clampTTLs(m *dns.Msg) {
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			if h.Rrtype == dns.TypeOPT {
				continue
			}
			if h.Ttl&0x80000000 != 0 {
				h.Ttl = 0
			}
			if sc.maxTTL > 0 && h.Ttl > sc.maxTTL {
				h.Ttl = sc.maxTTL
			}
		}
	}
}
