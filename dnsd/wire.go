package dnsd

import (
	"encoding/binary"
	"errors"
)

// This file reads just enough of the DNS wire format for the cache-hit fast
// path: the question and OPT of a plain query, and the TTL positions of a
// packed reply. Anything unusual makes it decline, and the full parser
// (miekg/dns) takes over.

var errDecline = errors.New("not a plain query")

// plainQuery is a query with one question and at most an OPT record.
type plainQuery struct {
	id       uint16
	rd, cd   bool
	name     string // lower case, FQDN
	nameWire []byte // the question name as the client wrote it (0x20 case)
	qtype    uint16
	qclass   uint16
	edns     bool
	udpSize  uint16
	do       bool
}

// parsePlainQuery accepts a standard query: QR=0, opcode QUERY, one
// question, no answer or authority records, and nothing in the additional
// section but one OPT of version 0 at the root.
func parsePlainQuery(pkt []byte) (plainQuery, error) {
	var q plainQuery
	if len(pkt) < 12 {
		return q, errDecline
	}
	flags := binary.BigEndian.Uint16(pkt[2:])
	if flags&0x8000 != 0 || (flags>>11)&0xF != 0 || flags&0x0200 != 0 { // QR, opcode, TC
		return q, errDecline
	}
	qd, an, ns, ar := binary.BigEndian.Uint16(pkt[4:]), binary.BigEndian.Uint16(pkt[6:]), binary.BigEndian.Uint16(pkt[8:]), binary.BigEndian.Uint16(pkt[10:])
	if qd != 1 || an != 0 || ns != 0 || ar > 1 {
		return q, errDecline
	}
	q.id = binary.BigEndian.Uint16(pkt)
	q.rd = flags&0x0100 != 0
	q.cd = flags&0x0010 != 0
	off := 12
	// The name is gathered on the stack and made a string once (a
	// strings.Builder grew, and allocated, two or three times per name).
	var name [256]byte
	n := 0
	for {
		if off >= len(pkt) {
			return q, errDecline
		}
		l := int(pkt[off])
		if l == 0 {
			off++
			break
		}
		if l > 63 || off+1+l > len(pkt) || n+l+1 > 254 {
			return q, errDecline // pointers in a question, or too long
		}
		for _, c := range pkt[off+1 : off+1+l] {
			switch {
			case c >= 'A' && c <= 'Z':
				c += 'a' - 'A'
			case c == '.' || c == '\\' || c < '!' || c > '~':
				return q, errDecline // needs escaping: leave it to miekg/dns
			}
			name[n] = c
			n++
		}
		name[n] = '.'
		n++
		off += 1 + l
	}
	if n == 0 {
		name[0] = '.'
		n = 1
	}
	q.name = string(name[:n])
	q.nameWire = pkt[12:off]
	if off+4 > len(pkt) {
		return q, errDecline
	}
	q.qtype = binary.BigEndian.Uint16(pkt[off:])
	q.qclass = binary.BigEndian.Uint16(pkt[off+2:])
	off += 4
	if ar == 1 {
		// OPT: root name, type 41, class = UDP size, TTL = ext-rcode,
		// version, flags; then RDATA (options, skipped).
		if off+11 > len(pkt) || pkt[off] != 0 || binary.BigEndian.Uint16(pkt[off+1:]) != 41 {
			return q, errDecline
		}
		q.edns = true
		q.udpSize = binary.BigEndian.Uint16(pkt[off+3:])
		if pkt[off+6] != 0 { // EDNS version
			return q, errDecline
		}
		q.do = pkt[off+7]&0x80 != 0
		rdlen := int(binary.BigEndian.Uint16(pkt[off+9:]))
		off += 11 + rdlen
	}
	if off != len(pkt) {
		return q, errDecline
	}
	switch q.qtype {
	case 251, 252, 255: // IXFR, AXFR, ANY: not for the fast path
		return q, errDecline
	}
	return q, nil
}

// appendTTLOffsets walks a packed reply and appends where each record's
// TTL is (two bytes each, big-endian), skipping OPT. It fails on anything
// malformed.
func appendTTLOffsets(dst, msg []byte) ([]byte, error) {
	if len(msg) < 12 {
		return nil, errDecline
	}
	qd := int(binary.BigEndian.Uint16(msg[4:]))
	rrs := int(binary.BigEndian.Uint16(msg[6:])) + int(binary.BigEndian.Uint16(msg[8:])) + int(binary.BigEndian.Uint16(msg[10:]))
	off := 12
	var err error
	for range qd {
		if off, err = skipName(msg, off); err != nil || off+4 > len(msg) {
			return nil, errDecline
		}
		off += 4
	}
	for range rrs {
		if off, err = skipName(msg, off); err != nil || off+10 > len(msg) {
			return nil, errDecline
		}
		rrtype := binary.BigEndian.Uint16(msg[off:])
		rdlen := int(binary.BigEndian.Uint16(msg[off+8:]))
		if rrtype != 41 {
			dst = binary.BigEndian.AppendUint16(dst, uint16(off+4))
		}
		off += 10 + rdlen
		if off > len(msg) {
			return nil, errDecline
		}
	}
	if off != len(msg) {
		return nil, errDecline
	}
	return dst, nil
}

// skipName steps over a (possibly compressed) name.
func skipName(msg []byte, off int) (int, error) {
	for {
		if off >= len(msg) {
			return 0, errDecline
		}
		l := int(msg[off])
		switch {
		case l == 0:
			return off + 1, nil
		case l&0xC0 == 0xC0: // pointer: the name ends here
			if off+2 > len(msg) {
				return 0, errDecline
			}
			return off + 2, nil
		case l > 63:
			return 0, errDecline
		}
		off += 1 + l
	}
}
