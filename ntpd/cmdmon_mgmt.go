package ntpd

import (
	"encoding/binary"
	"math"
	"net/netip"

	"github.com/facebook/time/ntp/chrony"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/airgapd/airgapd/internal/conf"
)

// The management commands: `chronyc serverstats` and `chronyc clients`
// say who asks for time and how often, so chronyd keeps them off UDP
// altogether. airgapd answers them to the networks in cmdmon.mgmt (which
// must also be in cmdmon.allow) and "501 Not authorised" to everyone else.

// chrony's numbers for the two commands and their replies, as chronyc 4.3
// sends and expects them.
const (
	cmdServerStats   chrony.CommandType = 54
	cmdClientsByIdx3 chrony.CommandType = 68
	rpyServerStats3  chrony.ReplyType   = 24
	rpyClientsByIdx3 chrony.ReplyType   = 21

	cmdServerStatsLen = cmdReplyHead + 11*4
	cmdClientEntryLen = cmdIPAddrLength + 6*4 + 4 + 3*4
	cmdClientsLen     = cmdReplyHead + 3*4 + chrony.MaxClientAccessesByIndex*cmdClientEntryLen
)

var mgmtReplyLength = map[chrony.CommandType]int{
	cmdServerStats:   cmdServerStatsLen,
	cmdClientsByIdx3: cmdClientsLen,
}

func cmdMgmtOf(c CmdMon) []netip.Prefix {
	return cmdAllowOf(CmdMon{Allow: c.Mgmt})
}

func (c CmdMon) validateMgmt(ps *conf.Problems) {
	conf.CheckCIDRs(ps, "cmdmon.mgmt", c.Mgmt)
}

// answerMgmt answers serverstats and clients into r (a success header);
// ok is false when the request asks for what is not read-only (clients -r).
func (s *Server) answerMgmt(b []byte, out []byte, req cmdRequest) ([]byte, bool) {
	if req.head.Command == cmdServerStats {
		r := newCmdReply(out, req, sttSuccess, rpyServerStats3)
		s.serverStats(r)
		return r.b, true
	}
	arg := func(i int) uint32 { return binary.BigEndian.Uint32(b[cmdRequestHead+4*i:]) }
	first, n, minHits, reset := arg(0), arg(1), arg(2), arg(3)
	if reset != 0 {
		return nil, false
	}
	clients, _ := s.clients.snapshot(1000)
	r := newCmdReply(out, req, sttSuccess, rpyClientsByIdx3)
	r.u32(uint32(len(clients)))
	n = min(n, chrony.MaxClientAccessesByIndex)
	var page []ClientStatus
	next := first
	for ; int(next) < len(clients) && uint32(len(page)) < n; next++ {
		if c := clients[next]; c.Packets >= uint64(minHits) {
			page = append(page, c)
		}
	}
	r.u32(next)
	r.u32(uint32(len(page)))
	now := s.clock.Now()
	for i := range chrony.MaxClientAccessesByIndex {
		if i >= len(page) {
			r.b = append(r.b, make([]byte, cmdClientEntryLen)...)
			continue
		}
		c := page[i]
		a, _ := netip.ParseAddr(c.Address)
		r.addr(a)
		r.u32(sat32(c.Packets))
		r.u32(0) // NTS-KE hits are not kept per client
		r.u32(0) // command hits: not kept per client
		r.u32(sat32(c.Drops))
		r.u32(0)
		r.u32(0)
		interval := int8(127) // chronyc: "-"
		if c.Interval > 0 {
			interval = int8(max(-127, min(126, math.Round(math.Log2(c.Interval)))))
		}
		r.b = append(r.b, byte(interval), 127, 127, 0)
		r.u32(uint32(max(0, now.Sub(c.LastSeen).Seconds())))
		r.u32(math.MaxUint32)
		r.u32(math.MaxUint32)
	}
	return r.b, true
}

// serverStats is chrony's RPY_SERVER_STATS3, from the counters.
func (s *Server) serverStats(r *cmdReply) {
	m := s.metrics
	res := func(rs ...result) (n uint64) {
		for _, x := range rs {
			n += counterOf(m.results[x])
		}
		return n
	}
	cmd := func(labels ...string) (n uint64) {
		for _, l := range labels {
			n += counterOf(m.cmdRequests.WithLabelValues(l))
		}
		return n
	}
	var nke, nkeDrops, auth uint64
	if s.nts != nil {
		nke, auth = s.nts.handshakes.Load(), s.nts.authenticated.Load()
		s.nts.mu.Lock()
		for reason, v := range s.nts.failures {
			if len(reason) > 3 && reason[:3] == "ke_" {
				nkeDrops += v
			}
		}
		s.nts.mu.Unlock()
	}
	r.u32(sat32(res(resAnswered, resKoD, resRateDropped, resNTSFail, resNTSNak, resUnauth)))
	r.u32(sat32(nke))
	r.u32(sat32(cmd("answered", "unauthorised", "error")))
	r.u32(sat32(res(resRateDropped, resUnauth, resNTSFail)))
	r.u32(sat32(nkeDrops))
	r.u32(sat32(cmd("denied", "invalid")))
	r.u32(0) // log drops: the clients table evicts, it does not drop
	r.u32(sat32(auth))
	r.u32(0) // interleaved: not served
	r.u32(0) // timestamps kept for interleaving: none
	r.u32(0)
}

func counterOf(c prometheus.Counter) uint64 {
	var d dto.Metric
	if c.Write(&d) != nil || d.Counter == nil {
		return 0
	}
	return uint64(d.Counter.GetValue())
}

func sat32(v uint64) uint32 { return uint32(min(v, math.MaxUint32)) }
