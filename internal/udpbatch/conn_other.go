//go:build !linux

package udpbatch

import (
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Conn reads datagrams a batch at a time through x/net (one datagram per
// call where the system has no recvmmsg) and sends each reply at once.
type Conn struct {
	uc    *net.UDPConn
	batch interface {
		ReadBatch(ms []ipv4.Message, flags int) (int, error)
	}
	msgs []ipv4.Message
}

// New wraps uc for batches of up to batch datagrams of up to size bytes.
func New(uc *net.UDPConn, batch, size, oob int) (*Conn, error) {
	b := &Conn{uc: uc, msgs: make([]ipv4.Message, batch)}
	if a, ok := uc.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil {
		b.batch = ipv6.NewPacketConn(uc)
	} else {
		b.batch = ipv4.NewPacketConn(uc)
	}
	for i := range b.msgs {
		b.msgs[i].Buffers = [][]byte{make([]byte, size)}
		b.msgs[i].OOB = make([]byte, oob)
	}
	return b, nil
}

// Read waits for at least one datagram and returns how many it took.
func (b *Conn) Read() (int, error) { return b.batch.ReadBatch(b.msgs, 0) }

// Packet returns datagram i of the last read: payload, control messages
// and sender.
func (b *Conn) Packet(i int) ([]byte, []byte, netip.AddrPort) {
	m := &b.msgs[i]
	var from netip.AddrPort
	if ua, ok := m.Addr.(*net.UDPAddr); ok {
		from = ua.AddrPort()
	}
	return m.Buffers[0][:m.N], m.OOB[:m.NN], from
}

// Queue sends p to the sender of datagram i at once; a failed send loses
// that reply, as Flush skips one on Linux.
func (b *Conn) Queue(i int, p, oob []byte) {
	_, _, to := b.Packet(i)
	b.uc.WriteMsgUDPAddrPort(p, oob, to)
}

// Flush has nothing to send: Queue sent every reply.
func (b *Conn) Flush() error { return nil }
