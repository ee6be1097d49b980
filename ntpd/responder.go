package ntpd

import (
	"encoding/binary"
	"errors"
	"math"
	"net/netip"
	"time"

	ntpproto "github.com/facebook/time/ntp/protocol"
)

// Modes of the NTP header (RFC 5905).
const (
	modeSymmetricActive  = 1
	modeSymmetricPassive = 2
	modeClient           = 3
	modeServer           = 4
	modeBroadcast        = 5
	modeControl          = 6 // ntpq
	modePrivate          = 7 // ntpdc (monlist)
)

// result is what happened to one request, for the counters.
type result int

const (
	resAnswered result = iota
	resKoD
	resRateDropped
	resDenied  // source outside allow: silently ignored, as chrony does
	resInvalid // too short, bad version
	resMode    // not a client request: control, private, symmetric, broadcast
	resUnauth  // plain request refused by nts.required
	resNTSFail // NTS request that does not authenticate: dropped
	resNTSNak  // NTS request with a cookie that does not open: KoD NTSN
	numResults
)

var resultNames = [numResults]string{"answered", "kod", "ratelimited", "denied", "invalid", "ignored_mode", "unauthenticated", "nts_failed", "nts_nak"}

// refidRATE is the kiss code of a rate-limit KoD.
var refidRATE = binary.BigEndian.Uint32([]byte("RATE"))

// policy is the part of the config the packet path reads; swapped whole
// on reload.
type policy struct {
	allow []netip.Prefix
	rate  rateParams
	// ntsRequired: plain (unauthenticated) requests get no answer.
	ntsRequired bool
}

func (p *policy) allowed(a netip.Addr) bool {
	a = a.Unmap()
	for _, pr := range p.allow {
		if pr.Contains(a) {
			return true
		}
	}
	return false
}

// responder answers client requests from the clock model. It holds no
// socket: respond is the whole packet path after the read, so the fuzz
// target and the unit tests drive it directly.
type responder struct {
	clock     Clock
	model     *model
	clients   *clientTable
	precision int8
	policy    func() *policy
	nts       *ntsState // nil: NTS off, extension fields ignored
}

// respond handles one request: req as read, rx the receive time on the
// system clock (the kernel's timestamp), from the sender. It writes the
// reply into out (at least 48 bytes) and returns its length, 0 for none.
// The transmit timestamp is read from the clock last, just before return;
// the caller sends at once.
func (r *responder) respond(req []byte, rx time.Time, from netip.Addr, out []byte) (int, result) {
	if len(req) < ntpproto.PacketSizeBytes {
		return 0, resInvalid
	}
	pol := r.policy()
	if !pol.allowed(from) {
		return 0, resDenied
	}
	vn := req[0] >> 3 & 7
	if vn < 1 || vn > 4 {
		return 0, resInvalid
	}
	if req[0]&7 != modeClient {
		// Modes 6 and 7 are ntpq/ntpdc control (amplification vectors),
		// 1, 2 and 5 symmetric and broadcast associations airgapd does
		// not keep, 4 a reply nobody asked for: no answer to any of them.
		return 0, resMode
	}
	var q ntpproto.Packet
	// Without NTS, extension fields and MACs past the header are ignored.
	if err := q.UnmarshalBinary(req[:ntpproto.PacketSizeBytes]); err != nil {
		return 0, resInvalid
	}
	var full *ntpproto.Packet // an NTS request, parsed whole
	if r.nts != nil && len(req) > ntpproto.PacketSizeBytes {
		var f ntpproto.Packet
		if f.UnmarshalBinary(req) == nil && ntpproto.HasNTSField(f.ExtensionFields) {
			full = &f
		}
	}
	if full == nil && pol.ntsRequired {
		r.nts.fail("unauthenticated")
		return 0, resUnauth
	}
	switch r.clients.admit(from.Unmap(), rx, pol.rate) {
	case verdictDrop:
		return 0, resRateDropped
	case verdictKoD:
		return r.kod(&q, vn, rx, out), resKoD
	}
	var nreq *ntsRequest
	if full != nil {
		var err error
		if nreq, err = parseNTS(r.nts.keys, full); err != nil {
			r.nts.fail(err.Error())
			if errors.Is(err, errNTSCookie) && nreq != nil {
				return r.nak(&q, vn, rx, nreq.uid, out), resNTSNak
			}
			return 0, resNTSFail
		}
	}

	p := r.model.params()
	a := ntpproto.Packet{
		Settings:       p.leap<<6 | vn<<3 | modeServer,
		Stratum:        p.stratum,
		Poll:           q.Poll,
		Precision:      r.precision,
		RootDelay:      shortFormat(p.rootDelay),
		RootDispersion: shortFormat(p.rootDispAt(rx)),
		ReferenceID:    p.refID,
		OrigTimeSec:    q.TxTimeSec,
		OrigTimeFrac:   q.TxTimeFrac,
	}
	a.RxTimeSec, a.RxTimeFrac = ntpTime(p.served(rx))
	if !p.refNow {
		a.RefTimeSec, a.RefTimeFrac = ntpTime(p.refTime)
	}
	if nreq != nil {
		return r.respondNTS(&a, p, nreq, len(req), out)
	}
	n := put(&a, out)
	// Last: the transmit timestamp (and, in local mode, the reference
	// time just before it, as chronyd serves `local`).
	tx := p.served(r.clock.Now())
	if p.refNow {
		s, f := ntpTime(tx.Add(-time.Millisecond))
		binary.BigEndian.PutUint32(out[16:], s)
		binary.BigEndian.PutUint32(out[20:], f)
	}
	s, f := ntpTime(tx)
	binary.BigEndian.PutUint32(out[40:], s)
	binary.BigEndian.PutUint32(out[44:], f)
	return n, resAnswered
}

