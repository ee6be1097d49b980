package dnsd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/airgapd/airgapd/api"
)

// Timing of the forwarder pool. A query gets queryBudget in all; each try
// waits a few smoothed RTTs (within [minTry, maxTry]) before failing over,
// so a dead forwarder costs a known upstream at most maxTry, and nothing
// once it is marked dead.
const (
	queryBudget   = 1500 * time.Millisecond
	minTry        = 150 * time.Millisecond
	maxTry        = 800 * time.Millisecond
	initialSRTT   = 50 * time.Millisecond
	deadAfter     = 2 // consecutive failures
	probeInterval = time.Second
)

// errNoUpstream means every upstream failed or is marked dead.
var errNoUpstream = errors.New("no upstream answered")

// upstream is one forwarder with its health.
type upstream struct {
	addr string // ip:port

	mu       sync.Mutex
	srtt     time.Duration // smoothed RTT (RFC 6298 style, alpha 1/8)
	failures int           // consecutive
	dead     bool

	queries, errors atomic.Int64

	udp *upPool // connected sockets, shared by every query to addr
}

func (u *upstream) tryTimeout() time.Duration {
	u.mu.Lock()
	defer u.mu.Unlock()
	return clamp(4*u.srtt, minTry, maxTry)
}

func (u *upstream) success(rtt time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.srtt += (rtt - u.srtt) / 8
	u.failures = 0
	u.dead = false
}

func (u *upstream) failure() (nowDead bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.failures++
	// A failure weighs on the RTT too, so a flaky server sinks in the order.
	u.srtt += (maxTry - u.srtt) / 8
	if u.failures >= deadAfter && !u.dead {
		u.dead = true
		return true
	}
	return false
}

// UpstreamStatus is one forwarder's health for the status page.
type UpstreamStatus = api.DNSUpstreamStatus

func (u *upstream) status(zone string) UpstreamStatus {
	u.mu.Lock()
	defer u.mu.Unlock()
	return UpstreamStatus{Address: u.addr, Zone: zone, Healthy: !u.dead, SRTTms: float64(u.srtt) / 1e6,
		Queries: u.queries.Load(), Errors: u.errors.Load()}
}

// pool is a health-ranked set of forwarders: the fastest healthy one first,
// failover on timeout, SERVFAIL or REFUSED, dead ones re-probed in the
// background.
type pool struct {
	zone string
	ups  []*upstream
	log  *slog.Logger
}

// newPool builds a pool; upstreams that prev already knew keep their
// learned health across a reload.
func newPool(zone string, servers []string, log *slog.Logger, prev *pool) (*pool, error) {
	p := &pool{zone: zone, log: log}
	for _, s := range servers {
		addr, err := upstreamAddr(s)
		if err != nil {
			return nil, err
		}
		u := &upstream{addr: addr, srtt: initialSRTT, udp: newUpPool(addr)}
		if prev != nil {
			for _, old := range prev.ups {
				if old.addr == addr {
					u = old
				}
			}
		}
		p.ups = append(p.ups, u)
	}
	return p, nil
}

// upstreamAddr turns "IP" or "IP:port" into ip:port.
func upstreamAddr(s string) (string, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a, 53).String(), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return "", fmt.Errorf("%q is not an upstream address: %w", s, err)
	}
	return ap.String(), nil
}

// ranked returns healthy upstreams by RTT; dead ones are skipped.
func (p *pool) ranked() []*upstream {
	type scored struct {
		u    *upstream
		srtt time.Duration
	}
	var live []scored
	for _, u := range p.ups {
		u.mu.Lock()
		if !u.dead {
			live = append(live, scored{u, u.srtt})
		}
		u.mu.Unlock()
	}
	slices.SortStableFunc(live, func(a, b scored) int { return int(a.srtt - b.srtt) })
	out := make([]*upstream, len(live))
	for i, s := range live {
		out[i] = s.u
	}
	return out
}

