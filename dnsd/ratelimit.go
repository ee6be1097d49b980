package dnsd

import (
	"net/netip"
	"sync"
	"time"

	"github.com/airgapd/airgapd/internal/conf"
)

// RateLimitConfig is BIND's rate-limit { responses-per-second; slip; … }:
// per client network (IPv4 /24, IPv6 /56 by default), at most
// ResponsesPerSecond answers; past that, every Slip-th answer goes out
// truncated (so a real client retries over TCP) and the rest are dropped,
// which starves a reflection attack. Off when ResponsesPerSecond is 0.
type RateLimitConfig struct {
	ResponsesPerSecond int      `yaml:"responses_per_second"`
	Slip               int      `yaml:"slip"`
	IPv4PrefixLength   int      `yaml:"ipv4_prefix_length"`
	IPv6PrefixLength   int      `yaml:"ipv6_prefix_length"`
	Exempt             []string `yaml:"exempt"` // BIND's exempt-clients
}

func (c RateLimitConfig) validate(ps *conf.Problems) {
	if c.ResponsesPerSecond < 0 {
		ps.Add("rate_limit.responses_per_second", "use 0 to turn rate limiting off", "responses_per_second is negative")
	}
	if c.Slip < 0 || c.Slip > 10 {
		ps.Add("rate_limit.slip", "BIND's range is 0 (drop all) to 10", "slip %d is out of range", c.Slip)
	}
	if c.IPv4PrefixLength < 0 || c.IPv4PrefixLength > 32 {
		ps.Add("rate_limit.ipv4_prefix_length", "", "%d is not a prefix length", c.IPv4PrefixLength)
	}
	if c.IPv6PrefixLength < 0 || c.IPv6PrefixLength > 128 {
		ps.Add("rate_limit.ipv6_prefix_length", "", "%d is not a prefix length", c.IPv6PrefixLength)
	}
	conf.CheckCIDRs(ps, "rate_limit.exempt", c.Exempt)
}

// verdict is what the limiter says about one answer.
type verdict int

const (
	allow verdict = iota
	slip          // send an empty truncated answer
	drop          // send nothing
)

// limiterBuckets bounds the memory the limiter can use; when full, the
// table is cleared (a flood from many networks then gets a fresh start,
// which is what BIND's table does under pressure too).
const limiterBuckets = 100000

type bucket struct {
	tokens float64
	last   time.Time
	over   int // answers over the limit, for slip
}

type limiter struct {
	rate    float64
	slip    int
	v4, v6  int
	exempt  []netip.Prefix
	now     func() time.Time
	mu      sync.Mutex
	buckets map[netip.Prefix]*bucket
}

func newLimiter(c RateLimitConfig, now func() time.Time) (*limiter, error) {
	if c.ResponsesPerSecond == 0 {
		return nil, nil
	}
	ex, err := parsePrefixes(c.Exempt)
	if err != nil {
		return nil, err
	}
	return &limiter{rate: float64(c.ResponsesPerSecond), slip: c.Slip, v4: c.IPv4PrefixLength, v6: c.IPv6PrefixLength,
		exempt: ex, now: now, buckets: map[netip.Prefix]*bucket{}}, nil
}

// check spends one token of the client's network; nil limiter allows all.
func (l *limiter) check(client netip.Addr) verdict {
	if l == nil || contains(l.exempt, client) {
		return allow
	}
	bits := l.v4
	if client.Is6() {
		bits = l.v6
	}
	key, _ := client.Prefix(bits)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= limiterBuckets {
			clear(l.buckets)
		}
		b = &bucket{tokens: l.rate, last: now}
		l.buckets[key] = b
	}
	b.tokens = min(l.rate, b.tokens+now.Sub(b.last).Seconds()*l.rate) // one second of burst
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		b.over = 0
		return allow
	}
	b.over++
	if l.slip > 0 && b.over%l.slip == 0 {
		return slip
	}
	return drop
}
