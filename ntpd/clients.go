package ntpd

import (
	"hash/maphash"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/airgapd/airgapd/api"
)

// verdict is what the rate limiter decides for one request.
type verdict int

const (
	verdictAnswer verdict = iota
	verdictKoD            // over the limit: answer with KoD RATE
	verdictDrop           // over the limit, KoD already sent this interval
)

// rateParams is the rate limit in force (ratelimit:), precomputed.
type rateParams struct {
	enabled  bool
	interval time.Duration // one token per interval
	burst    float64
}

func newRateParams(r RateLimit) rateParams {
	iv := time.Duration(float64(time.Second) * pow2(r.Interval))
	return rateParams{enabled: r.Enabled, interval: max(iv, time.Nanosecond), burst: float64(r.Burst)}
}

func pow2(n int) float64 {
	if n >= 0 {
		return float64(uint64(1) << uint(n))
	}
	return 1 / float64(uint64(1)<<uint(-n))
}

// client is one row of the clients table (chronyc clients).
type client struct {
	packets, answered, drops, kods uint64
	first, last                    time.Time
	tokens                         float64
	lastKoD                        time.Time
	name                           string
}

// clientTable counts requests per client address and applies the rate
// limit. It is sharded so the readers of several sockets rarely contend,
// and bounded: when a shard is full, the least recently seen of a sample
// of entries is dropped.
type clientTable struct {
	seed      maphash.Seed
	shards    [clientShards]clientShard
	perShard  int
	newClient func(netip.Addr) // called (outside the lock) for each new address
}

const (
	clientShards = 16
	maxClients   = 1 << 16
)

type clientShard struct {
	mu sync.Mutex
	m  map[netip.Addr]*client
}

func newClientTable(limit int, newClient func(netip.Addr)) *clientTable {
	t := &clientTable{seed: maphash.MakeSeed(), perShard: max(1, limit/clientShards), newClient: newClient}
	for i := range t.shards {
		t.shards[i].m = map[netip.Addr]*client{}
	}
	return t
}

func (t *clientTable) shard(a netip.Addr) *clientShard {
	return &t.shards[maphash.Comparable(t.seed, a)%clientShards]
}

// admit records a request from a at now and applies rp.
func (t *clientTable) admit(a netip.Addr, now time.Time, rp rateParams) verdict {
	sh := t.shard(a)
	sh.mu.Lock()
	c, ok := sh.m[a]
	if !ok {
		if len(sh.m) >= t.perShard {
			sh.evictLocked()
		}
		c = &client{first: now, last: now, tokens: rp.burst}
		sh.m[a] = c
	}
	if c.packets > 0 && now.After(c.last) {
		c.tokens = min(rp.burst, c.tokens+float64(now.Sub(c.last))/float64(rp.interval))
	}
	c.packets++
	if now.After(c.last) {
		c.last = now
	}
	v := verdictAnswer
	switch {
	case !rp.enabled || c.tokens >= 1:
		c.tokens = max(0, c.tokens-1)
		c.answered++
	case c.lastKoD.IsZero() || now.Sub(c.lastKoD) >= rp.interval:
		c.lastKoD = now
		c.kods++
		v = verdictKoD
	default:
		c.drops++
		v = verdictDrop
	}
	sh.mu.Unlock()
	if !ok && t.newClient != nil {
		t.newClient(a)
	}
	return v
}

// evictLocked drops the least recently seen of up to 32 entries (map
// iteration order is random, so this is a random sample).
func (sh *clientShard) evictLocked() {
	var oldest netip.Addr
	var when time.Time
	n := 0
	for a, c := range sh.m {
		if n == 0 || c.last.Before(when) {
			oldest, when = a, c.last
		}
		if n++; n >= 32 {
			break
		}
	}
	delete(sh.m, oldest)
}

// setName records a client's reverse-DNS name.
func (t *clientTable) setName(a netip.Addr, name string) {
	sh := t.shard(a)
	sh.mu.Lock()
	if c, ok := sh.m[a]; ok {
		c.name = name
	}
	sh.mu.Unlock()
}

// ClientStatus is one row of the clients table, like `chronyc clients`.
type ClientStatus = api.NTPClientStatus

// snapshot returns up to limit clients, most recently seen first, and the
// total count.
func (t *clientTable) snapshot(limit int) ([]ClientStatus, int) {
	var out []ClientStatus
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for a, c := range sh.m {
			cs := ClientStatus{Address: a.String(), Name: c.name, Packets: c.packets, Answered: c.answered,
				Drops: c.drops, KoDs: c.kods, LastSeen: c.last}
			if c.packets > 1 {
				cs.Interval = c.last.Sub(c.first).Seconds() / float64(c.packets-1)
			}
			out = append(out, cs)
		}
		sh.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b ClientStatus) int { return b.LastSeen.Compare(a.LastSeen) })
	total := len(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, total
}
