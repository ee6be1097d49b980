package dnsd

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// staleTTL is the TTL of an answer served stale (RFC 8767 suggests 30 s).
const staleTTL = 30

// cacheShards spreads the lock over both cores' worth of readers.
const cacheShards = 32

type cacheKey struct {
	name   string // lower case
	qtype  uint16
	qclass uint16
	do, cd bool // DNSSEC answers differ from plain ones
}

type cacheEntry struct {
	// wire is the reply packed (no OPT, ID 0) with where each TTL sits; the
	// fast path patches a copy, the slow path unpacks it. The parsed msg is
	// kept only when packing failed: holding both doubled the memory a
	// cached name costs.
	wire     []byte
	ttlOffs  []uint16
	msg      *dns.Msg
	stored   time.Time
	ttl      time.Duration // how long it is fresh
	origTTL  time.Duration
	hits     atomic.Int64 // counted up to 2 (prefetch's "asked more than once")
	fetching atomic.Bool  // a prefetch or stale refresh is under way
}

type cacheShard struct {
	mu      sync.Mutex
	entries map[cacheKey]*cacheEntry
}

// cache is the answer cache: positive and negative (RFC 2308) entries, TTLs
// that decay, bounded size, prefetch and serve-stale (RFC 8767).
type cache struct {
	shards   [cacheShards]cacheShard
	seed     maphash.Seed
	perShard int
	limits   cacheLimits
	now      func() time.Time

	hits, misses, staleServed, prefetches, evictions atomic.Int64
}

type cacheLimits struct {
	maxEntries  int
	serveStale  time.Duration
	prefetch    bool
	minTTL      time.Duration
	maxTTL      time.Duration
	maxNegative time.Duration
}

func limitsFrom(c CacheConfig) cacheLimits {
	return cacheLimits{
		maxEntries:  c.MaxEntries,
		serveStale:  c.ServeStale.D(),
		prefetch:    c.Prefetch,
		minTTL:      c.MinTTL.D(),
		maxTTL:      c.MaxTTL.D(),
		maxNegative: c.MaxNegativeTTL.D(),
	}
}

func newCache(l cacheLimits, now func() time.Time) *cache {
	c := &cache{seed: maphash.MakeSeed(), now: now}
	for i := range c.shards {
		c.shards[i].entries = map[cacheKey]*cacheEntry{}
	}
	c.setLimits(l)
	return c
}

// setLimits applies new limits in place (reload); a smaller size evicts on
// the next inserts.
func (c *cache) setLimits(l cacheLimits) {
	c.limits = l
	c.perShard = (l.maxEntries + cacheShards - 1) / cacheShards
}

func (c *cache) shard(k cacheKey) *cacheShard {
	return &c.shards[maphash.String(c.seed, k.name)%cacheShards]
}

func keyOf(q *Query) cacheKey {
	qs := q.Question()
	k := cacheKey{name: dns.CanonicalName(qs.Name), qtype: qs.Qtype, qclass: qs.Qclass, cd: q.Msg.CheckingDisabled}
	if opt := q.Msg.IsEdns0(); opt != nil {
		k.do = opt.Do()
	}
	return k
}

type lookupState int

const (
	cacheMiss lookupState = iota
	cacheFresh
	cacheStale
)

// get returns the entry for k and whether it is fresh or only stale.
func (c *cache) get(k cacheKey) (*cacheEntry, lookupState) { return c.getAt(k, c.now()) }

// getAt is get with the clock already read (once per batch of packets).
func (c *cache) getAt(k cacheKey, now time.Time) (*cacheEntry, lookupState) {
	sh := c.shard(k)
	sh.mu.Lock()
	e, ok := sh.entries[k]
	if !ok {
		sh.mu.Unlock()
		return nil, cacheMiss
	}
	age := now.Sub(e.stored)
	if age < e.ttl {
		sh.mu.Unlock()
		// Prefetch only asks "more than once?": past two, stop writing
		// to the entry, a cache line every reader's core would share.
		if e.hits.Load() < 2 {
			e.hits.Add(1)
		}
		return e, cacheFresh
	}
	if age < e.ttl+c.limits.serveStale {
		sh.mu.Unlock()
		return e, cacheStale
	}
	delete(sh.entries, k) // past the stale window: gone
	sh.mu.Unlock()
	return nil, cacheMiss
}

// set stores a reply when it is cacheable.
func (c *cache) set(k cacheKey, m *dns.Msg) {
	if c.perShard <= 0 {
		return
	}
	ttl, ok := c.ttlOf(m)
	if !ok {
		return
	}
	e := &cacheEntry{stored: c.now(), ttl: ttl, origTTL: ttl}
	if !e.pack(m) {
		e.msg = m.Copy()
	}
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, exists := sh.entries[k]; !exists {
		// Full: drop a few entries; map order is random, so this is random
		// eviction, cheap and good enough (CoreDNS does the same).
		for victim := range sh.entries {
			if len(sh.entries) < c.perShard {
				break
			}
			delete(sh.entries, victim)
			c.evictions.Add(1)
		}
	}
	sh.entries[k] = e
}

// ttlOf is how long a reply stays fresh: the smallest answer TTL for
// positive replies, the SOA's negative TTL for NXDOMAIN and NODATA, clamped
// by the limits. SERVFAIL and friends are not cached.
func (c *cache) ttlOf(m *dns.Msg) (time.Duration, bool) {
	if m.Truncated {
		return 0, false
	}
	switch {
	case m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0:
		ttl := minTTL(m.Answer)
		return clamp(time.Duration(ttl)*time.Second, c.limits.minTTL, c.limits.maxTTL), true
	case m.Rcode == dns.RcodeSuccess || m.Rcode == dns.RcodeNameError:
		for _, rr := range m.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				ttl := min(soa.Hdr.Ttl, soa.Minttl)
				return clamp(time.Duration(ttl)*time.Second, c.limits.minTTL, c.limits.maxNegative), true
			}
		}
	}
	return 0, false
}

