package dnsd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/airgapd/airgapd/internal/udpbatch"
)

// A forwarded query used to get a socket of its own (socket, connect,
// epoll registration, close: four system calls and a poller entry for one
// datagram). Instead, each forwarder keeps a few connected UDP sockets and
// matches answers to queries by ID, as Unbound and dnsdist do. What makes a
// forged answer hard stays: a random ID per query, the question checked, and
// the source address, which the kernel checks for a connected socket. The
// source port is random per socket, and a socket is retired after
// upSocketUses queries, so the ports keep moving.
const (
	upSockets    = 4    // per forwarder
	upSocketUses = 2000 // queries before a socket is replaced
	upIdle       = 3 * time.Second
)

var errUpClosed = errors.New("upstream socket closed")

// upPool is one forwarder's connected sockets.
type upPool struct {
	addr  string
	mu    sync.Mutex
	conns [upSockets]*upConn
	next  int
}

type upConn struct {
	pool *upPool
	c    *net.UDPConn
	rc   syscall.RawConn // c's, for raw sends (udpbatch.Send)
	sent atomic.Int64

	mu      sync.Mutex
	pending map[uint16]*upWait
	retired bool // no new queries; closed when the last one is answered or gives up
	closed  bool
}

// upWait is one query waiting for its answer.
type upWait struct {
	question []byte // the question section as sent, to check the answer's
	ch       chan []byte
}

func newUpPool(addr string) *upPool { return &upPool{addr: addr} }

// conn returns a live socket to send on, dialling or replacing as needed.
func (p *upPool) conn() (*upConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := p.next
	p.next = (p.next + 1) % upSockets
	uc := p.conns[i]
	if uc != nil && uc.sent.Load() >= upSocketUses {
		uc.retire()
		uc = nil
	}
	if uc != nil {
		uc.mu.Lock()
		dead := uc.retired || uc.closed
		uc.mu.Unlock()
		if !dead {
			return uc, nil
		}
	}
	c, err := net.Dial("udp", p.addr)
	if err != nil {
		return nil, fmt.Errorf("socket to %s: %w", p.addr, err)
	}
	udp := c.(*net.UDPConn)
	rc, err := udp.SyscallConn()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("socket to %s: %w", p.addr, err)
	}
	recv, err := udpbatch.NewReceiver(udp, 65535)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("socket to %s: %w", p.addr, err)
	}
	uc = &upConn{pool: p, c: udp, rc: rc, pending: map[uint16]*upWait{}}
	p.conns[i] = uc
	go uc.read(recv)
	return uc, nil
}

