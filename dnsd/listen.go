package dnsd

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// ednsSize is the UDP payload size airgapd advertises and uses upstream:
// 1232 bytes avoids IP fragmentation (DNS Flag Day 2020).
const ednsSize = 1232

// maxInFlight bounds the queries being worked on at once. miekg/dns v1
// starts a goroutine per UDP packet with no limit; a flood would exhaust
// memory. Past the bound, packets are dropped and counted.
const maxInFlight = 4096

// udpReaders is how many goroutines read each UDP socket, so both cores
// take packets off it.
const udpReaders = 2

// serveUDP reads packets until the socket is closed.
func (s *Server) serveUDP(ctx context.Context, pc net.PacketConn) error {
	buf := make([]byte, 65535)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return nil
			}
			s.log.Debug("udp read", "err", err)
			continue
		}
		if n < 12 { // shorter than a header: not DNS
			s.stats.malformed.Add(1)
			continue
		}
		pkt := make([]byte, n)
		copy(pkt, buf[:n])
		select {
		case s.inflight <- struct{}{}:
			go func() {
				defer func() { <-s.inflight }()
				s.handleUDP(ctx, pc, from, pkt)
			}()
		default:
			s.stats.dropped.Add(1)
		}
	}
}

func (s *Server) handleUDP(ctx context.Context, pc net.PacketConn, from net.Addr, pkt []byte) {
	client := addrOf(from)
	req := new(dns.Msg)
	if err := req.Unpack(pkt); err != nil {
		s.stats.malformed.Add(1)
		if resp := formErr(pkt); resp != nil {
			pc.WriteTo(resp, from)
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
	pc.WriteTo(out, from)
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
		s.stats.record(s, client, req, m, "error", began)
		return m
	}
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		s.stats.record(s, client, req, m, "error", began)
		return m
	}
	if opt := req.IsEdns0(); opt != nil && opt.Version() != 0 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeBadVers)
		m.SetEdns0(ednsSize, opt.Do())
		s.stats.record(s, client, req, m, "error", began)
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
	s.stats.record(s, client, req, resp, q.Source, began)
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
		size = dns.MaxMsgSize
	}
	resp.Truncate(size)
	return resp.Pack()
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
