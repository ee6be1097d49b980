package dnsd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Bounds on iteration, against loops and lame delegations.
const (
	maxReferrals  = 24
	maxIterDepth  = 4 // nested lookups of name servers without glue
	iterTryBudget = 800 * time.Millisecond
)

// iterator resolves from the root down, following referrals: what BIND
// does with `forward first` when every forwarder has failed, or with no
// forwarders at all. It sends queries to port 53 of the servers the hints
// and referrals name.
type iterator struct {
	roots []string // ip:53
	log   *slog.Logger
}

func newIterator(hintsFile string, log *slog.Logger) (*iterator, error) {
	text := ianaRootHints
	source := "built-in IANA root hints"
	if hintsFile != "" {
		b, err := os.ReadFile(hintsFile)
		if err != nil {
			return nil, fmt.Errorf("root_hints: %w", err)
		}
		text, source = string(b), hintsFile
	}
	rrs, err := parseZoneText(strings.NewReader(text), ".", source)
	if err != nil {
		return nil, fmt.Errorf("root_hints %s: %w", source, err)
	}
	it := &iterator{log: log}
	for _, rr := range rrs {
		if a := addrOfRR(rr); a.IsValid() {
			it.roots = append(it.roots, netip.AddrPortFrom(a, 53).String())
		}
	}
	if len(it.roots) == 0 {
		return nil, fmt.Errorf("root_hints %s: no A or AAAA records for the root servers", source)
	}
	return it, nil
}

func addrOfRR(rr dns.RR) netip.Addr {
	switch r := rr.(type) {
	case *dns.A:
		a, _ := netip.AddrFromSlice(r.A.To4())
		return a
	case *dns.AAAA:
		a, _ := netip.AddrFromSlice(r.AAAA)
		return a
	}
	return netip.Addr{}
}

// Resolve implements Handler.
func (it *iterator) Resolve(ctx context.Context, q *Query) (*dns.Msg, error) {
	qs := q.Question()
	m, err := it.resolve(ctx, dns.CanonicalName(qs.Name), qs.Qtype, 0)
	if err != nil {
		it.log.Debug("iteration failed", "name", qs.Name, "err", err)
		return reply(q.Msg, dns.RcodeServerFailure), nil
	}
	out := reply(q.Msg, m.Rcode)
	out.Answer, out.Ns = m.Answer, nil
	if len(m.Answer) == 0 || m.Rcode == dns.RcodeNameError {
		for _, rr := range m.Ns {
			if rr.Header().Rrtype == dns.TypeSOA {
				out.Ns = append(out.Ns, rr)
			}
		}
	}
	return out, nil
}

var errLame = errors.New("no server gave an answer or a referral")

func (it *iterator) resolve(ctx context.Context, name string, qtype uint16, depth int) (*dns.Msg, error) {
	if depth > maxIterDepth {
		return nil, errors.New("too many nested name server lookups")
	}
	servers, cut := it.roots, "."
	for range maxReferrals {
		m, err := it.ask(ctx, servers, name, qtype)
		if err != nil {
			return nil, err
		}
		if m.Rcode == dns.RcodeNameError || len(m.Answer) > 0 {
			return it.followCNAME(ctx, m, name, qtype, depth)
		}
		// A referral: NS records for a zone below the current cut.
		var nsNames []string
		next := ""
		for _, rr := range m.Ns {
			ns, ok := rr.(*dns.NS)
			if !ok {
				continue
			}
			owner := dns.CanonicalName(ns.Hdr.Name)
			if owner == cut || !dns.IsSubDomain(cut, owner) || !dns.IsSubDomain(owner, name) {
				continue
			}
			next = owner
			nsNames = append(nsNames, dns.CanonicalName(ns.Ns))
		}
		if next == "" {
			return m, nil // NODATA (or lame): nothing further to follow
		}
		addrs := glue(m, nsNames)
		for _, ns := range nsNames {
			if len(addrs) > 0 {
				break
			}
			if r, err := it.resolve(ctx, ns, dns.TypeA, depth+1); err == nil {
				for _, rr := range r.Answer {
					if a := addrOfRR(rr); a.IsValid() {
						addrs = append(addrs, netip.AddrPortFrom(a, 53).String())
					}
				}
			}
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("no address for the name servers of %s", next)
		}
		servers, cut = addrs, next
	}
	return nil, errors.New("too many referrals")
}

