package ntpd

import (
	"errors"
	"math"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/facebook/time/ntp/chrony"

	"github.com/airgapd/airgapd/internal/conf"
	"github.com/airgapd/airgapd/internal/udpdst"
)

// cmdmon answers chrony's command protocol for its open, read-only
// commands, so that `chronyc -h ADMIN tracking|sources|sourcestats|activity`
// (and sourcename, `sources -N`)
// and the monitoring tools built on them work against airgapd unchanged.
// Addresses outside cmdmon.allow get no answer at all, as chronyd does for
// hosts outside cmdallow; every other command (the ones that change
// something, and clients/serverstats) is answered "501 Not authorised",
// as chronyd answers them over UDP.

// CmdMon is `ntp.cmdmon:`, chronyd's cmdport/bindcmdaddress and cmdallow.
type CmdMon struct {
	// Listen are the UDP addresses; none (the default) means off.
	// chronyd's is 127.0.0.1:323 and [::1]:323.
	Listen []string `yaml:"listen"`
	// Allow is who is answered; chronyd's default is the loopback only.
	Allow []string `yaml:"allow"`
	// Mgmt are the management networks (within Allow) also answered
	// `chronyc serverstats` and `clients`, which chronyd keeps off UDP;
	// none by default.
	Mgmt []string `yaml:"mgmt"`
}

// DefaultCmdMon is off, and when listening answers the loopback only.
func DefaultCmdMon() CmdMon {
	return CmdMon{Allow: []string{"127.0.0.0/8", "::1/128"}}
}

func (c CmdMon) validate(ps *conf.Problems) {
	for i, l := range c.Listen {
		conf.CheckListen(ps, conf.Index("cmdmon.listen", i), l)
	}
	conf.CheckCIDRs(ps, "cmdmon.allow", c.Allow)
	c.validateMgmt(ps)
}

func cmdAllowOf(c CmdMon) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range c.Allow {
		if pr, err := conf.ParsePrefix(a); err == nil { // validated already
			out = append(out, pr)
		}
	}
	return out
}

// serveCmdMon reads commands from one socket until it is closed or its
// read deadline passes at stop.
func (s *Server) serveCmdMon(conn *net.UDPConn) {
	// chronyc reads from a connected socket, so on a wildcard socket the
	// reply must leave from the address asked, not the route's choice.
	dst, err := udpdst.Enable(conn)
	if err != nil {
		s.log.Warn("chronyc on this wildcard socket only works through the route's own address", "listen", conn.LocalAddr().String(), "err", err)
	}
	v6 := false
	if a, ok := conn.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil {
		v6 = true
	}
	buf := make([]byte, 1500)
	oob := make([]byte, udpdst.OOBSpace)
	replyOOB := make([]byte, 0, udpdst.OOBSpace)
	out := make([]byte, 0, 512)
	for {
		n, oobn, _, from, err := conn.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
			s.metrics.readErrors.Inc()
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !allowed(s.cmdAllow.Load(), from.Addr().Unmap()) {
			s.metrics.cmdRequests.WithLabelValues("denied").Inc()
			continue
		}
		reply, result := s.answerCommand(buf[:n], out, allowed(s.cmdMgmt.Load(), from.Addr().Unmap()))
		s.metrics.cmdRequests.WithLabelValues(result).Inc()
		if len(reply) > 0 {
			replyOOB = replyOOB[:0]
			if d, ok := udpdst.Parse(oob[:oobn]); ok && dst {
				replyOOB = udpdst.AppendSource(replyOOB, d, v6)
			}
			conn.WriteMsgUDPAddrPort(reply, replyOOB, from)
		}
	}
}

