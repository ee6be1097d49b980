package dnsd

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// hitBatch is the accounting of one read batch's cache hits. The shared
// counters, the clock and the top lists' lock are touched once per batch,
// not once per query: at a few hundred thousand answers a second those
// were a fifth of the time the fast path spent outside the kernel.
type hitBatch struct {
	began   time.Time // when the batch was read: every hit's clock
	n       int64
	rcodes  [maxRcode]int64
	clients []netip.Addr
	names   []string
	qtypes  []uint16
	rc      []uint8
}

func (b *hitBatch) add(client netip.Addr, name string, qtype uint16, rcode int) {
	b.n++
	b.rcodes[min(rcode, maxRcode-1)]++
	b.clients = append(b.clients, client)
	b.names = append(b.names, name)
	b.qtypes = append(b.qtypes, qtype)
	b.rc = append(b.rc, uint8(rcode))
}

// flush adds the batch to the server's counters, with one latency for
// every hit (read to flush, which comes after the batch is written), and
// empties it.
func (b *hitBatch) flush(s *Server) {
	if b.n == 0 {
		return
	}
	st := s.stats
	now := s.now()
	lat := now.Sub(b.began)
	st.queries.Add(b.n)
	st.latencyNs.Add(int64(lat) * b.n)
	st.bySource[sourceIndex("cache")].Add(b.n)
	for rc, k := range b.rcodes {
		if k > 0 {
			st.byRcode[rc].Add(k)
		}
	}
	s.cache.hits.Add(b.n)
	st.mu.Lock()
	for i, c := range b.clients {
		st.top.add(c, b.names[i], now)
		if st.logOn {
			st.appendLog(logRecord{at: now, client: c, name: b.names[i], qtype: b.qtypes[i], rcode: b.rc[i],
				source: uint8(sourceIndex("cache")), latency: lat})
		}
	}
	st.mu.Unlock()
	b.n, b.rcodes = 0, [maxRcode]int64{}
	b.clients, b.names, b.qtypes, b.rc = b.clients[:0], b.names[:0], b.qtypes[:0], b.rc[:0]
}

// fastAnswer answers a plain query from a fresh cache entry's wire form,
// or returns nil to leave it to the pipeline (fastAnswerTo, one query in
// a batch of its own).
func (s *Server) fastAnswer(pkt []byte, client netip.Addr) []byte {
	b := hitBatch{began: s.now()}
	out := s.fastAnswerTo(nil, pkt, client, &b)
	b.flush(s)
	return out
}

// fastAnswerTo answers a plain query from a fresh cache entry's wire form
// into dst's space (a new slice when it lacks room), counting the hit in
// b, or returns nil to leave it to the pipeline: anything a later stage of
// the pipeline would treat differently (ACL, local zones, prefetch, stale,
// truncation) declines.
func (s *Server) fastAnswerTo(dst, pkt []byte, client netip.Addr, b *hitBatch) []byte {
	q, err := parsePlainQuery(pkt)
	if err != nil || q.qclass != dns.ClassINET {
		return nil
	}
	p := s.pipe.Load()
	if !contains(p.acl.allowQuery, client) || !contains(p.acl.allowRecursion, client) || p.zones.covers(q.name) {
		return nil
	}
	c := s.cache
	now := b.began
	e, state := c.getAt(cacheKey{name: q.name, qtype: q.qtype, qclass: q.qclass, do: q.do, cd: q.cd}, now)
	if state != cacheFresh || (c.limits.prefetch && (cacheHandler{c: c}).prefetchDue(&e, now)) {
		return nil
	}
	size, need := dns.MinMsgSize, len(e.wire)
	if q.edns {
		size = int(max(min(q.udpSize, ednsSize), dns.MinMsgSize))
		need += 11
	}
	end := 12 + len(q.nameWire)
	if need > size || end > len(e.wire) || !equalFoldASCII(e.wire[12:end], q.nameWire) {
		return nil
	}
	var out []byte
	if cap(dst) >= need {
		out = dst[:need]
	} else {
		out = make([]byte, need)
	}
	copy(out, e.wire)
	binary.BigEndian.PutUint16(out, q.id)
	copy(out[12:end], q.nameWire) // the client's case (0x20)
	out[2] &^= 0x01
	if q.rd {
		out[2] |= 0x01
	}
	out[3] &^= 0x10
	if q.cd {
		out[3] |= 0x10
	}
	age := uint32(now.Sub(e.stored) / time.Second)
	for i := 0; i+1 < len(e.ttlOffs); i += 2 {
		off := binary.BigEndian.Uint16(e.ttlOffs[i:])
		ttl := binary.BigEndian.Uint32(e.wire[off:]) // as stored; out's copy is patched
		if ttl > age {
			ttl -= age
		} else {
			ttl = 0
		}
		binary.BigEndian.PutUint32(out[off:], ttl)
	}
	if q.edns {
		opt := out[len(e.wire):]
		opt[0] = 0                                    // root
		binary.BigEndian.PutUint16(opt[1:], 41)       // OPT
		binary.BigEndian.PutUint16(opt[3:], ednsSize) // our UDP size
		opt[5], opt[6], opt[7], opt[8] = 0, 0, 0, 0
		if q.do {
			opt[7] = 0x80
		}
		opt[9], opt[10] = 0, 0 // no options
		binary.BigEndian.PutUint16(out[10:], binary.BigEndian.Uint16(out[10:])+1)
	}
	b.add(client, q.name, q.qtype, int(out[3]&0x0F))
	return out
}

func equalFoldASCII(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x >= 'A' && x <= 'Z' {
			x += 'a' - 'A'
		}
		if y >= 'A' && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
