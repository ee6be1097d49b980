package ntpd

import (
	"encoding/binary"
	"math"
	"net/netip"
	"time"

	"github.com/facebook/time/ntp/chrony"
)

// chrony's command protocol (cmdmon), version 6, as chronyc speaks it over
// UDP: a 20-byte request header and the command's data, padded by the
// client so that the request is at least as long as its reply (no
// amplification); a 28-byte reply header and the reply's data, big-endian.
// The header layouts are facebook/time's ntp/chrony RequestHead and
// ReplyHead; that package is a client, so the reply bodies are encoded here
// from the protocol's field layout.

const (
	cmdVersion      = 6
	cmdPktRequest   = 1
	cmdPktReply     = 2
	cmdRequestHead  = 20 // version … pad2: chrony.RequestHead
	cmdReplyHead    = 28 // version … pad5: chrony.ReplyHead
	cmdIPAddrLength = 20 // 16-byte address, family, padding: chrony.IPAddr
)

// Request commands airgapd answers (chrony's REQ_* numbers; facebook/time
// keeps them unexported).
const (
	cmdNull        chrony.CommandType = 0
	cmdNSources    chrony.CommandType = 14
	cmdSourceData  chrony.CommandType = 15
	cmdTracking    chrony.CommandType = 33
	cmdSourceStats chrony.CommandType = 34
	cmdActivity    chrony.CommandType = 44
	cmdSourceName  chrony.CommandType = 65 // chronyc sourcename ADDR, sources -N
)

// rpySourceName is RPY_NTP_SOURCE_NAME: the name the source was configured
// with, NUL-padded to cmdSourceNameLength.
const (
	rpySourceName       chrony.ReplyType = 19
	cmdSourceNameLength                  = 256
)

// Reply statuses (chrony's STT_*) and the reply type of a bare header.
const (
	sttSuccess       chrony.ResponseStatusType = 0
	sttUnauth        chrony.ResponseStatusType = 2 // chronyc: "501 Not authorised"
	sttNoSuchSource  chrony.ResponseStatusType = 4
	sttBadPktVersion chrony.ResponseStatusType = 18
	sttBadPktLength  chrony.ResponseStatusType = 19
	rpyNull          chrony.ReplyType          = 1
)

// cmdReplyLength is the reply length of each answered command, which is
// also the least request length accepted for it (chronyc pads to it).
var cmdReplyLength = map[chrony.CommandType]int{
	cmdNull:        cmdReplyHead,
	cmdNSources:    cmdReplyHead + 4,
	cmdSourceData:  cmdReplyHead + cmdIPAddrLength + 6*2 + 4 + 3*4,
	cmdTracking:    cmdReplyHead + 4 + cmdIPAddrLength + 2*2 + 12 + 9*4,
	cmdSourceStats: cmdReplyHead + 4 + cmdIPAddrLength + 3*4 + 5*4,
	cmdActivity:    cmdReplyHead + 5*4,
	cmdSourceName:  cmdReplyHead + cmdSourceNameLength,
}

// cmdRequest is a parsed request header plus the index argument of the
// per-source commands.
type cmdRequest struct {
	head  chrony.RequestHead
	index int32 // N_SOURCES order; SOURCE_DATA and SOURCESTATS only
	// addr is the IPAddr argument of NTP_SOURCE_NAME; invalid otherwise.
	addr netip.Addr
}

// parseCmdRequest reads a request. ok is false for what gets no reply at
// all: too short for a reply header, not a request, or reserved fields
// set (chronyd drops those too).
func parseCmdRequest(b []byte) (req cmdRequest, ok bool) {
	if len(b) < cmdReplyHead {
		return req, false
	}
	h := &req.head
	h.Version, h.PKTType, h.Res1, h.Res2 = b[0], chrony.PacketType(b[1]), b[2], b[3]
	h.Command = chrony.CommandType(binary.BigEndian.Uint16(b[4:]))
	h.Attempt = binary.BigEndian.Uint16(b[6:])
	h.Sequence = binary.BigEndian.Uint32(b[8:])
	if h.PKTType != cmdPktRequest || h.Res1 != 0 || h.Res2 != 0 {
		return req, false
	}
	if len(b) >= cmdRequestHead+4 {
		req.index = int32(binary.BigEndian.Uint32(b[cmdRequestHead:]))
	}
	if len(b) >= cmdRequestHead+cmdIPAddrLength {
		ip := b[cmdRequestHead : cmdRequestHead+16]
		switch binary.BigEndian.Uint16(b[cmdRequestHead+16:]) {
		case chrony.IPAddrInet4:
			req.addr = netip.AddrFrom4([4]byte(ip[:4]))
		case chrony.IPAddrInet6:
			req.addr = netip.AddrFrom16([16]byte(ip))
		}
	}
	return req, true
}