// followCNAME completes an answer that ends in a CNAME to elsewhere.
func (it *iterator) followCNAME(ctx context.Context, m *dns.Msg, name string, qtype uint16, depth int) (*dns.Msg, error) {
	target := name
	for range maxCNAMEChain {
		moved := false
		for _, rr := range m.Answer {
			if cn, ok := rr.(*dns.CNAME); ok && dns.CanonicalName(cn.Hdr.Name) == target {
				target, moved = dns.CanonicalName(cn.Target), true
			}
		}
		if !moved {
			break
		}
	}
	if target == name || qtype == dns.TypeCNAME {
		return m, nil
	}
	for _, rr := range m.Answer {
		if dns.CanonicalName(rr.Header().Name) == target && rr.Header().Rrtype == qtype {
			return m, nil
		}
	}
	rest, err := it.resolve(ctx, target, qtype, depth+1)
	if err != nil {
		return nil, err
	}
	out := m.Copy()
	out.Answer = append(out.Answer, rest.Answer...)
	out.Rcode = rest.Rcode
	out.Ns = rest.Ns
	return out, nil
}

// glue collects addresses for nsNames from the additional section.
func glue(m *dns.Msg, nsNames []string) []string {
	var out []string
	for _, rr := range m.Extra {
		owner := dns.CanonicalName(rr.Header().Name)
		for _, ns := range nsNames {
			if owner == ns {
				if a := addrOfRR(rr); a.IsValid() {
					out = append(out, netip.AddrPortFrom(a, 53).String())
				}
			}
		}
	}
	return out
}

// ask sends a non-recursive query to the servers in turn until one answers.
func (it *iterator) ask(ctx context.Context, servers []string, name string, qtype uint16) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.RecursionDesired = false
	var lastErr error = errLame
	for _, s := range servers {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		m, err := exchangeOne(ctx, s, q, iterTryBudget, false)
		if err != nil {
			lastErr = err
			continue
		}
		if m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError {
			lastErr = fmt.Errorf("%s answered %s", s, dns.RcodeToString[m.Rcode])
			continue
		}
		return m, nil
	}
	return nil, lastErr
}

// ianaRootHints is the root servers' addresses as IANA publishes them in
// named.root (IPv4 and IPv6).
const ianaRootHints = `
.                        3600000  NS  a.root-servers.net.
.                        3600000  NS  b.root-servers.net.
.                        3600000  NS  c.root-servers.net.
.                        3600000  NS  d.root-servers.net.
.                        3600000  NS  e.root-servers.net.
.                        3600000  NS  f.root-servers.net.
.                        3600000  NS  g.root-servers.net.
.                        3600000  NS  h.root-servers.net.
.                        3600000  NS  i.root-servers.net.
.                        3600000  NS  j.root-servers.net.
.                        3600000  NS  k.root-servers.net.
.                        3600000  NS  l.root-servers.net.
.                        3600000  NS  m.root-servers.net.
a.root-servers.net.      3600000  A     198.41.0.4
a.root-servers.net.      3600000  AAAA  2001:503:ba3e::2:30
b.root-servers.net.      3600000  A     170.247.170.2
b.root-servers.net.      3600000  AAAA  2801:1b8:10::b
c.root-servers.net.      3600000  A     192.33.4.12
c.root-servers.net.      3600000  AAAA  2001:500:2::c
d.root-servers.net.      3600000  A     199.7.91.13
d.root-servers.net.      3600000  AAAA  2001:500:2d::d
e.root-servers.net.      3600000  A     192.203.230.10
e.root-servers.net.      3600000  AAAA  2001:500:a8::e
f.root-servers.net.      3600000  A     192.5.5.241
f.root-servers.net.      3600000  AAAA  2001:500:2f::f
g.root-servers.net.      3600000  A     192.112.36.4
g.root-servers.net.      3600000  AAAA  2001:500:12::d0d
h.root-servers.net.      3600000  A     198.97.190.53
h.root-servers.net.      3600000  AAAA  2001:500:1::53
i.root-servers.net.      3600000  A     192.36.148.17
i.root-servers.net.      3600000  AAAA  2001:7fe::53
j.root-servers.net.      3600000  A     192.58.128.30
j.root-servers.net.      3600000  AAAA  2001:503:c27::2:30
k.root-servers.net.      3600000  A     193.0.14.129
k.root-servers.net.      3600000  AAAA  2001:7fd::1
l.root-servers.net.      3600000  A     199.7.83.42
l.root-servers.net.      3600000  AAAA  2001:500:9f::42
m.root-servers.net.      3600000  A     202.12.27.33
m.root-servers.net.      3600000  AAAA  2001:dc3::35
`
