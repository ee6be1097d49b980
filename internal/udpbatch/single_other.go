//go:build !linux

package udpbatch

import (
	"net"
	"net/netip"
	"syscall"
)

// Send writes p as one datagram on the connected socket under rc.
func Send(rc syscall.RawConn, p []byte) error {
	var err error
	werr := rc.Write(func(fd uintptr) bool {
		_, err = syscall.Write(int(fd), p)
		return err != syscall.EAGAIN
	})
	if werr != nil {
		return werr
	}
	return err
}

// SendTo writes p as one datagram to `to`, with oob as its control
// messages.
func SendTo(rc syscall.RawConn, p, oob []byte, to netip.AddrPort) error {
	var sa syscall.Sockaddr
	if a := to.Addr(); a.Is4() {
		sa = &syscall.SockaddrInet4{Port: int(to.Port()), Addr: a.As4()}
	} else {
		sa = &syscall.SockaddrInet6{Port: int(to.Port()), Addr: a.As16()}
	}
	var err error
	werr := rc.Write(func(fd uintptr) bool {
		err = syscall.Sendmsg(int(fd), p, oob, sa, 0)
		return err != syscall.EAGAIN
	})
	if werr != nil {
		return werr
	}
	return err
}

// Receiver reads one datagram at a time from a connected socket.
type Receiver struct {
	uc  *net.UDPConn
	buf []byte
}

// NewReceiver reads from uc datagrams of up to size bytes.
func NewReceiver(uc *net.UDPConn, size int) (*Receiver, error) {
	return &Receiver{uc: uc, buf: make([]byte, size)}, nil
}

// Read waits for the next datagram and returns it; the slice is valid
// until the next Read.
func (r *Receiver) Read() ([]byte, error) {
	n, err := r.uc.Read(r.buf)
	if err != nil {
		return nil, err
	}
	return r.buf[:n], nil
}
