package dnsd

import (
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/airgapd/airgapd/api"
)

// sources are who answered a query, in the order the status shows them.
var sources = []string{"local", "cache", "stale", "upstream", "refused", "error"}

func sourceIndex(s string) int {
	for i, v := range sources {
		if v == s {
			return i
		}
	}
	return len(sources) - 1 // "error"
}

// maxRcode bounds the per-rcode counters; anything above lands in the last.
const maxRcode = 24

// stats counts queries with atomics (cheap on the hot path) and keeps a
// bounded ring of recent queries and per-minute top lists for the UI.
type stats struct {
	queries     atomic.Int64
	bySource    [8]atomic.Int64
	byRcode     [maxRcode]atomic.Int64
	dropped     atomic.Int64 // over maxInFlight
	rateLimited atomic.Int64 // dropped or slipped by rate limiting
	malformed   atomic.Int64
	latencyNs   atomic.Int64 // sum, for the average

	mu      sync.Mutex
	log     []logRecord // ring
	logNext int
	logOn   bool
	top     topCounter

	qpsMu      sync.Mutex
	qpsAt      time.Time
	qpsCount   int64
	qpsCurrent float64
}

// LogEntry is one query in the query log.
type LogEntry = api.DNSLogEntry

// logRecord is a query-log entry as recorded: raw values, formatted only
// when someone reads the log, so the hot path does no string work.
type logRecord struct {
	at      time.Time
	client  netip.Addr
	name    string
	qtype   uint16
	rcode   uint8
	source  uint8
	latency time.Duration
}

func (r logRecord) entry() LogEntry {
	return LogEntry{Time: r.at, Client: r.client.String(), Name: r.name, Type: dns.TypeToString[r.qtype],
		Rcode: dns.RcodeToString[int(r.rcode)], Source: sources[r.source], LatencyMs: float64(r.latency.Microseconds()) / 1000}
}

// queryLogSize bounds the ring the UI reads.
const queryLogSize = 1000

func newStats(logOn bool) *stats {
	return &stats{log: make([]logRecord, 0, queryLogSize), logOn: logOn, top: newTopCounter()}
}

func (st *stats) recordMsg(s *Server, client netip.Addr, req, resp *dns.Msg, source string, began time.Time) {
	name, qtype := "", uint16(0)
	if len(req.Question) > 0 {
		name, qtype = req.Question[0].Name, req.Question[0].Qtype
	}
	st.record(s, client, name, qtype, resp.Rcode, source, began)
}

func (st *stats) record(s *Server, client netip.Addr, name string, qtype uint16, rcode int, source string, began time.Time) {
	now := s.now()
	lat := now.Sub(began)
	st.queries.Add(1)
	st.latencyNs.Add(int64(lat))
	src := sourceIndex(source)
	st.bySource[src].Add(1)
	st.byRcode[min(rcode, maxRcode-1)].Add(1)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.top.add(client, name, now)
	if !st.logOn {
		return
	}
	st.appendLog(logRecord{at: now, client: client, name: name, qtype: qtype, rcode: uint8(min(rcode, 255)), source: uint8(src), latency: lat})
}

// appendLog puts r in the ring; st.mu is held.
func (st *stats) appendLog(r logRecord) {
	if len(st.log) < queryLogSize {
		st.log = append(st.log, r)
	} else {
		st.log[st.logNext] = r
	}
	st.logNext = (st.logNext + 1) % queryLogSize
}

// recent returns up to n newest entries, newest first.
func (st *stats) recent(n int) []LogEntry {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make([]LogEntry, 0, min(n, len(st.log)))
	for i := 1; i <= len(st.log) && len(out) < n; i++ {
		out = append(out, st.log[(st.logNext-i+len(st.log))%len(st.log)].entry())
	}
	return out
}

// qps is the query rate since the previous call (at least a second apart).
func (st *stats) qps(now time.Time) float64 {
	st.qpsMu.Lock()
	defer st.qpsMu.Unlock()
	n := st.queries.Load()
	if dt := now.Sub(st.qpsAt); dt >= time.Second {
		if !st.qpsAt.IsZero() {
			st.qpsCurrent = float64(n-st.qpsCount) / dt.Seconds()
		}
		st.qpsAt, st.qpsCount = now, n
	}
	return st.qpsCurrent
}

// topCounter counts clients and names per minute; the status shows the
// last full minute's leaders. Each map is bounded: past topMax distinct
// keys, new ones are not counted.
type topCounter struct {
	minute       time.Time
	clients      map[netip.Addr]int64
	names        map[string]int64 // lower case
	lastC, lastN []Count
}

// Count is one top-list row.
type Count = api.DNSCount

const topMax = 10000

