package dnsd

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/airgapd/airgapd/internal/udpbatch"
	"github.com/airgapd/airgapd/internal/udpdst"
)

// ednsSize is the UDP payload size airgapd advertises and uses upstream:
// 1232 bytes avoids IP fragmentation (DNS Flag Day 2020).
const ednsSize = 1232

// maxInFlight bounds the queries being worked on at once. miekg/dns v1
// starts a goroutine per UDP packet with no limit; a flood would exhaust
// memory. Past the bound, packets are dropped and counted.
const maxInFlight = 4096

// udpReaders is how many goroutines read each UDP socket: one per CPU Go
// may use, so every core takes packets off it and a server pinned to one
// core (taskset, a cgroup quota) runs one reader, not readers that only
// take turns.
func udpReaders() int { return max(1, runtime.GOMAXPROCS(0)) }

// udpSocket is one UDP socket server handed in, as the read and write
// paths see it.
type udpSocket struct {
	pc net.PacketConn
	uc *net.UDPConn    // nil when pc is not a *net.UDPConn
	rc syscall.RawConn // uc's, for raw single replies (udpbatch.SendTo)
	// dst: the socket is bound to a wildcard and reads each request's
	// destination (udpdst), so replies leave from the address asked.
	dst bool
	v6  bool // an IPv6 (maybe dual-stack) socket: the control messages' family
}

// udpPeer is where a reply goes and the address it must come from.
type udpPeer struct {
	from netip.AddrPort
	dst  udpdst.Dest // zero unless the socket reads destinations
}

func (s *Server) newUDPSocket(pc net.PacketConn) udpSocket {
	sock := udpSocket{pc: pc}
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		return sock
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return sock // replies leave through pc
	}
	sock.uc, sock.rc = uc, rc
	if a, ok := uc.LocalAddr().(*net.UDPAddr); ok {
		sock.v6 = a.IP.To4() == nil
	}
	on, err := udpdst.Enable(uc)
	if err != nil {
		s.log.Warn("replies on this wildcard socket leave from the route's address, not the one asked", "listen", uc.LocalAddr().String(), "err", err)
	}
	sock.dst = on
	return sock
}

// serveUDP reads packets until the socket is closed. Cache hits are
// answered right here from the entry's wire form, a batch of packets per
// system call each way (recvmmsg/sendmmsg) when the platform has them;
// everything else goes to a goroutine of its own, within the in-flight
// bound.
func (s *Server) serveUDP(ctx context.Context, sock udpSocket) error {
	if sock.uc != nil {
		bc, err := udpbatch.New(sock.uc, udpBatch, udpMaxQuery, udpdst.OOBSpace)
		if err == nil {
			return s.serveUDPBatch(ctx, sock, bc)
		}
		s.log.Warn("udp: reading one packet per system call", "listen", sock.uc.LocalAddr().String(), "err", err)
	}
	buf := make([]byte, 65535)
	for {
		n, a, err := sock.pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return nil
			}
			s.log.Debug("udp read", "err", err)
			continue
		}
		from, _ := netip.ParseAddrPort(a.String())
		peer := udpPeer{from: from}
		hits := hitBatch{began: s.now()}
		if out := s.udpPacket(ctx, sock, buf[:n], peer, nil, &hits); out != nil {
			sock.write(out, peer)
		}
		hits.flush(s)
	}
}

// udpBatch is how many packets one system call reads or writes.
const udpBatch = 32

// udpMaxQuery is the largest query read in batch mode; a longer one is
// not a query anyone sends and is dropped as malformed.
const udpMaxQuery = 4096

func (s *Server) serveUDPBatch(ctx context.Context, sock udpSocket, bc *udpbatch.Conn) error {
	// One reply buffer and control-message buffer, reused for every reply
	// (Queue copies them): a cache hit allocates nothing here.
	reply := make([]byte, ednsSize)
	replyOOB := make([]byte, 0, udpdst.OOBSpace)
	var hits hitBatch
	for {
		n, err := bc.Read()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return nil
			}
			s.log.Debug("udp read", "err", err)
			continue
		}
		hits.began = s.now()
		for i := range n {
			pkt, oob, from := bc.Packet(i)
			if !from.IsValid() || len(pkt) == udpMaxQuery {
				s.stats.malformed.Add(1)
				continue
			}
			peer := udpPeer{from: from}
			if sock.dst {
				peer.dst, _ = udpdst.Parse(oob)
			}
			if resp := s.udpPacket(ctx, sock, pkt, peer, reply, &hits); resp != nil {
				replyOOB = udpdst.AppendSource(replyOOB[:0], peer.dst, sock.v6)
				bc.Queue(i, resp, replyOOB)
			}
		}
		if err := bc.Flush(); err != nil {
			s.log.Debug("udp write", "err", err)
		}
		hits.flush(s)
	}
}

