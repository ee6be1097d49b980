package dnsd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// defaultZoneTTL is the TTL of inline records written without one, as
// $TTL 3600 would set it.
const defaultZoneTTL = 3600

// zone is one local authoritative zone.
type zone struct {
	origin string // lower-case FQDN
	soa    *dns.SOA
	// names holds every owner name (lower case) with its RRsets; empty
	// non-terminals are present with no RRsets, so they answer NODATA.
	names map[string]map[uint16][]dns.RR
	// records is the zone in load order, SOA first, for AXFR.
	records []dns.RR
	// content identifies the records (not the serial), to tell a change.
	content string
}

// parseZone reads a zone's inline records and optional file, and refuses
// what named-checkzone refuses (checkZoneRecords). nameServer (this host's
// name) goes into a made-up SOA and NS when the zone has none.
func parseZone(z Zone, nameServer string) (*zone, error) {
	origin := dns.CanonicalName(z.Name)
	placed, err := readZoneRecords(z)
	if err != nil {
		return nil, err
	}
	if ps := checkZoneRecords(origin, placed); len(ps) > 0 {
		return nil, ps[0]
	}
	rrs := make([]dns.RR, len(placed))
	for i, p := range placed {
		rrs[i] = p.rr
	}
	return buildZone(origin, rrs, nameServer)
}

// parseRecord parses one RFC 1035 line relative to origin ("admin 300 A …").
func parseRecord(origin, line string) (dns.RR, error) {
	rrs, err := parseZoneText(strings.NewReader(line+"\n"), origin, "")
	if err != nil {
		return nil, err
	}
	if len(rrs) != 1 {
		return nil, fmt.Errorf("%q: want exactly one record, found %d", line, len(rrs))
	}
	return rrs[0], nil
}

func parseZoneText(r io.Reader, origin, file string) ([]dns.RR, error) {
	zp := dns.NewZoneParser(r, origin, file)
	zp.SetDefaultTTL(defaultZoneTTL)
	zp.SetIncludeAllowed(false)
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		return nil, err
	}
	return rrs, nil
}

// buildZone indexes records and makes sure the zone has an SOA (without one
// there is nothing to put in negative answers) and an apex NS (without one
// a secondary refuses the zone); missing ones are made, naming nameServer,
// or the apex when that is empty.
func buildZone(origin string, rrs []dns.RR, nameServer string) (*zone, error) {
	z := &zone{origin: origin, names: map[string]map[uint16][]dns.RR{}}
	var body []string
	for _, rr := range rrs {
		h := rr.Header()
		h.Name = dns.CanonicalName(h.Name)
		if !dns.IsSubDomain(origin, h.Name) {
			return nil, fmt.Errorf("%s is outside the zone %s", h.Name, origin)
		}
		if soa, ok := rr.(*dns.SOA); ok {
			if h.Name != origin {
				return nil, fmt.Errorf("SOA for %s is not at the zone apex %s", h.Name, origin)
			}
			if z.soa != nil {
				return nil, errors.New("more than one SOA")
			}
			z.soa = soa
			continue
		}
		z.add(rr)
		body = append(body, rr.String())
	}
	ns := origin
	if nameServer != "" {
		ns = dns.CanonicalName(nameServer)
	}
	if len(z.names[origin][dns.TypeNS]) == 0 {
		nsRR := &dns.NS{Hdr: dns.RR_Header{Name: origin, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: defaultZoneTTL}, Ns: ns}
		z.add(nsRR)
		rrs = append(rrs, nsRR)
		body = append(body, nsRR.String())
	}
	if z.soa == nil {
		z.soa = &dns.SOA{
			Hdr:     dns.RR_Header{Name: origin, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: defaultZoneTTL},
			Ns:      ns,
			Mbox:    "hostmaster." + origin,
			Serial:  uint32(time.Now().Unix()),
			Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 300,
		}
	}
	z.add(z.soa)
	sort.Strings(body)
	soaCopy := *z.soa
	soaCopy.Serial = 0
	z.content = soaCopy.String() + "\n" + strings.Join(body, "\n")
	z.records = []dns.RR{z.soa}
	for _, rr := range rrs {
		if _, isSOA := rr.(*dns.SOA); !isSOA {
			z.records = append(z.records, rr)
		}
	}
	return z, nil
}

