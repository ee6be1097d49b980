package udpbatch

import (
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The single-datagram calls below are raw for the reason Conn's are
// (MSG_DONTWAIT, so they cannot block; the poller waits instead), and one
// more: a system call through Syscall wakes the runtime's monitor thread
// when it sleeps, which it does whenever the process was idle. On a
// forwarded DNS query the first send did so every time (a futex wake-up,
// then the monitor polling every 20 µs on the server's core while the
// query was worked on); raw calls leave it asleep.

// Send writes p as one datagram on the connected socket under rc.
func Send(rc syscall.RawConn, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	var errno syscall.Errno
	err := rc.Write(func(fd uintptr) bool {
		_, _, errno = unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), unix.MSG_DONTWAIT, 0, 0)
		return !wouldBlock(errno)
	})
	return callResult(err, errno)
}

// SendTo writes p as one datagram to `to`, with oob as its control
// messages (a source address; none when empty). `to` is in the family the
// kernel reported the sender in: IPv4 for an IPv4 socket, IPv6 (mapped
// for IPv4 clients) for an IPv6 one.
func SendTo(rc syscall.RawConn, p, oob []byte, to netip.AddrPort) error {
	m := new(sendMsg) // one allocation for what the poller callback reads
	m.hdr.Namelen = unix.SizeofSockaddrInet6
	if a := to.Addr(); a.Is4() {
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&m.name))
		s4.Family, s4.Addr = unix.AF_INET, a.As4()
		putPort(&s4.Port, to.Port())
		m.hdr.Namelen = unix.SizeofSockaddrInet4
	} else {
		m.name.Family, m.name.Addr = unix.AF_INET6, a.As16()
		putPort(&m.name.Port, to.Port())
	}
	if len(p) > 0 {
		m.iov.Base = &p[0]
	}
	m.iov.Len = uint64(len(p))
	m.hdr.Name, m.hdr.Iov, m.hdr.Iovlen = (*byte)(unsafe.Pointer(&m.name)), &m.iov, 1
	if len(oob) > 0 {
		m.hdr.Control, m.hdr.Controllen = &oob[0], uint64(len(oob))
	}
	err := rc.Write(func(fd uintptr) bool {
		_, _, m.errno = unix.RawSyscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&m.hdr)), unix.MSG_DONTWAIT)
		return !wouldBlock(m.errno)
	})
	return callResult(err, m.errno)
}

// callResult is a poller-driven call's error: the poller's own (closed,
// deadline), else the system call's errno.
func callResult(err error, e syscall.Errno) error {
	if err != nil {
		return err
	}
	if e != 0 {
		return e
	}
	return nil
}

type sendMsg struct {
	name  unix.RawSockaddrInet6 // big enough for either family
	iov   unix.Iovec
	hdr   unix.Msghdr
	errno syscall.Errno
}

// putPort stores a port as the kernel keeps it, in network order.
func putPort(dst *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(dst))
	b[0], b[1] = byte(port>>8), byte(port)
}

// Receiver reads one datagram at a time from a connected socket, into a
// buffer of its own; it belongs to one goroutine.
type Receiver struct {
	rc    syscall.RawConn
	buf   []byte
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

// NewReceiver reads from uc datagrams of up to size bytes.
func NewReceiver(uc *net.UDPConn, size int) (*Receiver, error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	r := &Receiver{rc: rc, buf: make([]byte, size)}
	r.fn = func(fd uintptr) bool {
		n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&r.buf[0])), uintptr(len(r.buf)), unix.MSG_DONTWAIT, 0, 0)
		if wouldBlock(e) {
			return false // the poller waits for the next datagram
		}
		r.n, r.errno = int(n), e
		return true
	}
	return r, nil
}

// Read waits for the next datagram (up to the conn's read deadline) and
// returns it; the slice is valid until the next Read. An error the socket
// reported (an ICMP port unreachable) is returned as its errno.
func (r *Receiver) Read() ([]byte, error) {
	err := r.rc.Read(r.fn) // sets r.errno: read it only after
	if err := callResult(err, r.errno); err != nil {
		return nil, err
	}
	return r.buf[:r.n], nil
}
