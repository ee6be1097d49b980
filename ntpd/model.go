package ntpd

import (
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airgapd/airgapd/api"
)

// syncState is where the served time comes from.
type syncState int

const (
	// stateStarting: the start-up iburst is still running and no upstream
	// sample has arrived yet. Served as unsynchronised (leap 3).
	stateStarting syncState = iota
	// stateSynced: a fresh upstream sample within fallback_after.
	stateSynced
	// stateHoldover: synced before, the upstream is gone and local_stratum
	// is 0, so the last reference is kept with a growing dispersion (as
	// chronyd does without `local`).
	stateHoldover
	// stateLocal: serving the local clock at local_stratum (refid LOCL).
	stateLocal
	// stateUnsynced: never synced and local_stratum is 0: leap 3.
	stateUnsynced
)

func (s syncState) String() string {
	return [...]string{"starting", "synced", "holdover", "local", "unsynchronised"}[s]
}

// Leap indicator values.
const (
	leapNone    = 0
	leapUnknown = 3 // alarm: clock not synchronised
)

// maxStratum on the wire means "unsynchronised" (RFC 5905).
const maxStratum = 16

// phi is the frequency tolerance RFC 5905 and chrony assume: dispersion
// grows by 15 µs each second since the last update.
const phi = 15e-6

// refidLOCL is the reference ID served in local mode.
var refidLOCL = binary.BigEndian.Uint32([]byte("LOCL"))

// refParams is one immutable snapshot of what the responder serves. The
// served time for a system-clock reading t is t + off0 + freq·(t − t0).
type refParams struct {
	state     syncState
	leap      uint8
	stratum   uint8
	refID     uint32
	refTime   time.Time // in served time; zero: none. Ignored when refNow.
	refNow    bool      // local mode: reference time = transmit − 1 ms, as chronyd does
	rootDelay time.Duration
	rootDisp  time.Duration // at dispFrom; grows by phi per second after it
	dispFrom  time.Time     // zero: constant

	off0 time.Duration
	t0   time.Time
	freq float64 // fractional: 1e-6 = 1 ppm
}

func (p *refParams) served(t time.Time) time.Time {
	if p.freq == 0 {
		return t.Add(p.off0)
	}
	return t.Add(p.off0 + time.Duration(p.freq*float64(t.Sub(p.t0))))
}

func (p *refParams) rootDispAt(t time.Time) time.Duration {
	if p.dispFrom.IsZero() || t.Before(p.dispFrom) {
		return p.rootDisp
	}
	return p.rootDisp + time.Duration(phi*float64(t.Sub(p.dispFrom)))
}

// update is one result of source selection for the clock model.
type update struct {
	offset    time.Duration // served time − system clock, measured at `at`
	at        time.Time     // system clock time of the measurement
	source    string        // selected source, for status
	addr      netip.Addr    // its address, for the reference ID
	stratum   uint8         // the selected source's stratum
	leap      uint8
	rootDelay time.Duration // to the primary reference, through the source
	rootDisp  time.Duration
	jitter    time.Duration
}

// OffsetPoint is one entry of the offset history, for plots.
type OffsetPoint = api.NTPOffsetPoint

// modelConfig is the part of the config the model uses.
type modelConfig struct {
	localStratum  int
	fallbackAfter time.Duration
	discipline    bool
	makeStep      MakeStep
}

// model is the clock model: it turns source selection results (and the
// operator's settime) into the snapshot the responder serves.
type model struct {
	clock Clock
	log   *slog.Logger

	mu           sync.Mutex
	cfg          modelConfig
	startupUntil time.Time
	state        syncState

	off0      time.Duration
	t0        time.Time
	freq      float64 // fractional
	skew      float64
	freqFrom  string // "", "drift file", "estimate"
	points    []OffsetPoint
	history   []OffsetPoint
	ever      bool // synced at least once
	last      update
	fresh     time.Time // system time of the last upstream update
	updates   int
	manualAt  time.Time // settime, system clock; zero: never
	manualOff time.Duration

	snap atomic.Pointer[refParams]
}

const (
	historyLen  = 256
	regressMax  = 64
	regressSpan = 30 * time.Second // least span before the slope is trusted
	maxFreq     = 500e-6
)

func newModel(c Clock, log *slog.Logger, cfg modelConfig, startupUntil time.Time) *model {
	m := &model{clock: c, log: log, cfg: cfg, startupUntil: startupUntil}
	m.mu.Lock()
	m.publishLocked(c.Now())
	m.mu.Unlock()
	return m
}

// params returns the snapshot the responder serves.
func (m *model) params() *refParams { return m.snap.Load() }

// reconfigure applies a reloaded config.
func (m *model) reconfigure(cfg modelConfig) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cfg = cfg
	m.publishLocked(m.clock.Now())
}