func (z *zone) add(rr dns.RR) {
	name := rr.Header().Name
	if z.names[name] == nil {
		z.names[name] = map[uint16][]dns.RR{}
	}
	t := rr.Header().Rrtype
	z.names[name][t] = append(z.names[name][t], rr)
	// Empty non-terminals up to the apex exist too.
	for n := parent(name); n != "" && dns.IsSubDomain(z.origin, n) && n != z.origin; n = parent(n) {
		if z.names[n] == nil {
			z.names[n] = map[uint16][]dns.RR{}
		}
	}
}

// parent strips the first label: "a.b.c." → "b.c."; "." → "".
func parent(name string) string {
	if name == "." {
		return ""
	}
	i, end := dns.NextLabel(name, 0)
	if end {
		return "."
	}
	return name[i:]
}

// bumpSerial keeps a secondary's view monotonic: when the zone's content
// changed since prev, its serial must exceed prev's.
func (z *zone) bumpSerial(prev *zone) {
	if prev == nil {
		return
	}
	if z.content == prev.content {
		z.soa.Serial = prev.soa.Serial
		return
	}
	if int32(z.soa.Serial-prev.soa.Serial) <= 0 { // RFC 1982 serial arithmetic
		z.soa.Serial = prev.soa.Serial + 1
	}
}

// zoneSet is every local zone, looked up by the longest matching origin.
type zoneSet struct {
	zones map[string]*zone
	// ptr maps reverse names (in-addr.arpa / ip6.arpa) to PTR records
	// made from the A/AAAA records of zones with ptr: true.
	ptr map[string][]dns.RR
}

func newZoneSet(cfg []Zone, prev *zoneSet, nameServer string) (*zoneSet, error) {
	zs := &zoneSet{zones: map[string]*zone{}, ptr: map[string][]dns.RR{}}
	for i, zc := range cfg {
		z, err := parseZone(zc, nameServer)
		if err != nil {
			return nil, fmt.Errorf("zones[%d] %s: %w", i, zc.Name, err)
		}
		if prev != nil {
			z.bumpSerial(prev.zones[z.origin])
		}
		zs.zones[z.origin] = z
		if zc.PTR {
			zs.addPTRs(z)
		}
	}
	return zs, nil
}

func (zs *zoneSet) addPTRs(z *zone) {
	for name, sets := range z.names {
		for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
			for _, rr := range sets[t] {
				var ip string
				switch r := rr.(type) {
				case *dns.A:
					ip = r.A.String()
				case *dns.AAAA:
					ip = r.AAAA.String()
				}
				rev, err := dns.ReverseAddr(ip)
				if err != nil {
					continue
				}
				zs.ptr[rev] = append(zs.ptr[rev], &dns.PTR{
					Hdr: dns.RR_Header{Name: rev, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: rr.Header().Ttl},
					Ptr: name,
				})
			}
		}
	}
}

// find returns the zone that is authoritative for name, or nil.
func (zs *zoneSet) find(name string) *zone {
	for n := name; n != ""; n = parent(n) {
		if z, ok := zs.zones[n]; ok {
			return z
		}
	}
	return nil
}

// covers reports whether the local zones answer for name (the cache must
// not).
func (zs *zoneSet) covers(name string) bool {
	if _, ok := zs.ptr[name]; ok {
		return true
	}
	return zs.find(name) != nil
}

// maxCNAMEChain bounds CNAME chasing, inside zones and out.
const maxCNAMEChain = 8