// udpPacket returns the fast-path answer for pkt (in dst's space, the hit
// counted in hits), or hands pkt to a
// goroutine (copied, since pkt is the reader's buffer) and returns nil.
func (s *Server) udpPacket(ctx context.Context, sock udpSocket, pkt []byte, peer udpPeer, dst []byte, hits *hitBatch) []byte {
	if len(pkt) < 12 { // shorter than a header: not DNS
		s.stats.malformed.Add(1)
		return nil
	}
	client := peer.from.Addr().Unmap()
	switch s.pipe.Load().limiter.check(client) {
	case drop:
		s.stats.rateLimited.Add(1)
		return nil
	case slip:
		s.stats.rateLimited.Add(1)
		return slipReply(pkt)
	}
	if out := s.fastAnswerTo(dst, pkt, client, hits); out != nil {
		return out
	}
	own := make([]byte, len(pkt))
	copy(own, pkt)
	job := udpJob{sock: sock, peer: peer, pkt: own}
	select {
	case s.work <- job: // an idle worker takes it
		return nil
	default:
	}
	select {
	case s.inflight <- struct{}{}:
		go s.udpWorker(ctx, job)
	default:
		s.stats.dropped.Add(1)
	}
	return nil
}

// udpJob is a query for the full pipeline.
type udpJob struct {
	sock udpSocket
	peer udpPeer
	pkt  []byte
}

// workerIdle is how long a worker waits for its next query before it ends.
const workerIdle = 5 * time.Second

// udpWorker answers job, then further queries handed to it, until none
// came for workerIdle. Reusing a worker, not starting a goroutine per
// query, keeps the stack the pipeline grew it to: a fresh goroutine's
// stack was copied twice or three times on the way through the parser,
// cache and forwarder. Workers hold in-flight slots, so maxInFlight still
// bounds the queries being worked on.
func (s *Server) udpWorker(ctx context.Context, job udpJob) {
	defer func() { <-s.inflight }()
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
		s.handleUDP(ctx, job.sock, job.peer, job.pkt)
		t.Reset(workerIdle)
		select {
		case job = <-s.work:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// write sends one reply, from the address the request was sent to when the
// socket reads destinations.
func (sock udpSocket) write(b []byte, peer udpPeer) {
	if sock.uc == nil {
		sock.pc.WriteTo(b, net.UDPAddrFromAddrPort(peer.from))
		return
	}
	var oob []byte
	if sock.dst && peer.dst.IsValid() {
		var buf [64]byte
		oob = udpdst.AppendSource(buf[:0], peer.dst, sock.v6)
	}
	udpbatch.SendTo(sock.rc, b, oob, peer.from)
}

func (s *Server) handleUDP(ctx context.Context, sock udpSocket, peer udpPeer, pkt []byte) {
	client := peer.from.Addr().Unmap()
	req := new(dns.Msg)
	if err := req.Unpack(pkt); err != nil {
		s.stats.malformed.Add(1)
		if resp := formErr(pkt); resp != nil {
			sock.write(resp, peer)
		}
		return
	}
	resp := s.serve(ctx, req, client, false)
	if resp == nil {
		return
	}
	out, err := s.pack(req, resp, false)
	if err != nil {
		s.log.Warn("pack reply", "err", err, "name", req.Question[0].Name)
		return
	}
	sock.write(out, peer)
}

// tcpHandler adapts the pipeline to miekg/dns's TCP server, which handles
// pipelined queries, idle and read timeouts.
func (s *Server) tcpHandler(ctx context.Context) dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		client := addrOf(w.RemoteAddr())
		if len(req.Question) == 1 && (req.Question[0].Qtype == dns.TypeAXFR || req.Question[0].Qtype == dns.TypeIXFR) {
			s.transfer(w, req, client)
			return
		}
		resp := s.serve(ctx, req, client, true)
		if resp == nil {
			return
		}
		out, err := s.pack(req, resp, true)
		if err != nil {
			s.log.Warn("pack reply", "err", err)
			return
		}
		w.Write(out)
	})
}