func allowed(allow *[]netip.Prefix, a netip.Addr) bool {
	if allow == nil {
		return false
	}
	for _, p := range *allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// answerCommand builds the reply to one request (from an allowed address;
// mgmt: from a cmdmon.mgmt network) in out, and names the outcome for the
// metrics: answered, unauthorised, error (a status other than success) or
// invalid (no reply). A reply is never longer than its request.
func (s *Server) answerCommand(b []byte, out []byte, mgmt bool) ([]byte, string) {
	req, ok := parseCmdRequest(b)
	if !ok {
		return nil, "invalid"
	}
	if req.head.Version != cmdVersion {
		// chronyc falls back to older versions on this status.
		return newCmdReply(out, req, sttBadPktVersion, rpyNull).b, "error"
	}
	want, open := cmdReplyLength[req.head.Command]
	if ml, ok := mgmtReplyLength[req.head.Command]; ok && mgmt {
		if len(b) < ml {
			return newCmdReply(out, req, sttBadPktLength, rpyNull).b, "error"
		}
		if r, ok := s.answerMgmt(b, out, req); ok {
			return r, "answered"
		}
	}
	if !open {
		return newCmdReply(out, req, sttUnauth, rpyNull).b, "unauthorised"
	}
	if len(b) < want {
		return newCmdReply(out, req, sttBadPktLength, rpyNull).b, "error"
	}
	r := newCmdReply(out, req, sttSuccess, rpyNull)
	switch req.head.Command {
	case cmdNSources:
		r = newCmdReply(out, req, sttSuccess, chrony.RpyNSources)
		r.u32(uint32(len(s.sources.cmdSources())))
	case cmdSourceData, cmdSourceStats:
		srcs := s.sources.cmdSources()
		if req.index < 0 || int(req.index) >= len(srcs) {
			return newCmdReply(out, req, sttNoSuchSource, rpyNull).b, "error"
		}
		if req.head.Command == cmdSourceData {
			r = newCmdReply(out, req, sttSuccess, chrony.RpySourceData)
			srcs[req.index].sourceData(r)
		} else {
			r = newCmdReply(out, req, sttSuccess, chrony.RpySourceStats)
			srcs[req.index].sourceStats(r)
		}
	case cmdSourceName:
		name, ok := s.sources.nameOf(req.addr)
		if !ok {
			return newCmdReply(out, req, sttNoSuchSource, rpyNull).b, "error"
		}
		r = newCmdReply(out, req, sttSuccess, rpySourceName)
		field := make([]byte, cmdSourceNameLength)
		copy(field[:cmdSourceNameLength-1], name) // NUL-terminated
		r.b = append(r.b, field...)
	case cmdTracking:
		r = newCmdReply(out, req, sttSuccess, chrony.RpyTracking)
		s.tracking(r)
	case cmdActivity:
		r = newCmdReply(out, req, sttSuccess, chrony.RpyActivity)
		s.activity(r)
	}
	return r.b, "answered"
}

// tracking is `chronyc tracking`: the model's reference as served. chrony's
// signs: the current correction is positive when the system clock is slow
// of the served time, the last offset positive when it was fast.
func (s *Server) tracking(r *cmdReply) {
	now := s.clock.Now()
	ms := s.model.status()
	p := ms.p
	r.u32(p.refID)
	var peer netip.Addr
	if ms.state == stateSynced || ms.state == stateHoldover {
		peer = ms.last.addr
	}
	r.addr(peer)
	r.u16(uint16(p.stratum))
	r.u16(uint16(p.leap))
	ref := p.refTime
	if p.refNow {
		ref = p.served(now).Add(-time.Millisecond)
	}
	r.timespec(ref)
	r.float(ms.offsetNow.Seconds())
	r.float(-ms.last.offset.Seconds())
	r.float(ms.last.jitter.Seconds())
	r.float(ms.freqPPM)
	r.float(0) // residual frequency: the estimate is applied whole
	r.float(ms.skewPPM)
	r.float(p.rootDelay.Seconds())
	r.float(p.rootDispAt(now).Seconds())
	var interval float64
	if h := ms.history; len(h) >= 2 {
		interval = h[len(h)-1].At.Sub(h[len(h)-2].At).Seconds()
	}
	r.float(interval)
}

// activity is `chronyc activity`: every source counts as online; names
// that did not resolve are the unresolved ones.
func (s *Server) activity(r *cmdReply) {
	var online, unresolved int32
	for _, c := range s.sources.cmdSources() {
		if c.resolved {
			online++
		} else {
			unresolved++
		}
	}
	r.i32(online)
	r.i32(0) // offline
	r.i32(0) // burst online
	r.i32(0) // burst offline
	r.i32(unresolved)
}

// cmdSource is one source as the command protocol reports it, in the
// order of the status's sources.
type cmdSource struct {
	resolved bool
	addr     netip.Addr
	id       uint32 // unresolved: chrony's ID# address, the index + 1
	poll     int
	stratum  uint8
	mark     byte
	reach    uint8
	sinceRx  uint32 // seconds; math.MaxUint32: never
	offset   float64
	errBound float64
	samples  []sample
	jitter   float64
}

func (ss *sourceSet) cmdSources() []cmdSource {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := ss.clock.Now()
	var out []cmdSource
	for _, e := range ss.entries {
		if len(e.sources) == 0 {
			out = append(out, cmdSource{id: uint32(len(out) + 1), poll: ss.minpoll, mark: markUnusable, sinceRx: math.MaxUint32})
			continue
		}
		for _, src := range e.sources {
			c := cmdSource{resolved: true, addr: src.addr.Addr().Unmap(), poll: src.poll, mark: src.mark, reach: src.reach, sinceRx: math.MaxUint32}
			if !src.lastRx.IsZero() {
				c.sinceRx = uint32(max(0, now.Sub(src.lastRx).Seconds()))
			}
			if l, ok := src.latest(); ok {
				// chrony's sample offset is positive when the local clock
				// is ahead of the source; airgapd's is source − local.
				c.stratum, c.offset = l.stratum, -l.offset.Seconds()
			}
			if best, jitter, ok := src.filtered(); ok {
				c.errBound = distance(best, jitter, now).Seconds()
				c.jitter = jitter.Seconds()
			}
			for i := range src.n {
				c.samples = append(c.samples, src.samples[(src.next+filterLen-src.n+i)%filterLen])
			}
			out = append(out, c)
		}
	}
	return out
}

// nameOf is the servers: entry a source's address came from.
func (ss *sourceSet) nameOf(a netip.Addr) (string, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, e := range ss.entries {
		for _, src := range e.sources {
			if src.addr.Addr().Unmap() == a.Unmap() {
				return e.name, true
			}
		}
	}
	return "", false
}

func (c cmdSource) writeAddr(r *cmdReply) {
	if c.resolved {
		r.addr(c.addr)
		return
	}
	r.u32(c.id)
	r.b = append(r.b, make([]byte, 12)...)
	r.u16(chrony.IPAddrID)
	r.u16(0)
}

// chronyState maps a mark to chrony's source state.
func chronyState(mark byte) chrony.SourceStateType {
	switch mark {
	case markSelected:
		return chrony.SourceStateSync
	case markCombined:
		return chrony.SourceStateCandidate
	case markNotCombined:
		return chrony.SourceStateOutlier
	case markFalse:
		return chrony.SourceStateFalseTicker
	}
	return chrony.SourceStateUnreach
}

func (c cmdSource) sourceData(r *cmdReply) {
	c.writeAddr(r)
	r.u16(uint16(int16(c.poll)))
	r.u16(uint16(c.stratum))
	r.u16(uint16(chronyState(c.mark)))
	r.u16(uint16(chrony.SourceModeClient))
	r.u16(0) // flags: no noselect, prefer, trust or require
	r.u16(uint16(c.reach))
	r.u32(c.sinceRx)
	r.float(c.offset) // original measurement
	r.float(c.offset) // adjusted for slewing since: nothing is slewed here
	r.float(c.errBound)
}

// sourceStats is `chronyc sourcestats` from the clock filter's samples:
// their count, span, and spread (the filter's jitter).
func (c cmdSource) sourceStats(r *cmdReply) {
	var refID uint32
	if c.addr.Is4() {
		v4 := c.addr.As4()
		refID = uint32(v4[0])<<24 | uint32(v4[1])<<16 | uint32(v4[2])<<8 | uint32(v4[3])
	}
	r.u32(refID)
	c.writeAddr(r)
	var span uint32
	if n := len(c.samples); n >= 2 {
		span = uint32(max(0, c.samples[n-1].at.Sub(c.samples[0].at).Seconds()))
	}
	r.u32(uint32(len(c.samples)))
	r.u32(uint32(len(c.samples))) // runs of residuals: not tracked; chronyc shows it as is
	r.u32(span)
	r.float(c.jitter) // standard deviation
	r.float(0)        // residual frequency
	r.float(0)        // skew
	r.float(c.offset)
	r.float(c.errBound)
}
