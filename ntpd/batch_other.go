//go:build !linux

package ntpd

import (
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// batchConn reads requests a batch at a time through x/net (one datagram
// per call where the system has no recvmmsg) and sends each reply at once.
type batchConn struct {
	uc    *net.UDPConn
	batch interface {
		ReadBatch(ms []ipv4.Message, flags int) (int, error)
	}
	msgs []ipv4.Message
}

func newBatchConn(uc *net.UDPConn, batch, size, oob int) (*batchConn, error) {
	b := &batchConn{uc: uc, msgs: make([]ipv4.Message, batch)}
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

func (b *batchConn) read() (int, error) { return b.batch.ReadBatch(b.msgs, 0) }

func (b *batchConn) packet(i int) ([]byte, []byte, netip.AddrPort) {
	m := &b.msgs[i]
	var from netip.AddrPort
	if ua, ok := m.Addr.(*net.UDPAddr); ok {
		from = ua.AddrPort()
	}
	return m.Buffers[0][:m.N], m.OOB[:m.NN], from
}

func (b *batchConn) send(i int, p, oob []byte) error {
	_, _, to := b.packet(i)
	_, _, err := b.uc.WriteMsgUDPAddrPort(p, oob, to)
	return err
}

func (b *batchConn) queue(i int, p, oob []byte) { b.send(i, p, oob) }

func (b *batchConn) flush() error { return nil }
