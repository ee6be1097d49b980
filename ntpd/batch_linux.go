package ntpd

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchConn reads requests a batch per recvmmsg and sends the replies,
// with no allocation per packet: the headers, addresses, buffers and the
// closures handed to the runtime's poller are made once per reader. The
// sender's address is echoed back as the kernel wrote it.
type batchConn struct {
	rc    syscall.RawConn
	hdrs  []unix.Mmsghdr
	names []unix.RawSockaddrInet6 // big enough for either family
	iovs  []unix.Iovec
	bufs  [][]byte
	oobs  [][]byte

	// The reply being sent (send), and the poller callbacks.
	out     unix.Msghdr
	outIov  unix.Iovec
	n       int
	errno   syscall.Errno
	readFn  func(fd uintptr) bool
	writeFn func(fd uintptr) bool
}

func newBatchConn(uc *net.UDPConn, batch, size, oob int) (*batchConn, error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("ntp: raw socket %s: %w", uc.LocalAddr(), err)
	}
	b := &batchConn{rc: rc, hdrs: make([]unix.Mmsghdr, batch), names: make([]unix.RawSockaddrInet6, batch),
		iovs: make([]unix.Iovec, batch), bufs: make([][]byte, batch), oobs: make([][]byte, batch)}
	for i := range batch {
		b.bufs[i], b.oobs[i] = make([]byte, size), make([]byte, oob)
		b.iovs[i].Base, b.iovs[i].Len = &b.bufs[i][0], uint64(size)
	}
	b.out.Iov, b.out.Iovlen = &b.outIov, 1
	b.readFn = func(fd uintptr) bool {
		for i := range b.hdrs {
			h := &b.hdrs[i].Hdr
			h.Name, h.Namelen = (*byte)(unsafe.Pointer(&b.names[i])), unix.SizeofSockaddrInet6
			h.Iov, h.Iovlen = &b.iovs[i], 1
			h.Control, h.Controllen = &b.oobs[i][0], uint64(len(b.oobs[i]))
			h.Flags = 0
		}
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(len(b.hdrs)), unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EAGAIN || e == unix.EINTR {
			return false // the poller waits for the next datagram
		}
		b.n, b.errno = int(n), e
		return true
	}
	b.writeFn = func(fd uintptr) bool {
		_, _, e := unix.Syscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&b.out)), 0)
		if e == unix.EAGAIN || e == unix.EINTR {
			return false
		}
		b.errno = e
		return true
	}
	return b, nil
}

// read waits for at least one datagram and returns how many it took.
func (b *batchConn) read() (int, error) {
	if err := b.rc.Read(b.readFn); err != nil {
		return 0, err
	}
	if b.errno != 0 {
		return 0, b.errno
	}
	return b.n, nil
}

// packet returns datagram i of the last read: payload, control messages
// and sender.
func (b *batchConn) packet(i int) ([]byte, []byte, netip.AddrPort) {
	h := &b.hdrs[i]
	return b.bufs[i][:h.Len], b.oobs[i][:h.Hdr.Controllen], sockaddrPort(&b.names[i], h.Hdr.Namelen)
}

// send sends p to the sender of datagram i, with oob as its control
// message (the source address on a wildcard socket), at once.
func (b *batchConn) send(i int, p, oob []byte) error {
	b.out.Name, b.out.Namelen = (*byte)(unsafe.Pointer(&b.names[i])), b.hdrs[i].Hdr.Namelen
	b.outIov.Base, b.outIov.Len = &p[0], uint64(len(p))
	b.out.Control, b.out.Controllen = nil, 0
	if len(oob) > 0 {
		b.out.Control, b.out.Controllen = &oob[0], uint64(len(oob))
	}
	b.errno = 0
	if err := b.rc.Write(b.writeFn); err != nil {
		return err
	}
	if b.errno != 0 {
		return b.errno
	}
	return nil
}

func sockaddrPort(sa *unix.RawSockaddrInet6, n uint32) netip.AddrPort {
	switch {
	case sa.Family == unix.AF_INET6 && n >= unix.SizeofSockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), ntohs(sa.Port))
	case sa.Family == unix.AF_INET && n >= unix.SizeofSockaddrInet4:
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(s4.Addr), ntohs(s4.Port))
	}
	return netip.AddrPort{}
}

// ntohs reads a port as the kernel stores it, in network order.
func ntohs(p uint16) uint16 { return binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&p))[:]) }