// exchange sends pkt (a packed query; its ID is overwritten) and returns
// the answer's bytes: a datagram from the forwarder's address with the
// same ID and the same question, or an error when none came in time.
func (p *upPool) exchange(ctx context.Context, pkt []byte, timeout time.Duration) ([]byte, error) {
	qEnd, err := questionEnd(pkt)
	if err != nil {
		return nil, err
	}
	w := &upWait{question: pkt[12:qEnd], ch: make(chan []byte, 1)}
	var uc *upConn
	var id uint16
	// A socket may close itself (idle) between being picked and the
	// query being registered on it: then take the next one.
	for range 3 {
		if uc, err = p.conn(); err != nil {
			return nil, err
		}
		if id, err = uc.register(w); !errors.Is(err, errUpClosed) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	defer uc.unregister(id, w)
	binary.BigEndian.PutUint16(pkt, id)
	uc.sent.Add(1)
	if err := udpbatch.Send(uc.rc, pkt); err != nil {
		return nil, fmt.Errorf("send to %s: %w", p.addr, err)
	}
	t := waitTimer(timeout)
	defer putTimer(t)
	select {
	case b, ok := <-w.ch:
		if !ok {
			return nil, errUpClosed
		}
		return b, nil
	case <-t.C:
		return nil, fmt.Errorf("%s: no answer in %v", p.addr, timeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// register picks a random ID no other query on this socket waits on.
func (uc *upConn) register(w *upWait) (uint16, error) {
	uc.mu.Lock()
	defer uc.mu.Unlock()
	if uc.closed {
		return 0, errUpClosed
	}
	for range 64 {
		id := uint16(rand.Uint32())
		if _, busy := uc.pending[id]; !busy {
			uc.pending[id] = w
			return id, nil
		}
	}
	return 0, fmt.Errorf("%s: too many queries in flight on one socket", uc.pool.addr)
}

func (uc *upConn) unregister(id uint16, w *upWait) {
	uc.mu.Lock()
	defer uc.mu.Unlock()
	if uc.pending[id] == w {
		delete(uc.pending, id)
	}
	if uc.retired && len(uc.pending) == 0 {
		uc.closeLocked()
	}
}

func (uc *upConn) retire() {
	uc.mu.Lock()
	defer uc.mu.Unlock()
	uc.retired = true
	if len(uc.pending) == 0 {
		uc.closeLocked()
	}
}

func (uc *upConn) closeLocked() {
	if uc.closed {
		return
	}
	uc.closed = true
	uc.c.Close()
	for id, w := range uc.pending {
		delete(uc.pending, id)
		close(w.ch)
	}
}

// read hands each datagram to the query it answers. Anything else — an
// unknown ID, another question, a query instead of a response — is
// dropped, so a forgery cannot end the wait for the real answer. A socket
// idle for upIdle closes itself (this is what frees it when the server
// stops or the forwarder goes away).
func (uc *upConn) read(recv *udpbatch.Receiver) {
	last := uc.sent.Load()
	uc.c.SetReadDeadline(time.Now().Add(upIdle))
	for {
		buf, err := recv.Read()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				uc.mu.Lock()
				idle := len(uc.pending) == 0 && uc.sent.Load() == last
				if idle {
					uc.retired = true
					uc.closeLocked()
				}
				uc.mu.Unlock()
				if idle {
					return
				}
				last = uc.sent.Load()
				uc.c.SetReadDeadline(time.Now().Add(upIdle))
				continue
			}
			// Closed, or an ICMP error (port unreachable): either way
			// the waiting queries time out or fail over.
			uc.mu.Lock()
			closed := uc.closed
			uc.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if len(buf) < 12 || buf[2]&0x80 == 0 {
			continue
		}
		id := binary.BigEndian.Uint16(buf)
		uc.mu.Lock()
		w := uc.pending[id]
		if w == nil || !sameQuestion(buf, w.question) {
			uc.mu.Unlock()
			continue
		}
		delete(uc.pending, id)
		uc.mu.Unlock()
		w.ch <- append([]byte(nil), buf...)
	}
}

// questionEnd is where the one question of a packed message ends.
func questionEnd(pkt []byte) (int, error) {
	if len(pkt) < 12 || binary.BigEndian.Uint16(pkt[4:]) != 1 {
		return 0, errDecline
	}
	off, err := skipName(pkt, 12)
	if err != nil || off+4 > len(pkt) {
		return 0, errDecline
	}
	return off + 4, nil
}

// sameQuestion reports whether msg carries exactly the question q (the
// wire bytes sent), the name compared without regard to case.
func sameQuestion(msg, q []byte) bool {
	if binary.BigEndian.Uint16(msg[4:]) != 1 || len(msg) < 12+len(q) {
		return false
	}
	nameLen := len(q) - 4
	return equalFoldASCII(msg[12:12+nameLen], q[:nameLen]) && string(msg[12+nameLen:12+len(q)]) == string(q[nameLen:])
}

// Timers for exchanges, reused: one per forwarded query was a measurable
// share of the miss path. Since Go 1.23 a stopped timer delivers nothing
// stale, so a reused one cannot fire for the query before it.
var timers sync.Pool

func waitTimer(d time.Duration) *time.Timer {
	if t, ok := timers.Get().(*time.Timer); ok {
		t.Reset(d)
		return t
	}
	return time.NewTimer(d)
}

func putTimer(t *time.Timer) {
	t.Stop()
	timers.Put(t)
}
