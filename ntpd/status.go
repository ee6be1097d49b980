package ntpd

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Status is the NTP service's state for the UI, API and metrics: what
// `chronyc tracking`, `sources` and `clients` show, as plain data.
type Status struct {
	State   string   `json:"state"` // synced | local | holdover | unsynchronised | starting | down
	Summary string   `json:"summary"`
	Listen  []string `json:"listen"` // bound addresses

	Stratum        int     `json:"stratum"` // served; 16 = unsynchronised
	Leap           int     `json:"leap"`    // served; 3 = unsynchronised
	RefID          string  `json:"ref_id"`
	Selected       string  `json:"selected,omitempty"` // the system peer's address
	Offset         float64 `json:"offset"`             // seconds, served time − system clock
	RootDelay      float64 `json:"root_delay"`         // seconds
	RootDispersion float64 `json:"root_dispersion"`    // seconds
	Precision      int     `json:"precision"`          // log2 seconds
	// LastUpdate is when the last upstream sample updated the model.
	LastUpdate    *time.Time `json:"last_update,omitempty"`
	Frequency     float64    `json:"frequency_ppm"` // system clock: positive runs slow
	Skew          float64    `json:"skew_ppm"`
	FrequencyFrom string     `json:"frequency_from,omitempty"` // estimate | drift file
	Discipline    bool       `json:"discipline"`

	// ManualSetAt is when `airgapd ntp settime` last set the time;
	// ManualError the estimated error of the served time since then.
	ManualSetAt  *time.Time `json:"manual_set_at,omitempty"`
	ManualOffset float64    `json:"manual_offset,omitempty"` // seconds, set − system clock
	ManualError  float64    `json:"manual_error,omitempty"`  // seconds

	Sources      []SourceStatus `json:"sources"`
	SourcesView  string         `json:"sources_view"` // as `chronyc sources` prints it
	Clients      []ClientStatus `json:"clients"`      // most recent first, at most 1000
	ClientsTotal int            `json:"clients_total"`
	History      []OffsetPoint  `json:"history"` // offset and jitter of each model update, for plots
}

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
