// Package udpdst lets a UDP server bound to a wildcard address (0.0.0.0,
// [::]) answer from the address each request was sent to, as BIND, Unbound
// and chrony do. Without it the kernel picks the reply's source by route,
// so a client that asked a second address of the interface, an alias or a
// keepalived VIP gets its answer from the primary address and drops it.
//
// Enable turns on IP_PKTINFO / IPV6_RECVPKTINFO on the socket; every read
// then carries a control message naming the destination address and the
// interface, which Parse reads, and AppendSource writes the matching
// control message for the reply (sendmsg and sendmmsg take it per
// datagram). A socket bound to one address needs none of this: Enable
// leaves it alone and says so.
package udpdst

import (
	"net"
	"net/netip"
)

// Dest is where a datagram arrived: the local address it was sent to and
// the interface it came in on.
type Dest struct {
	Addr    netip.Addr
	IfIndex int
}

// IsValid reports whether d names an address.
func (d Dest) IsValid() bool { return d.Addr.IsValid() }

// wildcard reports whether uc is bound to 0.0.0.0 or [::], and whether it
// is an IPv6 socket (a dual-stack [::] one included).
func wildcard(uc *net.UDPConn) (wild, v6 bool) {
	a, ok := uc.LocalAddr().(*net.UDPAddr)
	if !ok {
		return false, false
	}
	return a.IP == nil || a.IP.IsUnspecified(), a.IP.To4() == nil
}