// setDrift seeds the frequency from the drift file.
func (m *model) setDrift(ppm, skewPPM float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.freqFrom == "" && math.Abs(ppm) <= maxFreq*1e6 {
		m.freq, m.skew, m.freqFrom = ppm*1e-6, skewPPM*1e-6, "drift file"
		m.t0 = m.clock.Now()
		m.publishLocked(m.t0)
	}
}

// drift returns the frequency for the drift file; ok is false when there
// is no estimate of this run's own to save.
func (m *model) drift() (ppm, skewPPM float64, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.freq * 1e6, m.skew * 1e6, m.freqFrom == "estimate"
}

// apply takes a new selection result.
func (m *model) apply(u update) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock.Now()
	m.updates++
	if m.cfg.discipline {
		m.steerLocked(u.offset)
		m.off0, m.t0, m.freq = 0, now, 0
	} else {
		m.points = append(m.points, OffsetPoint{At: u.at, Offset: u.offset.Seconds()})
		if len(m.points) > regressMax {
			m.points = m.points[len(m.points)-regressMax:]
		}
		if f, sk, ok := regress(m.points); ok && math.Abs(f) <= maxFreq {
			m.freq, m.skew, m.freqFrom = f, sk, "estimate"
		}
		m.off0, m.t0 = u.offset, u.at
	}
	m.history = appendHistory(m.history, OffsetPoint{At: u.at, Offset: u.offset.Seconds(), Jitter: u.jitter.Seconds()})
	if !m.manualAt.IsZero() {
		// A source has taken over: the operator's time is history.
		m.log.Info("an upstream source takes over from the operator's time", "source", u.source)
		m.manualAt, m.manualOff = time.Time{}, 0
	}
	m.ever = true
	m.last = u
	m.fresh = now
	m.publishLocked(now)
}

// steerLocked corrects the host clock (discipline: true): a step for a
// large offset during the first makestep.limit updates, else a slew.
func (m *model) steerLocked(off time.Duration) {
	if m.updates <= m.cfg.makeStep.Limit && off.Abs() > m.cfg.makeStep.Threshold.D() {
		if err := m.clock.Step(off); err != nil {
			m.log.Error("cannot step the clock", "offset", off, "err", err)
			return
		}
		m.log.Warn("stepped the system clock", "offset", off)
		return
	}
	if err := m.clock.Slew(off); err != nil {
		m.log.Error("cannot slew the clock", "offset", off, "err", err)
	}
}

// ErrSourceSelected refuses the operator's time while an upstream source
// is selected: its next sample would override it, and until then nodes
// would follow the operator's watch.
var ErrSourceSelected = errors.New("an upstream source is selected")

// setTime makes the served time `to` now: the operator's clock, as
// `chronyc settime`. With discipline the host clock is stepped. While a
// source is selected it is refused unless force; forced, the state is not
// "synced" again until the next upstream sample, which overrides it.
func (m *model) setTime(to time.Time, writtenAt time.Time, force bool) (time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock.Now()
	if m.stateAt(now) == stateSynced && !force {
		return 0, fmt.Errorf("%w (%s): its next sample would override the operator's time, and until then every node would follow it; to serve it anyway give --force (in the UI, tick \"even while a source is selected\")", ErrSourceSelected, m.last.source)
	}
	// The operator's time was read when the request was written.
	off := to.Sub(writtenAt)
	if m.cfg.discipline {
		if err := m.clock.Step(off); err != nil {
			m.log.Error("settime: cannot step the clock", "err", err)
		}
		m.off0, m.t0 = 0, now
	} else {
		m.off0, m.t0 = off, now
	}
	m.points = m.points[:0] // the phase jumped; the frequency stands
	m.manualAt, m.manualOff = now, off
	if m.ever && m.stateAt(now) == stateSynced {
		m.log.Warn("settime forced while synced to an upstream source: served until its next sample overrides it", "source", m.last.source)
		m.fresh = time.Time{}
	}
	m.history = appendHistory(m.history, OffsetPoint{At: now, Offset: off.Seconds(), Operator: true})
	m.startupUntil = now // the operator has spoken: no more waiting
	m.publishLocked(now)
	return off, nil
}

func appendHistory(h []OffsetPoint, p OffsetPoint) []OffsetPoint {
	h = append(h, p)
	if len(h) > historyLen {
		h = h[len(h)-historyLen:]
	}
	return h
}

// refresh re-evaluates the state as time passes (fallback after
// fallback_after, the end of the start-up iburst) and logs changes.
func (m *model) refresh() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.publishLocked(m.clock.Now())
}

func (m *model) stateAt(now time.Time) syncState {
	switch {
	case m.ever && now.Sub(m.fresh) < m.cfg.fallbackAfter:
		return stateSynced
	case !m.ever && m.manualAt.IsZero() && now.Before(m.startupUntil):
		return stateStarting
	case m.cfg.localStratum > 0:
		return stateLocal
	case m.ever:
		return stateHoldover
	}
	return stateUnsynced
}