// exchange sends req to the best upstreams in turn until one answers well
// or the budget is spent.
func (p *pool) exchange(ctx context.Context, req *dns.Msg, tcp bool) (*dns.Msg, error) {
	// The budget bounds each try's timeout rather than living in a
	// context of its own: a context and its timer per forwarded query were
	// a measurable share of the miss path (bench/dns/profile.sh).
	deadline := time.Now().Add(queryBudget)
	req = req.Copy()
	req.RecursionDesired = true // forwarders recurse for us
	var last *dns.Msg
	for _, u := range p.ranked() {
		timeout := min(u.tryTimeout(), time.Until(deadline))
		if ctx.Err() != nil || timeout <= 0 {
			break
		}
		u.queries.Add(1)
		began := time.Now()
		m, err := u.exchange(ctx, req, timeout, deadline, tcp)
		if err == nil && m.Rcode != dns.RcodeServerFailure && m.Rcode != dns.RcodeRefused {
			u.success(time.Since(began))
			return m, nil
		}
		u.errors.Add(1)
		if err == nil {
			last = m
		}
		if u.failure() {
			p.log.Warn("forwarder marked dead; probing it in the background", "zone", p.zone, "upstream", u.addr, "err", err)
		}
	}
	if last != nil {
		return last, nil
	}
	return nil, errNoUpstream
}

// probe asks each dead upstream something cheap; any well-formed reply
// brings it back.
func (p *pool) probe(ctx context.Context) {
	for _, u := range p.ups {
		u.mu.Lock()
		dead := u.dead
		u.mu.Unlock()
		if !dead {
			continue
		}
		q := new(dns.Msg)
		q.SetQuestion(".", dns.TypeNS) // SetQuestion sets RD
		began := time.Now()
		if _, err := exchangeOne(ctx, u.addr, q, maxTry, false); err == nil {
			u.success(time.Since(began))
			p.log.Info("forwarder is back", "zone", p.zone, "upstream", u.addr)
		}
	}
}

// exchange sends one query to u over its pooled UDP sockets (over TCP when
// tcp, or when the answer is truncated), waiting timeout for the answer and
// never past the query's deadline. req is the caller's own copy: its EDNS
// size is set here.
func (u *upstream) exchange(ctx context.Context, req *dns.Msg, timeout time.Duration, deadline time.Time, tcp bool) (*dns.Msg, error) {
	if tcp || u.udp == nil {
		return exchangeOne(ctx, u.addr, req, timeout, tcp)
	}
	if opt := req.IsEdns0(); opt != nil {
		opt.SetUDPSize(ednsSize)
	} else {
		req.SetEdns0(ednsSize, false)
	}
	pkt, err := req.Pack()
	if err != nil {
		return nil, fmt.Errorf("pack query for %s: %w", u.addr, err)
	}
	b, err := u.udp.exchange(ctx, pkt, timeout)
	if err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return nil, fmt.Errorf("answer from %s: %w", u.addr, err)
	}
	if !m.Response || len(m.Question) != 1 || !strings.EqualFold(m.Question[0].Name, req.Question[0].Name) ||
		m.Question[0].Qtype != req.Question[0].Qtype {
		return nil, fmt.Errorf("%s answered another question", u.addr)
	}
	if m.Truncated { // the TCP retry stays within the query's budget too
		return exchangeOne(ctx, u.addr, req, min(timeout, time.Until(deadline)), true)
	}
	return m, nil
}

// exchangeOne sends one query over UDP (retrying over TCP when the answer
// is truncated) with a fresh random ID and a fresh socket, so the source
// port is random too, and checks the answer matches the question.
func exchangeOne(ctx context.Context, addr string, req *dns.Msg, timeout time.Duration, tcp bool) (*dns.Msg, error) {
	q := req.Copy()
	q.Id = dns.Id()
	if opt := q.IsEdns0(); opt != nil {
		opt.SetUDPSize(ednsSize)
	} else {
		q.SetEdns0(ednsSize, false)
	}
	netw := "udp"
	if tcp {
		netw = "tcp"
	}
	for {
		tctx, cancel := context.WithTimeout(ctx, timeout)
		c := &dns.Client{Net: netw, UDPSize: ednsSize, Timeout: timeout}
		m, _, err := c.ExchangeContext(tctx, q, addr)
		cancel()
		if err != nil {
			return nil, err
		}
		if !m.Response {
			// A query, not an answer: never take it as one (a reflection
			// or a forgery).
			return nil, fmt.Errorf("%s sent a message that is not a response", addr)
		}
		if len(m.Question) != 1 || !strings.EqualFold(m.Question[0].Name, q.Question[0].Name) ||
			m.Question[0].Qtype != q.Question[0].Qtype {
			return nil, fmt.Errorf("%s answered another question", addr)
		}
		if m.Truncated && netw == "udp" {
			netw = "tcp"
			continue
		}
		return m, nil
	}
}

