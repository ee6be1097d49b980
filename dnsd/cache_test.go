package dnsd

import (
	"context"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// scriptedUpstream answers with what its function says and counts calls.
type scriptedUpstream struct {
	mu     sync.Mutex
	calls  int
	answer func(q *Query) (*dns.Msg, error)
}

func (u *scriptedUpstream) Resolve(ctx context.Context, q *Query) (*dns.Msg, error) {
	u.mu.Lock()
	u.calls++
	u.mu.Unlock()
	return u.answer(q)
}

func (u *scriptedUpstream) count() int { u.mu.Lock(); defer u.mu.Unlock(); return u.calls }

func withTTL(ttl uint32, rcode int) func(q *Query) (*dns.Msg, error) {
	return func(q *Query) (*dns.Msg, error) {
		m := reply(q.Msg, rcode)
		switch rcode {
		case dns.RcodeSuccess:
			rr, _ := dns.NewRR(q.Question().Name + " A 192.0.2.1")
			rr.Header().Ttl = ttl
			m.Answer = []dns.RR{rr}
		case dns.RcodeNameError:
			soa, _ := dns.NewRR("test. 3600 SOA ns.test. h.test. 1 3600 600 86400 60")
			m.Ns = []dns.RR{soa}
		}
		return m, nil
	}
}

func newTestCache(clk *fakeClock, l cacheLimits) (*cache, func(up Handler) Handler) {
	c := newCache(l, clk.now)
	ch := cacheHandler{c: c, bg: context.Background}
	return c, ch.middleware
}

func query(t *testing.T, h Handler, name string) (*dns.Msg, *Query) {
	t.Helper()
	req := new(dns.Msg)
	req.SetQuestion(name, dns.TypeA)
	q := &Query{Msg: req, Client: netip.MustParseAddr("127.0.0.1"), Recursion: true}
	m, err := h.Resolve(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return m, q
}

var testLimits = cacheLimits{maxEntries: 1000, serveStale: time.Hour, maxTTL: 24 * time.Hour, maxNegative: 3 * time.Hour}

func TestCacheFreshDecayAndStale(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	up := &scriptedUpstream{answer: withTTL(100, dns.RcodeSuccess)}
	_, mw := newTestCache(clk, testLimits)
	h := mw(up)

	steps := []struct {
		advance   time.Duration
		fail      bool
		wantTTL   uint32
		wantSrc   string
		wantCalls int
	}{
		{0, false, 100, "", 1},                         // miss: upstream
		{40 * time.Second, false, 60, "cache", 1},      // fresh, TTL decayed
		{70 * time.Second, true, staleTTL, "stale", 2}, // expired, upstream fails: stale
		{0, false, 100, "", 3},                         // expired, upstream back: refreshed
		{2 * time.Hour, true, 0, "", 4},                // past the stale window: a miss, SERVFAIL
	}
	for i, st := range steps {
		clk.add(st.advance)
		if st.fail {
			up.answer = func(q *Query) (*dns.Msg, error) { return reply(q.Msg, dns.RcodeServerFailure), nil }
		} else {
			up.answer = withTTL(100, dns.RcodeSuccess)
		}
		m, q := query(t, h, "www.test.")
		if up.count() != st.wantCalls {
			t.Errorf("step %d: %d upstream calls, want %d", i, up.count(), st.wantCalls)
		}
		if q.Source != st.wantSrc {
			t.Errorf("step %d: source %q, want %q", i, q.Source, st.wantSrc)
		}
		if st.wantTTL == 0 {
			if m.Rcode != dns.RcodeServerFailure {
				t.Errorf("step %d: rcode %d, want SERVFAIL", i, m.Rcode)
			}
			continue
		}
		if len(m.Answer) != 1 || m.Answer[0].Header().Ttl != st.wantTTL {
			t.Errorf("step %d: answer %v, want TTL %d", i, m.Answer, st.wantTTL)
		}
	}
}

func TestCacheNegativeAndUncacheable(t *testing.T) {
	cases := []struct {
		name     string
		rcode    int
		cached   bool
		freshFor time.Duration
	}{
		{"nxdomain uses the SOA minimum", dns.RcodeNameError, true, 60 * time.Second},
		{"servfail is not cached", dns.RcodeServerFailure, false, 0},
		{"refused is not cached", dns.RcodeRefused, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{t: time.Unix(1e9, 0)}
			c, mw := newTestCache(clk, testLimits)
			up := &scriptedUpstream{answer: withTTL(100, tc.rcode)}
			h := mw(up)
			query(t, h, "x.test.")
			if got := c.len() == 1; got != tc.cached {
				t.Fatalf("cached = %v, want %v", got, tc.cached)
			}
			if !tc.cached {
				return
			}
			clk.add(tc.freshFor - time.Second)
			if _, q := query(t, h, "x.test."); q.Source != "cache" {
				t.Errorf("just before expiry: source %q", q.Source)
			}
			clk.add(2 * time.Second)
			if _, q := query(t, h, "x.test."); q.Source == "cache" {
				t.Error("negative entry outlived its TTL")
			}
		})
	}
}

func TestCacheBoundedAndClamped(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	l := testLimits
	l.maxEntries, l.maxTTL = 64, 10*time.Second
	c, mw := newTestCache(clk, l)
	h := mw(&scriptedUpstream{answer: withTTL(86400, dns.RcodeSuccess)})
	for i := range 500 {
		query(t, h, dns.Fqdn(string(rune('a'+i%26))+"."+strconv.Itoa(i)+".test"))
	}
	if n := c.len(); n > 64+cacheShards { // per-shard rounding
		t.Errorf("%d entries, limit 64", n)
	}
	if c.evictions.Load() == 0 {
		t.Error("nothing was evicted")
	}
	m, _ := query(t, h, "clamp.test.")
	if ttl := m.Answer[0].Header().Ttl; ttl != 86400 {
		t.Logf("first answer passes the upstream TTL through: %d", ttl)
	}
	clk.add(11 * time.Second)
	if _, q := query(t, h, "clamp.test."); q.Source == "cache" {
		t.Error("max_ttl 10s did not clamp a 1-day TTL")
	}
}

func TestCachePrefetch(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	_, mw := newTestCache(clk, cacheLimits{maxEntries: 100, prefetch: true, maxTTL: time.Hour})
	up := &scriptedUpstream{answer: withTTL(100, dns.RcodeSuccess)}
	h := mw(up)
	for range 3 {
		query(t, h, "popular.test.")
	}
	clk.add(95 * time.Second) // 5% of the TTL left
	if _, q := query(t, h, "popular.test."); q.Source != "cache" {
		t.Fatalf("source %q, want cache while prefetching", q.Source)
	}
	deadline := time.Now().Add(5 * time.Second)
	for up.count() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if up.count() != 2 {
		t.Fatalf("prefetch did not reach upstream: %d calls", up.count())
	}
	clk.add(10 * time.Second) // the original entry would have expired
	if _, q := query(t, h, "popular.test."); q.Source != "cache" {
		t.Errorf("after prefetch: source %q, want cache", q.Source)
	}
}