// cmdReply builds a reply: the header, then the body's fields.
type cmdReply struct {
	b []byte
}

func newCmdReply(buf []byte, req cmdRequest, status chrony.ResponseStatusType, reply chrony.ReplyType) *cmdReply {
	b := append(buf[:0], cmdVersion, cmdPktReply, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(req.head.Command))
	b = binary.BigEndian.AppendUint16(b, uint16(reply))
	b = binary.BigEndian.AppendUint16(b, uint16(status))
	b = append(b, 0, 0, 0, 0, 0, 0) // pad1-3
	b = binary.BigEndian.AppendUint32(b, req.head.Sequence)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0) // pad4-5
	return &cmdReply{b: b}
}

func (r *cmdReply) u16(v uint16) { r.b = binary.BigEndian.AppendUint16(r.b, v) }
func (r *cmdReply) u32(v uint32) { r.b = binary.BigEndian.AppendUint32(r.b, v) }
func (r *cmdReply) i32(v int32)  { r.u32(uint32(v)) }
func (r *cmdReply) float(v float64) {
	r.u32(encodeChronyFloat(v))
}

// addr writes a chrony IPAddr: an IPv4 or IPv6 address, or unspecified.
func (r *cmdReply) addr(a netip.Addr) {
	var ip [16]byte
	family := chrony.IPAddrUnspec
	switch {
	case a.Is4():
		family = chrony.IPAddrInet4
		v4 := a.As4()
		copy(ip[:], v4[:])
	case a.Is6():
		family = chrony.IPAddrInet6
		ip = a.As16()
	}
	r.b = append(r.b, ip[:]...)
	r.u16(family)
	r.u16(0)
}

// timespec writes chrony's Timespec: seconds split in high and low 32 bits,
// then nanoseconds. The zero time is all zeros.
func (r *cmdReply) timespec(t time.Time) {
	if t.IsZero() {
		r.b = append(r.b, make([]byte, 12)...)
		return
	}
	sec := uint64(t.Unix())
	r.u32(uint32(sec >> 32))
	r.u32(uint32(sec))
	r.u32(uint32(t.Nanosecond()))
}

// chrony's 32-bit float: a 7-bit signed exponent and a 25-bit signed
// coefficient, value = coefficient × 2^(exponent − 25).
const (
	cfExpBits  = 7
	cfCoefBits = 32 - cfExpBits
	cfExpMin   = -(1 << (cfExpBits - 1))
	cfExpMax   = 1<<(cfExpBits-1) - 1
	cfCoefMax  = 1<<(cfCoefBits-1) - 1
)

// encodeChronyFloat encodes v with the largest coefficient that fits,
// saturating beyond the format's range. NaN encodes as 0.
func encodeChronyFloat(v float64) uint32 {
	if v == 0 || math.IsNaN(v) {
		return 0
	}
	if math.IsInf(v, 0) {
		v = math.Copysign(math.MaxFloat64, v)
	}
	_, e := math.Frexp(v) // v = frac × 2^e, 0.5 ≤ |frac| < 1
	exp := e + 1          // so |coef| = |frac| × 2^24 < 2^24
	coef := math.Round(math.Ldexp(v, cfCoefBits-exp))
	if math.Abs(coef) > cfCoefMax { // rounded up to 2^24
		exp++
		coef = math.Round(math.Ldexp(v, cfCoefBits-exp))
	}
	switch {
	case exp > cfExpMax:
		exp, coef = cfExpMax, math.Copysign(cfCoefMax, v)
	case exp < cfExpMin:
		exp = cfExpMin
		coef = math.Round(math.Ldexp(v, cfCoefBits-exp))
	}
	return uint32(exp)<<cfCoefBits | uint32(int32(coef))&(1<<cfCoefBits-1)
}