// kod writes a kiss-o'-death RATE reply: leap 3, stratum 0, the kiss code
// as reference ID, the origin echoed so the client accepts it.
func (r *responder) kod(q *ntpproto.Packet, vn uint8, rx time.Time, out []byte) int {
	p := r.model.params()
	a := ntpproto.Packet{
		Settings:     leapUnknown<<6 | vn<<3 | modeServer,
		Poll:         q.Poll,
		Precision:    r.precision,
		ReferenceID:  refidRATE,
		OrigTimeSec:  q.TxTimeSec,
		OrigTimeFrac: q.TxTimeFrac,
	}
	a.RxTimeSec, a.RxTimeFrac = ntpTime(p.served(rx))
	a.TxTimeSec, a.TxTimeFrac = ntpTime(p.served(r.clock.Now()))
	return put(&a, out)
}

// respondNTS finishes an authenticated reply: the timestamps go in before
// the authenticator is sealed over them.
func (r *responder) respondNTS(a *ntpproto.Packet, p *refParams, nreq *ntsRequest, reqLen int, out []byte) (int, result) {
	tx := p.served(r.clock.Now())
	if p.refNow {
		a.RefTimeSec, a.RefTimeFrac = ntpTime(tx.Add(-time.Millisecond))
	}
	a.TxTimeSec, a.TxTimeFrac = ntpTime(tx)
	n, err := sealNTS(r.nts.keys, nreq, a, reqLen, out)
	if err != nil {
		r.nts.fail("internal")
		return 0, resNTSFail
	}
	r.nts.count(&r.nts.authenticated)
	return n, resAnswered
}

// nak answers a cookie that does not open with a KoD NTSN.
func (r *responder) nak(q *ntpproto.Packet, vn uint8, rx time.Time, uid, out []byte) int {
	p := r.model.params()
	a := ntpproto.Packet{
		Settings: vn<<3 | modeServer, Poll: q.Poll, Precision: r.precision,
		OrigTimeSec: q.TxTimeSec, OrigTimeFrac: q.TxTimeFrac,
	}
	a.RxTimeSec, a.RxTimeFrac = ntpTime(p.served(rx))
	a.TxTimeSec, a.TxTimeFrac = ntpTime(p.served(r.clock.Now()))
	return ntsNAK(&a, uid, out)
}

// put serialises a plain 48-octet header into out (at least 48 bytes)
// without allocating, as facebook/time's Packet.Bytes lays it out.
func put(a *ntpproto.Packet, out []byte) int {
	_ = out[ntpproto.PacketSizeBytes-1]
	out[0], out[1], out[2], out[3] = a.Settings, a.Stratum, byte(a.Poll), byte(a.Precision)
	for i, v := range [...]uint32{a.RootDelay, a.RootDispersion, a.ReferenceID, a.RefTimeSec, a.RefTimeFrac,
		a.OrigTimeSec, a.OrigTimeFrac, a.RxTimeSec, a.RxTimeFrac, a.TxTimeSec, a.TxTimeFrac} {
		binary.BigEndian.PutUint32(out[4+4*i:], v)
	}
	return ntpproto.PacketSizeBytes
}

func ntpTime(t time.Time) (uint32, uint32) {
	if t.IsZero() {
		return 0, 0
	}
	return ntpproto.Time(t)
}

// shortFormat is NTP's 16.16 fixed-point seconds, saturating.
func shortFormat(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	v := d.Seconds() * 65536
	if v >= math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(v)
}

// measurePrecision estimates the clock's precision as chronyd does: the
// log2 of the smallest step seen between successive readings.
func measurePrecision(c Clock) int8 {
	best := time.Duration(math.MaxInt64)
	prev := c.Now()
	for range 200 {
		t := c.Now()
		if d := t.Sub(prev); d > 0 && d < best {
			best = d
		}
		prev = t
	}
	if best == time.Duration(math.MaxInt64) {
		return -20
	}
	p := int(math.Ceil(math.Log2(best.Seconds())))
	return int8(max(-30, min(-6, p)))
}