// middleware answers names in local zones with AA. A CNAME that leads out
// of the local zones is followed through next, for clients that may recurse.
func (zs *zoneSet) middleware(next Handler) Handler {
	return HandlerFunc(func(ctx context.Context, q *Query) (*dns.Msg, error) {
		qs := q.Question()
		name := dns.CanonicalName(qs.Name)
		if qs.Qclass != dns.ClassINET && qs.Qclass != dns.ClassANY {
			return next.Resolve(ctx, q)
		}
		if ptrs, ok := zs.ptr[name]; ok && (qs.Qtype == dns.TypePTR || qs.Qtype == dns.TypeANY) {
			m := reply(q.Msg, dns.RcodeSuccess)
			m.Authoritative = true
			m.Answer = ptrs
			q.Source = "local"
			return m, nil
		}
		z := zs.find(name)
		if z == nil {
			return next.Resolve(ctx, q)
		}
		q.Source = "local"
		m := reply(q.Msg, dns.RcodeSuccess)
		m.Authoritative = true
		target := z.answer(m, name, qs.Qtype, 0)
		if target == "" {
			return m, nil
		}
		// The CNAME chain left the local zones: resolve the rest upstream,
		// as BIND does for clients allowed to recurse.
		if !q.Recursion {
			return m, nil
		}
		sub := &Query{Msg: new(dns.Msg), Client: q.Client, TCP: q.TCP, Recursion: true}
		sub.Msg.SetQuestion(target, qs.Qtype)
		sub.Msg.RecursionDesired = true
		if opt := q.Msg.IsEdns0(); opt != nil {
			sub.Msg.SetEdns0(opt.UDPSize(), opt.Do())
		}
		r, err := next.Resolve(ctx, sub)
		if err != nil || r == nil {
			return m, nil
		}
		m.Answer = append(m.Answer, r.Answer...)
		m.Rcode = r.Rcode
		if r.Rcode == dns.RcodeNameError || len(r.Answer) == 0 {
			m.Ns = r.Ns
		}
		return m, nil
	})
}

// answer fills m for name/qtype inside z. It returns a name outside every
// local zone when a CNAME leads there, so the caller can resolve it.
func (z *zone) answer(m *dns.Msg, name string, qtype uint16, depth int) (outside string) {
	sets, exists := z.names[name]
	if !exists {
		if w := z.wildcard(name); w != nil {
			sets, exists = synthesize(w, name), true
		}
	}
	if !exists {
		if len(m.Answer) == 0 {
			m.Rcode = dns.RcodeNameError
		}
		m.Ns = []dns.RR{z.negativeSOA()}
		return ""
	}
	if qtype == dns.TypeANY {
		for _, t := range sortedTypes(sets) {
			m.Answer = append(m.Answer, sets[t]...)
		}
		return ""
	}
	if rrs := sets[qtype]; len(rrs) > 0 {
		m.Answer = append(m.Answer, rrs...)
		return ""
	}
	if cn := sets[dns.TypeCNAME]; len(cn) > 0 && depth < maxCNAMEChain {
		m.Answer = append(m.Answer, cn[0])
		target := dns.CanonicalName(cn[0].(*dns.CNAME).Target)
		if dns.IsSubDomain(z.origin, target) {
			return z.answer(m, target, qtype, depth+1)
		}
		return target
	}
	m.Ns = []dns.RR{z.negativeSOA()} // NODATA
	return ""
}

// wildcard returns the RRsets of the wildcard that covers name (RFC 4592):
// "*." plus the closest existing ancestor.
func (z *zone) wildcard(name string) map[uint16][]dns.RR {
	for n := parent(name); n != "" && dns.IsSubDomain(z.origin, n); n = parent(n) {
		if _, ok := z.names[n]; ok || n == z.origin {
			return z.names["*."+n]
		}
	}
	return nil
}

// synthesize copies a wildcard's RRsets with the queried owner name.
func synthesize(w map[uint16][]dns.RR, name string) map[uint16][]dns.RR {
	out := make(map[uint16][]dns.RR, len(w))
	for t, rrs := range w {
		for _, rr := range rrs {
			c := dns.Copy(rr)
			c.Header().Name = name
			out[t] = append(out[t], c)
		}
	}
	return out
}

// negativeSOA is the SOA for the authority section of NXDOMAIN and NODATA
// answers; its TTL is the negative-caching TTL (RFC 2308).
func (z *zone) negativeSOA() dns.RR {
	soa := *z.soa
	soa.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl)
	return &soa
}

func sortedTypes(sets map[uint16][]dns.RR) []uint16 {
	ts := make([]uint16, 0, len(sets))
	for t := range sets {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts
}