func newTopCounter() topCounter {
	return topCounter{clients: map[netip.Addr]int64{}, names: map[string]int64{}}
}

func (t *topCounter) add(client netip.Addr, name string, now time.Time) {
	if now.Sub(t.minute) >= time.Minute {
		t.lastC, t.lastN = leaders(t.clients, 10, netip.Addr.String), leaders(t.names, 10, func(s string) string { return s })
		clear(t.clients)
		clear(t.names)
		t.minute = now.Truncate(time.Minute)
	}
	bump(t.clients, client)
	if !isLower(name) { // the fast path's names already are
		name = strings.ToLower(name)
	}
	bump(t.names, name)
}

func isLower(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return false
		}
	}
	return true
}

func bump[K comparable](m map[K]int64, k K) {
	if _, ok := m[k]; ok || len(m) < topMax {
		m[k]++
	}
}

func leaders[K comparable](m map[K]int64, n int, str func(K) string) []Count {
	out := make([]Count, 0, len(m))
	for k, v := range m {
		out = append(out, Count{Key: str(k), Count: v})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Count > out[j].Count || (out[i].Count == out[j].Count && out[i].Key < out[j].Key)
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// collector exports the counters to Prometheus at scrape time, so the hot
// path pays for atomics only.
type collector struct {
	s *Server

	queries, cacheOps, cacheEntries, dropped, malformed, upstreamRTT, upstreamUp *prometheus.Desc
}

func newCollector(s *Server) *collector {
	return &collector{
		s:            s,
		queries:      prometheus.NewDesc("airgapd_dns_queries_total", "DNS queries answered, by who answered and rcode.", []string{"source", "rcode"}, nil),
		cacheOps:     prometheus.NewDesc("airgapd_dns_cache_operations_total", "Cache lookups by result (hit, miss, stale) and prefetches.", []string{"op"}, nil),
		cacheEntries: prometheus.NewDesc("airgapd_dns_cache_entries", "Entries in the answer cache.", nil, nil),
		dropped:      prometheus.NewDesc("airgapd_dns_dropped_total", "Queries not answered in full, by reason: inflight (too many at once) or ratelimit (dropped or slipped).", []string{"reason"}, nil),
		malformed:    prometheus.NewDesc("airgapd_dns_malformed_total", "Packets that were not valid DNS queries.", nil, nil),
		upstreamRTT:  prometheus.NewDesc("airgapd_dns_upstream_srtt_seconds", "Smoothed round-trip time per forwarder.", []string{"upstream", "zone"}, nil),
		upstreamUp:   prometheus.NewDesc("airgapd_dns_upstream_healthy", "1 when the forwarder is in use, 0 when marked dead.", []string{"upstream", "zone"}, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.queries, c.cacheOps, c.cacheEntries, c.dropped, c.malformed, c.upstreamRTT, c.upstreamUp} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.stats
	// Per source and rcode would need a 2-D table; sources and rcodes are
	// exported as two label sets of one family, the other set to "all".
	for i, src := range sources {
		ch <- prometheus.MustNewConstMetric(c.queries, prometheus.CounterValue, float64(st.bySource[i].Load()), src, "all")
	}
	for rc := 0; rc < maxRcode; rc++ {
		if v := st.byRcode[rc].Load(); v > 0 {
			ch <- prometheus.MustNewConstMetric(c.queries, prometheus.CounterValue, float64(v), "all", dns.RcodeToString[rc])
		}
	}
	ca := c.s.cache
	ch <- prometheus.MustNewConstMetric(c.cacheOps, prometheus.CounterValue, float64(ca.hits.Load()), "hit")
	ch <- prometheus.MustNewConstMetric(c.cacheOps, prometheus.CounterValue, float64(ca.misses.Load()), "miss")
	ch <- prometheus.MustNewConstMetric(c.cacheOps, prometheus.CounterValue, float64(ca.staleServed.Load()), "stale")
	ch <- prometheus.MustNewConstMetric(c.cacheOps, prometheus.CounterValue, float64(ca.prefetches.Load()), "prefetch")
	ch <- prometheus.MustNewConstMetric(c.cacheEntries, prometheus.GaugeValue, float64(ca.len()))
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(st.dropped.Load()), "inflight")
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(st.rateLimited.Load()), "ratelimit")
	ch <- prometheus.MustNewConstMetric(c.malformed, prometheus.CounterValue, float64(st.malformed.Load()))
	for _, u := range c.s.pipe.Load().fwd.status() {
		ch <- prometheus.MustNewConstMetric(c.upstreamRTT, prometheus.GaugeValue, u.SRTTms/1000, u.Address, u.Zone)
		up := 0.0
		if u.Healthy {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(c.upstreamUp, prometheus.GaugeValue, up, u.Address, u.Zone)
	}
}
