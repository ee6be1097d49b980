package dnsd

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// staleTTL is the TTL of an answer served stale (RFC 8767 suggests 30 s).
const staleTTL = 30

// cacheShards spreads the lock over both cores' worth of readers, and
// keeps each shard's arena, copied whole when compacted, small: a full
// cache compacts on inserts, and the insert that does it waits for the
// copy. 128 shards (about 800 entries each at the default 100 000) gave
// a lower miss p99 than 32 with a full cache (docs/BENCHMARKS.md).
const (
	cacheShardBits = 7
	cacheShards    = 1 << cacheShardBits
)

type cacheKey struct {
	name   string // lower case
	qtype  uint16
	qclass uint16
	do, cd bool // DNSSEC answers differ from plain ones
}

// cacheEntry is a cached reply as a lookup found it: wire is the reply
// packed (no OPT, ID 0) and ttlOffs where each TTL sits in it (two bytes
// each, big-endian); the fast path patches a copy, the slow path unpacks
// it. Both point into a shard's arena and must not be written.
type cacheEntry struct {
	hash    uint64
	wire    []byte
	ttlOffs []byte
	stored  time.Time
	ttl     time.Duration // how long it is fresh
	origTTL time.Duration
	hits    uint8 // lookups while fresh, counted up to 2
}

// cache is the answer cache: positive and negative (RFC 2308) entries, TTLs
// that decay, bounded size, prefetch and serve-stale (RFC 8767).
type cache struct {
	shards   [cacheShards]cacheShard
	seed     maphash.Seed
	epoch    time.Time // slots store times as durations since
	perShard int
	limits   cacheLimits
	now      func() time.Time

	fetchMu  sync.Mutex
	fetching map[uint64]bool // key hashes with a prefetch or stale refresh under way

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
	c := &cache{seed: maphash.MakeSeed(), epoch: now(), now: now, fetching: map[uint64]bool{}}
	for i := range c.shards {
		c.shards[i] = newCacheShard()
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

// hashOf mixes the key's fields into the name's hash; the multiply spreads
// them into the top bits, which pick the shard.
func (c *cache) hashOf(k cacheKey) uint64 {
	h := maphash.String(c.seed, k.name) ^ uint64(k.qtype) ^ uint64(k.qclass)<<16 ^ uint64(keyFlags(k))<<32
	return h * 0x9E3779B97F4A7C15
}

func (c *cache) shard(h uint64) *cacheShard { return &c.shards[h>>(64-cacheShardBits)] }

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
func (c *cache) get(k cacheKey) (cacheEntry, lookupState) { return c.getAt(k, c.now()) }

// getAt is get with the clock already read (once per batch of packets).
func (c *cache) getAt(k cacheKey, now time.Time) (cacheEntry, lookupState) {
	h := c.hashOf(k)
	sh := c.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	s, ok := sh.lookup(h, k)
	if !ok {
		return cacheEntry{}, cacheMiss
	}
	age := now.Sub(c.epoch) - s.stored
	if age < s.ttl {
		// Prefetch only asks "more than once?": past two, stop writing.
		if s.hits < 2 {
			s.hits++
		}
		return sh.view(s, c.epoch), cacheFresh
	}
	if age < s.ttl+c.limits.serveStale {
		return sh.view(s, c.epoch), cacheStale
	}
	sh.remove(sh.index[h]) // past the stale window: gone
	return cacheEntry{}, cacheMiss
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
	// A reply miekg/dns parsed packs again; one that does not (or is
	// too big for a shard) is answered but not kept.
	wire, ok := packForCache(m)
	if !ok {
		return
	}
	var buf [64]byte
	offs, err := appendTTLOffsets(buf[:0], wire)
	if err != nil || len(offs) > math.MaxUint16 {
		return
	}
	h := c.hashOf(k)
	s := slot{hash: h, stored: c.now().Sub(c.epoch), ttl: ttl, origTTL: ttl}
	sh := c.shard(h)
	sh.mu.Lock()
	evicted := sh.insert(k, wire, offs, s, c.perShard)
	sh.mu.Unlock()
	if evicted > 0 {
		c.evictions.Add(evicted)
	}
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

// packForCache is m's wire form with ID 0 and no OPT. m is changed for
// packing and put back, rather than copied: every caller of set owns the
// reply it stores, and the copy was a measurable share of a miss.
func packForCache(m *dns.Msg) ([]byte, bool) {
	id, extra, compress := m.Id, m.Extra, m.Compress
	m.Id, m.Extra, m.Compress = 0, removeOPT(m.Extra), true
	wire, err := m.Pack()
	m.Id, m.Extra, m.Compress = id, extra, compress
	return wire, err == nil
}

// reply is a fresh copy of the cached reply: the packed form unpacked,
// with its ID 0 and no OPT.
func (e *cacheEntry) reply() (*dns.Msg, error) {
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
		n += len(sh.index)
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
		for j := range sh.slots {
			if s := &sh.slots[j]; s.used && (name == "." || name == "" || sh.name(s) == name) {
				sh.remove(uint32(j))
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
			if c.limits.prefetch && ch.shouldPrefetch(&e) {
				ch.refresh(k, q, &e, next)
			}
			return c.answer(&e, q.Msg, false), nil
		case cacheStale:
			// Try upstream first; serve stale only when it fails.
			m, err := next.Resolve(ctx, q)
			if err == nil && m != nil && m.Rcode != dns.RcodeServerFailure && m.Rcode != dns.RcodeRefused {
				c.set(k, m)
				return m, nil
			}
			c.staleServed.Add(1)
			q.Source = "stale"
			return c.answer(&e, q.Msg, true), nil
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
	if e.hits < 2 || e.origTTL < 10*time.Second {
		return false
	}
	left := e.ttl - now.Sub(e.stored)
	return left < e.origTTL/10
}

func (ch cacheHandler) refresh(k cacheKey, q *Query, e *cacheEntry, next Handler) {
	c, h := ch.c, e.hash
	c.fetchMu.Lock()
	busy := c.fetching[h]
	c.fetching[h] = true
	c.fetchMu.Unlock()
	if busy {
		return
	}
	c.prefetches.Add(1)
	sub := &Query{Msg: q.Msg.Copy(), Client: q.Client, TCP: q.TCP, Recursion: q.Recursion}
	go func() {
		defer func() {
			c.fetchMu.Lock()
			delete(c.fetching, h)
			c.fetchMu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(ch.bg(), 5*time.Second)
		defer cancel()
		if m, err := next.Resolve(ctx, sub); err == nil && m != nil && m.Rcode != dns.RcodeServerFailure {
			c.set(k, m)
		}
	}()
}