// pack stores m's wire form (ID 0, no OPT) and where its TTLs sit; false
// when it cannot, and the entry is then served by the slow path only. m is
// changed for packing and put back, rather than copied: every caller of set
// owns the reply it stores, and the copy was a measurable share of a miss.
func (e *cacheEntry) pack(m *dns.Msg) bool {
	id, extra, compress := m.Id, m.Extra, m.Compress
	m.Id, m.Extra, m.Compress = 0, removeOPT(m.Extra), true
	wire, err := m.Pack()
	m.Id, m.Extra, m.Compress = id, extra, compress
	if err != nil {
		return false
	}
	offs, err := ttlOffsets(wire)
	if err != nil {
		return false
	}
	e.wire, e.ttlOffs = wire, offs
	return true
}

// reply is a fresh copy of the cached reply, the packed form unpacked
// (with its ID 0 and no OPT) or the kept msg copied.
func (e *cacheEntry) reply() (*dns.Msg, error) {
	if e.msg != nil {
		return e.msg.Copy(), nil
	}
	m := new(dns.Msg)
	if err := m.Unpack(e.wire); err != nil {
		return nil, fmt.Errorf("unpacking a cached reply: %w", err)
	}
	return m, nil
}

func minTTL(rrs []dns.RR) uint32 {
	ttl := ^uint32(0)
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		ttl = min(ttl, rr.Header().Ttl)
	}
	return ttl
}

func clamp(d, lo, hi time.Duration) time.Duration {
	if hi > 0 && d > hi {
		d = hi
	}
	if d < lo {
		d = lo
	}
	return d
}

// answer copies an entry for req, with TTLs reduced by the entry's age, or
// set to staleTTL when it is served stale.
func (c *cache) answer(e *cacheEntry, req *dns.Msg, stale bool) *dns.Msg {
	m, err := e.reply()
	if err != nil { // cannot happen: wire came from Pack
		m = new(dns.Msg)
		m.SetRcode(req, dns.RcodeServerFailure)
		return m
	}
	m.Id = req.Id
	m.Question = req.Question // keep the client's case (0x20)
	m.RecursionDesired = req.RecursionDesired
	m.CheckingDisabled = req.CheckingDisabled
	age := uint32(c.now().Sub(e.stored) / time.Second)
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			if h.Rrtype == dns.TypeOPT {
				continue
			}
			switch {
			case stale:
				h.Ttl = staleTTL
			case h.Ttl > age:
				h.Ttl -= age
			default:
				h.Ttl = 0
			}
		}
	}
	return m
}

// len counts the entries.
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.entries)
		sh.mu.Unlock()
	}
	return n
}

// flush removes one name (every type) or, with name "", everything.
func (c *cache) flush(name string) int {
	name = dns.CanonicalName(name)
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for k := range sh.entries {
			if name == "." || name == "" || k.name == name {
				delete(sh.entries, k)
				n++
			}
		}
		sh.mu.Unlock()
	}
	return n
}

// cacheHandler is the cache stage of the pipeline. bg is the context for
// prefetches and stale refreshes, which outlive the query that starts them.
type cacheHandler struct {
	c  *cache
	bg func() context.Context
}

func (ch cacheHandler) middleware(next Handler) Handler {
	return HandlerFunc(func(ctx context.Context, q *Query) (*dns.Msg, error) {
		c := ch.c
		k := keyOf(q)
		e, state := c.get(k)
		switch state {
		case cacheFresh:
			c.hits.Add(1)
			q.Source = "cache"
			if c.limits.prefetch && ch.shouldPrefetch(e) {
				ch.refresh(k, q, e, next)
			}
			return c.answer(e, q.Msg, false), nil
		case cacheStale:
			// Try upstream first; serve stale only when it fails.
			m, err := next.Resolve(ctx, q)
			if err == nil && m != nil && m.Rcode != dns.RcodeServerFailure && m.Rcode != dns.RcodeRefused {
				c.set(k, m)
				return m, nil
			}
			c.staleServed.Add(1)
			q.Source = "stale"
			return c.answer(e, q.Msg, true), nil
		}
		c.misses.Add(1)
		m, err := next.Resolve(ctx, q)
		if err == nil && m != nil {
			c.set(k, m)
		}
		return m, err
	})
}

// shouldPrefetch: a name asked for more than once whose entry has less than
// a tenth of its TTL left is refreshed before it expires, so popular names
// never miss.
func (ch cacheHandler) shouldPrefetch(e *cacheEntry) bool { return ch.prefetchDue(e, ch.c.now()) }

func (ch cacheHandler) prefetchDue(e *cacheEntry, now time.Time) bool {
	if e.hits.Load() < 2 || e.origTTL < 10*time.Second {
		return false
	}
	left := e.ttl - now.Sub(e.stored)
	return left < e.origTTL/10
}

func (ch cacheHandler) refresh(k cacheKey, q *Query, e *cacheEntry, next Handler) {
	if !e.fetching.CompareAndSwap(false, true) {
		return
	}
	ch.c.prefetches.Add(1)
	sub := &Query{Msg: q.Msg.Copy(), Client: q.Client, TCP: q.TCP, Recursion: q.Recursion}
	go func() {
		defer e.fetching.Store(false)
		ctx, cancel := context.WithTimeout(ch.bg(), 5*time.Second)
		defer cancel()
		if m, err := next.Resolve(ctx, sub); err == nil && m != nil && m.Rcode != dns.RcodeServerFailure {
			ch.c.set(k, m)
		}
	}()
}