// forwarder is the upstream stage: forward zones by longest suffix, then
// the default pool; with forward: first, iteration when the pool fails.
type forwarder struct {
	zones   map[string]*pool // forward_zones by lower-case FQDN
	pool    *pool            // forwarders; may have no upstreams
	only    bool             // forward: only
	iterate Handler          // from root hints; nil when not configured
}

func newForwarder(c Config, log *slog.Logger, iterate Handler, prev *forwarder) (*forwarder, error) {
	f := &forwarder{zones: map[string]*pool{}, only: c.Forward == "only", iterate: iterate}
	var prevPool *pool
	if prev != nil {
		prevPool = prev.pool
	}
	var err error
	if f.pool, err = newPool("", c.Forwarders, log, prevPool); err != nil {
		return nil, err
	}
	for _, fz := range c.ForwardZones {
		name := dns.CanonicalName(fz.Name)
		prevPool = nil
		if prev != nil {
			prevPool = prev.zones[name]
		}
		if f.zones[name], err = newPool(name, fz.Forwarders, log, prevPool); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func (f *forwarder) pools() []*pool {
	ps := []*pool{f.pool}
	for _, p := range f.zones {
		ps = append(ps, p)
	}
	return ps
}

// Resolve implements Handler: the last stage of the pipeline.
func (f *forwarder) Resolve(ctx context.Context, q *Query) (*dns.Msg, error) {
	name := dns.CanonicalName(q.Question().Name)
	for n := name; n != ""; n = parent(n) {
		if zp, ok := f.zones[n]; ok {
			q.Source = "upstream"
			m, err := zp.exchange(ctx, q.Msg, q.TCP)
			return f.finish(q, m, err)
		}
	}
	if len(f.pool.ups) > 0 {
		m, err := f.pool.exchange(ctx, q.Msg, q.TCP)
		if (err == nil && m.Rcode != dns.RcodeServerFailure && m.Rcode != dns.RcodeRefused) || f.only || f.iterate == nil {
			q.Source = "upstream"
			return f.finish(q, m, err)
		}
	}
	if f.only || f.iterate == nil {
		q.Source = "error"
		return reply(q.Msg, dns.RcodeServerFailure), nil
	}
	q.Source = "upstream"
	return f.iterate.Resolve(ctx, q)
}

// finish turns an upstream reply into the reply for the client.
func (f *forwarder) finish(q *Query, m *dns.Msg, err error) (*dns.Msg, error) {
	if err != nil || m == nil {
		q.Source = "error"
		return reply(q.Msg, dns.RcodeServerFailure), nil
	}
	m.Id = q.Msg.Id
	m.Question = q.Msg.Question
	m.RecursionAvailable = true
	m.Authoritative = false
	return m, nil
}

// bailiwick is the zone whose upstreams answer name: the longest forward
// zone above it, else the root (the forwarders and iteration may answer for
// any name).
func (f *forwarder) bailiwick(name string) string {
	for n := name; n != ""; n = parent(n) {
		if _, ok := f.zones[n]; ok {
			return n
		}
	}
	return "."
}

// status lists every upstream's health.
func (f *forwarder) status() []UpstreamStatus {
	var out []UpstreamStatus
	for _, p := range f.pools() {
		for _, u := range p.ups {
			out = append(out, u.status(p.zone))
		}
	}
	return out
}
