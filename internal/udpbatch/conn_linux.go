package udpbatch

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Conn reads datagrams a batch per recvmmsg and sends the replies a batch
// per sendmmsg: the headers, addresses, buffers and the closures handed to
// the runtime's poller are made once. The sender's address is echoed back
// as the kernel wrote it.
//
// Both calls are made with RawSyscall6, not Syscall6: with MSG_DONTWAIT
// neither can block (an empty socket or a full buffer is EAGAIN, and the
// poller waits), and Syscall6's entersyscall lets the runtime's monitor
// hand the P to another thread during a long send. With one P that meant
// a futex wake-up, a thread switch and the monitor kept polling every
// 20 µs: under full NTP load, replies moved between three
// threads and the monitor slept 4 200 times a second; raw, one thread
// answered everything and the monitor slept 5 times a second, for 1.3×
// the replies (docs/BENCHMARKS.md).
type Conn struct {
	rc    syscall.RawConn
	hdrs  []unix.Mmsghdr
	names []unix.RawSockaddrInet6 // big enough for either family
	iovs  []unix.Iovec
	bufs  [][]byte
	oobs  [][]byte

	// The poller callbacks and what the last one saw.
	n      int
	errno  syscall.Errno
	readFn func(fd uintptr) bool

	// Replies queued for one sendmmsg (queue, flush).
	qhdrs   []unix.Mmsghdr
	qiovs   []unix.Iovec
	qbufs   [][]byte
	qoobs   [][]byte
	queued  int
	sent    int
	flushFn func(fd uintptr) bool
}

// New wraps uc for batches of up to batch datagrams of up to size bytes,
// with oob bytes of control messages each way.
func New(uc *net.UDPConn, batch, size, oob int) (*Conn, error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("raw socket %s: %w", uc.LocalAddr(), err)
	}
	b := &Conn{rc: rc, hdrs: make([]unix.Mmsghdr, batch), names: make([]unix.RawSockaddrInet6, batch),
		iovs: make([]unix.Iovec, batch), bufs: make([][]byte, batch), oobs: make([][]byte, batch)}
	for i := range batch {
		b.bufs[i], b.oobs[i] = make([]byte, size), make([]byte, oob)
		b.iovs[i].Base, b.iovs[i].Len = &b.bufs[i][0], uint64(size)
	}
	b.qhdrs, b.qiovs, b.qbufs, b.qoobs = make([]unix.Mmsghdr, batch), make([]unix.Iovec, batch), make([][]byte, batch), make([][]byte, batch)
	for i := range batch {
		b.qbufs[i], b.qoobs[i] = make([]byte, size), make([]byte, oob)
	}
	b.flushFn = func(fd uintptr) bool {
		n, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.qhdrs[b.sent])), uintptr(b.queued-b.sent), unix.MSG_DONTWAIT, 0, 0)
		if wouldBlock(e) {
			return false
		}
		b.errno = e
		if e == 0 {
			b.sent += int(n)
		}
		return true
	}
	b.readFn = func(fd uintptr) bool {
		for i := range b.hdrs {
			h := &b.hdrs[i].Hdr
			h.Name, h.Namelen = (*byte)(unsafe.Pointer(&b.names[i])), unix.SizeofSockaddrInet6
			h.Iov, h.Iovlen = &b.iovs[i], 1
			h.Control, h.Controllen = &b.oobs[i][0], uint64(len(b.oobs[i]))
			h.Flags = 0
		}
		n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(len(b.hdrs)), unix.MSG_DONTWAIT, 0, 0)
		if wouldBlock(e) {
			return false // the poller waits for the next datagram
		}
		b.n, b.errno = int(n), e
		return true
	}
	return b, nil
}

// wouldBlock: the call found the socket empty (or full) or was
// interrupted; returning false from a poller callback waits and retries.
func wouldBlock(e syscall.Errno) bool { return e == unix.EAGAIN || e == unix.EINTR }

// Read waits for at least one datagram and returns how many it took.
func (b *Conn) Read() (int, error) {
	if err := b.rc.Read(b.readFn); err != nil {
		return 0, err
	}
	if b.errno != 0 {
		return 0, b.errno
	}
	return b.n, nil
}

// Packet returns datagram i of the last read: payload, control messages
// and sender.
func (b *Conn) Packet(i int) ([]byte, []byte, netip.AddrPort) {
	h := &b.hdrs[i]
	return b.bufs[i][:h.Len], b.oobs[i][:h.Hdr.Controllen], sockaddrPort(&b.names[i], h.Hdr.Namelen)
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

// Queue copies p (and oob, the source address on a wildcard socket) to be
// sent to the sender of datagram i by the next Flush: one sendmmsg for the
// replies of a batch. p longer than the Conn's size is cut to it.
func (b *Conn) Queue(i int, p, oob []byte) {
	k := b.queued
	b.queued++
	h := &b.qhdrs[k].Hdr
	b.qiovs[k].Base, b.qiovs[k].Len = &b.qbufs[k][0], uint64(copy(b.qbufs[k], p))
	h.Name, h.Namelen = (*byte)(unsafe.Pointer(&b.names[i])), b.hdrs[i].Hdr.Namelen
	h.Iov, h.Iovlen = &b.qiovs[k], 1
	h.Control, h.Controllen = nil, 0
	if len(oob) > 0 {
		h.Control, h.Controllen = &b.qoobs[k][0], uint64(copy(b.qoobs[k], oob))
	}
}

// Flush sends the queued replies; a datagram the kernel refuses is
// skipped, the rest still go.
func (b *Conn) Flush() error {
	defer func() { b.queued = 0 }()
	for b.sent = 0; b.sent < b.queued; {
		b.errno = 0
		if err := b.rc.Write(b.flushFn); err != nil {
			return err
		}
		if b.errno != 0 {
			b.sent++ // skip the datagram the kernel refused
		}
	}
	return nil
}