// serve runs one query through the pipeline, with accounting. A nil reply
// means: send nothing.
func (s *Server) serve(ctx context.Context, req *dns.Msg, client netip.Addr, tcp bool) *dns.Msg {
	began := time.Now()
	if req.Response {
		s.stats.malformed.Add(1)
		return nil // never answer answers (reflection loops)
	}
	if req.Opcode != dns.OpcodeQuery {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeNotImplemented)
		s.stats.recordMsg(s, client, req, m, "error", began)
		return m
	}
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		s.stats.recordMsg(s, client, req, m, "error", began)
		return m
	}
	if opt := req.IsEdns0(); opt != nil && opt.Version() != 0 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeBadVers)
		m.SetEdns0(ednsSize, opt.Do())
		s.stats.recordMsg(s, client, req, m, "error", began)
		return m
	}
	q := &Query{Msg: req, Client: client, TCP: tcp}
	p := s.pipe.Load()
	resp, err := p.handler.Resolve(ctx, q)
	if err != nil || resp == nil {
		if err != nil {
			s.log.Debug("resolve", "name", req.Question[0].Name, "err", err)
		}
		resp = reply(req, dns.RcodeServerFailure)
		q.Source = "error"
	}
	s.stats.recordMsg(s, client, req, resp, q.Source, began)
	return resp
}

// pack finishes a reply for the wire: EDNS0 echoed with our size and the
// client's DO bit, compression on (miekg/dns leaves it off), and for UDP
// truncation to what the client can take, with TC set.
func (s *Server) pack(req, resp *dns.Msg, tcp bool) ([]byte, error) {
	resp.Compress = true
	size := dns.MinMsgSize
	// Drop any OPT the upstream sent; ours describes this hop.
	resp.Extra = removeOPT(resp.Extra)
	if opt := req.IsEdns0(); opt != nil {
		size = int(max(min(opt.UDPSize(), ednsSize), dns.MinMsgSize))
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(ednsSize)
		if opt.Do() {
			o.SetDo()
		}
		resp.Extra = append(resp.Extra, o)
	}
	if tcp {
		resp.Truncate(dns.MaxMsgSize)
		return resp.Pack()
	}
	answers, authority := len(resp.Answer), len(resp.Ns)
	resp.Truncate(size)
	switch {
	case len(resp.Answer) < answers || len(resp.Ns) < authority:
		// As BIND: a truncated UDP answer carries the question and OPT
		// only. The client asks again over TCP either way, and a partial
		// RRset would multiply what a spoofed query reflects.
		resp.Answer, resp.Ns = nil, nil
		resp.Extra = onlyOPT(resp.Extra)
		resp.Truncated = true
	case resp.Truncated:
		// Only additional data was left out: that is no reason for TC
		// (RFC 2181 §9), though miekg/dns sets it.
		resp.Truncated = false
	}
	return resp.Pack()
}

// onlyOPT keeps the OPT record of an additional section.
func onlyOPT(rrs []dns.RR) []dns.RR {
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			return []dns.RR{rr}
		}
	}
	return nil
}

func removeOPT(rrs []dns.RR) []dns.RR {
	out := rrs[:0:0]
	for _, rr := range rrs {
		if rr.Header().Rrtype != dns.TypeOPT {
			out = append(out, rr)
		}
	}
	return out
}

// slipReply is the empty, truncated answer rate limiting sends instead of
// every slip-th dropped one: a real client retries over TCP, which a
// spoofed source cannot.
func slipReply(pkt []byte) []byte {
	req := new(dns.Msg)
	if req.Unpack(pkt) != nil || req.Response || len(req.Question) != 1 {
		return nil
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.Truncated = true
	m.RecursionAvailable = true
	out, err := m.Pack()
	if err != nil {
		return nil
	}
	return out
}

// formErr answers a packet that did not parse with FORMERR, when at least
// its header is sane; garbage gets no answer.
func formErr(pkt []byte) []byte {
	if len(pkt) < 12 || pkt[2]&0x80 != 0 { // a response: never answer
		return nil
	}
	out := make([]byte, 12)
	copy(out, pkt[:2])          // ID
	out[2] = 0x80 | pkt[2]&0x79 // QR, keep opcode and RD
	out[3] = dns.RcodeFormatError
	return out
}

func addrOf(a net.Addr) netip.Addr {
	switch v := a.(type) {
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(v.IP)
		return ip.Unmap()
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(v.IP)
		return ip.Unmap()
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}
