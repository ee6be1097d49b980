package dnsd

import (
	"math"
	"sync"
	"time"
)

// A cache shard keeps its entries where the garbage collector has nothing
// to follow: every entry's name, packed reply and TTL offsets sit in one
// append-only byte arena, and the index and the slot table hold numbers
// only. As four heap objects per name (key, entry, reply, offsets) a
// default-sized cache of 100 000 names made each mark phase 30-70 ms of
// the one core airgapd may have, and the queries waiting behind it set the
// cache-miss p99 (docs/BENCHMARKS.md). VictoriaMetrics/fastcache lays its
// entries out the same way, but it is sized in bytes and evicts in a ring,
// keeps no per-entry state (prefetch's hit count) and cannot find one
// name's entries to flush, so the store is written here.

// minArena is the smallest arena a shard allocates.
const minArena = 4 << 10

// Key flags (cacheKey.do, cacheKey.cd) as they are stored in a slot.
const (
	flagDO = 1 << iota
	flagCD
)

// slot is one entry: where its bytes sit in the arena (name, then packed
// reply, then TTL offsets) and what the cache knows of it.
type slot struct {
	hash          uint64
	stored        time.Duration // since the cache's epoch
	ttl, origTTL  time.Duration
	off, wireLen  uint32
	nameLen       uint16
	offsLen       uint16 // bytes: two per TTL
	qtype, qclass uint16
	flags         uint8
	hits          uint8 // counted up to 2: prefetch asks "more than once?"
	used          bool
}

func (s *slot) size() int { return int(s.nameLen) + int(s.wireLen) + int(s.offsLen) }

// cacheShard is a share of the entries under one lock. An entry's bytes are
// never written over while it may be read: removal only counts them dead,
// and compaction copies the live ones into a new arena, so a cacheEntry
// handed out stays valid after the lock is let go.
type cacheShard struct {
	mu    sync.Mutex
	index map[uint64]uint32 // key hash → slot
	slots []slot
	free  []uint32 // unused slots
	arena []byte
	dead  int // arena bytes of removed entries
}

func newCacheShard() cacheShard { return cacheShard{index: map[uint64]uint32{}} }

func keyFlags(k cacheKey) uint8 {
	var f uint8
	if k.do {
		f |= flagDO
	}
	if k.cd {
		f |= flagCD
	}
	return f
}

// lookup finds k's slot; a slot with k's hash that holds another key (a
// collision, about one in 2^64) is a miss.
func (sh *cacheShard) lookup(h uint64, k cacheKey) (*slot, bool) {
	i, ok := sh.index[h]
	if !ok {
		return nil, false
	}
	s := &sh.slots[i]
	if s.qtype != k.qtype || s.qclass != k.qclass || s.flags != keyFlags(k) || sh.name(s) != k.name {
		return nil, false
	}
	return s, true
}

// name is s's owner name; converting for a comparison does not copy.
func (sh *cacheShard) name(s *slot) string {
	return string(sh.arena[s.off : s.off+uint32(s.nameLen)])
}

// view is s as the cache's callers see it, its slices into the arena.
func (sh *cacheShard) view(s *slot, epoch time.Time) cacheEntry {
	wire := s.off + uint32(s.nameLen)
	offs := wire + s.wireLen
	return cacheEntry{
		hash:    s.hash,
		wire:    sh.arena[wire:offs:offs],
		ttlOffs: sh.arena[offs : offs+uint32(s.offsLen) : offs+uint32(s.offsLen)],
		stored:  epoch.Add(s.stored),
		ttl:     s.ttl,
		origTTL: s.origTTL,
		hits:    s.hits,
	}
}

func (sh *cacheShard) remove(i uint32) {
	s := &sh.slots[i]
	delete(sh.index, s.hash)
	sh.dead += s.size()
	*s = slot{}
	sh.free = append(sh.free, i)
}

// insert stores an entry under k, replacing what k held and, when the
// shard is full, evicting at random (map order is random; CoreDNS does the
// same). It returns how many it evicted, or -1 when the entry is too big
// for an arena.
func (sh *cacheShard) insert(k cacheKey, wire, offs []byte, s slot, limit int) int64 {
	var evicted int64
	if i, ok := sh.index[s.hash]; ok {
		sh.remove(i)
	} else {
		for _, i := range sh.index {
			if len(sh.index) < limit {
				break
			}
			sh.remove(i)
			evicted++
		}
	}
	need := len(k.name) + len(wire) + len(offs)
	if len(sh.arena)+need > cap(sh.arena) {
		if !sh.compact(need) {
			return -1
		}
	}
	s.off = uint32(len(sh.arena))
	s.nameLen, s.wireLen, s.offsLen = uint16(len(k.name)), uint32(len(wire)), uint16(len(offs))
	s.qtype, s.qclass, s.flags, s.used = k.qtype, k.qclass, keyFlags(k), true
	sh.arena = append(append(append(sh.arena, k.name...), wire...), offs...)
	var i uint32
	if n := len(sh.free); n > 0 {
		i, sh.free = sh.free[n-1], sh.free[:n-1]
	} else {
		i = uint32(len(sh.slots))
		sh.slots = append(sh.slots, slot{})
	}
	sh.slots[i] = s
	sh.index[s.hash] = i
	return evicted
}

// compact moves the live entries into a new arena with room for need more
// bytes and half as much again, so its cost (a copy of what is live) is
// paid once per half a shard's worth of inserts. False when the arena would
// pass what a slot's offset can address.
func (sh *cacheShard) compact(need int) bool {
	live := len(sh.arena) - sh.dead
	size := max((live+need)*3/2, minArena)
	if size > math.MaxUint32 {
		return false
	}
	arena := make([]byte, 0, size)
	for i := range sh.slots {
		s := &sh.slots[i]
		if !s.used {
			continue
		}
		off := len(arena)
		arena = append(arena, sh.arena[s.off:int(s.off)+s.size()]...)
		s.off = uint32(off)
	}
	sh.arena, sh.dead = arena, 0
	return true
}
