package ntpd

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/airgapd/airgapd/api"
)

// Status is the NTP service's state (the api package defines it).
type Status = api.NTPStatus

// Status reports the service's state.
func (s *Server) Status() Status {
	s.mu.Lock()
	cfg, running := s.cfg, s.running
	s.mu.Unlock()
	now := s.clock.Now()
	ms := s.model.status()
	p := ms.p
	st := Status{
		State:          ms.state.String(),
		Stratum:        int(p.stratum),
		Leap:           int(p.leap),
		RefID:          refIDString(p.refID, p.stratum),
		Offset:         ms.offsetNow.Seconds(),
		RootDelay:      p.rootDelay.Seconds(),
		RootDispersion: p.rootDispAt(now).Seconds(),
		Precision:      int(s.resp.precision),
		Frequency:      ms.freqPPM,
		Skew:           ms.skewPPM,
		FrequencyFrom:  ms.freqFrom,
		Discipline:     cfg.Discipline,
		History:        ms.history,
	}
	for _, pc := range s.deps.UDP {
		st.Listen = append(st.Listen, pc.LocalAddr().String())
	}
	if !ms.fresh.IsZero() {
		t := ms.fresh
		st.LastUpdate = &t
	}
	if ms.state == stateSynced || ms.state == stateHoldover {
		st.Selected = ms.last.source
	}
	if !ms.manualAt.IsZero() {
		t := ms.manualAt
		st.ManualSetAt = &t
		st.ManualOffset = ms.manualOff.Seconds()
		st.ManualError = ms.manualError.Seconds()
	}
	st.Sources = s.sources.status()
	st.SourcesView = SourcesView(st.Sources)
	st.Clients, st.ClientsTotal = s.clients.snapshot(1000)
	if !running {
		st.State = "down"
	}
	if s.nts != nil {
		st.NTS = s.nts.status(cfg.NTS, s.deps.NTSKE)
	}
	st.Summary = summary(st, ms, cfg, now)
	return st
}

func summary(st Status, ms modelStatus, cfg Config, now time.Time) string {
	reach := 0
	for _, s := range st.Sources {
		if s.Reach != "0" {
			reach++
		}
	}
	srcs := fmt.Sprintf("%d/%d sources reachable, %d clients", reach, len(st.Sources), st.ClientsTotal)
	if n := st.NTS; n != nil {
		srcs += fmt.Sprintf("; NTS: %d key exchanges, %d authenticated requests", n.Handshakes, n.Authenticated)
	}
	var head string
	switch ms.state {
	case stateSynced:
		head = fmt.Sprintf("synced to %s (stratum %d), serving stratum %d, offset %s", ms.last.source, ms.last.stratum, st.Stratum, formatOffset(st.Offset))
	case stateHoldover:
		head = fmt.Sprintf("upstream lost %s ago; holding the last reference at stratum %d (local_stratum 0)", now.Sub(ms.fresh).Round(time.Second), st.Stratum)
	case stateLocal:
		head = fmt.Sprintf("serving local stratum %d (%s)", st.Stratum, ms.reason)
	case stateUnsynced:
		head = "unsynchronised (leap 3): no upstream reached and local_stratum is 0"
	default:
		head = fmt.Sprintf("starting: polling %d sources", len(st.Sources))
	}
	if st.ManualSetAt != nil {
		head += fmt.Sprintf("; time set by operator %s ago, est. error ±%s", now.Sub(*st.ManualSetAt).Round(time.Second), formatOffset(st.ManualError)[1:])
	}
	if st.State == "down" {
		head = "not running; " + head
	}
	return head + "; " + srcs
}

// refIDString prints a reference ID as chronyc does: an address for a
// synchronised server, the ASCII code for LOCL and kiss codes.
func refIDString(id uint32, stratum uint8) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], id)
	if stratum <= 1 || id == refidLOCL {
		return strings.TrimRight(string(b[:]), "\x00")
	}
	if id == 0 {
		return ""
	}
	return netip.AddrFrom4(b).String()
}
