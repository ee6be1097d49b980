package udpdst

import (
	"fmt"
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// OOBSpace is the control-message room a read needs for the destination
// (both kinds: a dual-stack socket may report either).
var OOBSpace = unix.CmsgSpace(unix.SizeofInet4Pktinfo) + unix.CmsgSpace(unix.SizeofInet6Pktinfo)

// Enable asks the kernel to report every datagram's destination on uc when
// uc is bound to a wildcard address, and reports whether it did. It is a
// socket option, so it holds for every duplicate of the descriptor.
func Enable(uc *net.UDPConn) (bool, error) {
	wild, v6 := wildcard(uc)
	if !wild {
		return false, nil
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return false, fmt.Errorf("destination addresses on %s: %w", uc.LocalAddr(), err)
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if v6 {
			// IPv4 datagrams on a dual-stack socket are reported in
			// this form too, with a v4-mapped address.
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
			return
		}
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return false, fmt.Errorf("destination addresses on %s: %w", uc.LocalAddr(), err)
	}
	return true, nil
}

// Parse returns the destination a read's control messages name. Other
// control messages (kernel receive timestamps) may stand beside it.
func Parse(oob []byte) (Dest, bool) {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		if h.Len < unix.SizeofCmsghdr || int(h.Len) > len(oob) {
			return Dest{}, false
		}
		data := oob[unix.CmsgLen(0):h.Len]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0]))
			return Dest{Addr: netip.AddrFrom4(pi.Addr), IfIndex: int(pi.Ifindex)}, true
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0]))
			return Dest{Addr: netip.AddrFrom16(pi.Addr), IfIndex: int(pi.Ifindex)}, true
		}
		next := unix.CmsgSpace(int(h.Len) - unix.CmsgLen(0))
		if next > len(oob) {
			break
		}
		oob = oob[next:]
	}
	return Dest{}, false
}

// AppendSource appends to b the control message that sends a reply from
// d.Addr, in the form a socket of the given family
// takes: an IPv6 socket answers an IPv4 client of a dual-stack socket with
// the IPv6 form and a v4-mapped address. A d that is not valid, or not a
// unicast address (a request to a broadcast or multicast address), appends
// nothing: the kernel then picks the source by route.
func AppendSource(b []byte, d Dest, v6 bool) []byte {
	if !d.IsValid() || d.Addr.IsMulticast() || d.Addr.Unmap() == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return b
	}
	if v6 {
		start := len(b)
		b = append(b, make([]byte, unix.CmsgSpace(unix.SizeofInet6Pktinfo))...)
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[start]))
		h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
		h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
		pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&b[start+unix.CmsgLen(0)]))
		pi.Addr = d.Addr.As16()
		if d.Addr.IsLinkLocalUnicast() {
			// A link-local address means something only on the
			// link it came in on.
			pi.Ifindex = uint32(d.IfIndex)
		}
		return b
	}
	a := d.Addr.Unmap()
	if !a.Is4() {
		return b
	}
	start := len(b)
	b = append(b, make([]byte, unix.CmsgSpace(unix.SizeofInet4Pktinfo))...)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[start]))
	h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
	pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&b[start+unix.CmsgLen(0)]))
	// Spec_dst is the source the reply leaves from. The interface is left
	// to the routing table (Ifindex 0), as for a reply from a socket bound
	// to that address: pinning it to the one the request came in on would
	// break hosts that route a client's replies another way.
	pi.Spec_dst = a.As4()
	return b
}