func (m *model) publishLocked(now time.Time) {
	st := m.stateAt(now)
	if st != m.state {
		switch st {
		case stateSynced:
			m.log.Info("synchronised", "source", m.last.source, "stratum", int(m.last.stratum)+1, "offset", m.last.offset)
		case stateLocal:
			m.log.Warn("serving the local clock", "stratum", m.cfg.localStratum, "reason", m.whyLocalLocked(now))
		case stateHoldover:
			m.log.Warn("upstream lost; keeping the last reference with growing dispersion (local_stratum is 0)", "since", m.fresh)
		case stateUnsynced:
			m.log.Warn("unsynchronised: no upstream reached and local_stratum is 0; clients will refuse this server (leap 3)")
		}
		m.state = st
	}
	p := &refParams{state: st, off0: m.off0, t0: m.t0, freq: m.freq}
	switch st {
	case stateSynced, stateHoldover:
		p.leap = m.last.leap
		p.stratum = min(m.last.stratum+1, maxStratum)
		p.refID = refIDFor(m.last.addr)
		p.refTime = p.served(m.fresh)
		p.rootDelay = m.last.rootDelay
		p.rootDisp = m.last.rootDisp + m.last.jitter + time.Duration(m.skew*float64(now.Sub(m.fresh)))
		p.dispFrom = m.fresh
	case stateLocal:
		p.leap = leapNone
		p.stratum = uint8(m.cfg.localStratum)
		p.refID = refidLOCL
		p.refNow = true
	default:
		p.leap = leapUnknown
		p.stratum = maxStratum
	}
	m.snap.Store(p)
}

func (m *model) whyLocalLocked(now time.Time) string {
	switch {
	case !m.manualAt.IsZero() && !m.ever:
		return "time set by the operator"
	case m.ever:
		return fmt.Sprintf("no fresh upstream sample for %s", now.Sub(m.fresh).Round(time.Second))
	}
	return "no upstream source reached"
}

// modelStatus is the model's part of Status.
type modelStatus struct {
	state       syncState
	p           *refParams
	last        update
	fresh       time.Time
	freqPPM     float64
	skewPPM     float64
	freqFrom    string
	manualAt    time.Time
	manualOff   time.Duration
	history     []OffsetPoint
	reason      string
	offsetNow   time.Duration
	manualError time.Duration
}

func (m *model) status() modelStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock.Now()
	p := m.snap.Load()
	ms := modelStatus{
		state: m.state, p: p, last: m.last, fresh: m.fresh,
		freqPPM: m.freq * 1e6, skewPPM: m.skew * 1e6, freqFrom: m.freqFrom,
		manualAt: m.manualAt, manualOff: m.manualOff,
		history:   append([]OffsetPoint(nil), m.history...),
		offsetNow: p.served(now).Sub(now),
	}
	if m.state == stateLocal {
		ms.reason = m.whyLocalLocked(now)
	}
	if !m.manualAt.IsZero() {
		// The operator's watch is good to about a second; after that the
		// local clock wanders by its skew, or by phi when unknown.
		rate := phi
		if m.skew > 0 {
			rate = m.skew
		}
		ms.manualError = time.Second + time.Duration(rate*float64(now.Sub(m.manualAt)))
	}
	return ms
}

// regress fits offset = a + f·t over the points: f is the frequency
// offset of the system clock (fractional), sk its standard error. ok is
// false until the points span regressSpan.
func regress(pts []OffsetPoint) (f, sk float64, ok bool) {
	n := len(pts)
	if n < 6 || pts[n-1].At.Sub(pts[0].At) < regressSpan {
		return 0, 0, false
	}
	t0 := pts[0].At
	var sx, sy float64
	for _, p := range pts {
		sx += p.At.Sub(t0).Seconds()
		sy += p.Offset
	}
	mx, my := sx/float64(n), sy/float64(n)
	var sxx, sxy float64
	for _, p := range pts {
		dx := p.At.Sub(t0).Seconds() - mx
		sxx += dx * dx
		sxy += dx * (p.Offset - my)
	}
	if sxx == 0 {
		return 0, 0, false
	}
	f = sxy / sxx
	var sse float64
	for _, p := range pts {
		r := p.Offset - (my + f*(p.At.Sub(t0).Seconds()-mx))
		sse += r * r
	}
	sk = math.Sqrt(sse / float64(n-2) / sxx)
	return f, sk, true
}

// refIDFor is the reference ID for a source address: the IPv4 address, or
// the first four octets of the MD5 of an IPv6 address (RFC 5905).
func refIDFor(a netip.Addr) uint32 {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return binary.BigEndian.Uint32(b[:])
	}
	if !a.IsValid() {
		return 0
	}
	b := a.As16()
	sum := md5.Sum(b[:])
	return binary.BigEndian.Uint32(sum[:4])
}
