package ntpd

import (
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/internal/conf"
)

// NTS is the `ntp.nts:` section: Network Time Security (RFC 8915). The key
// exchange (NTS-KE, TLS 1.3) listens on Listen with the appliance CA's
// server certificate; NTP requests carrying NTS extension fields are then
// authenticated on the ordinary NTP sockets. Required: plain requests get
// no answer.
type NTS struct {
	Enabled  bool   `yaml:"enabled"`
	Listen   string `yaml:"listen"`
	Required bool   `yaml:"required"`
}

// DefaultNTS is NTS off, ready to listen on the NTS-KE port 4460.
func DefaultNTS() NTS { return NTS{Listen: ":4460"} }

func (n NTS) validate(ps *conf.Problems) {
	if !n.Enabled {
		if n.Required {
			ps.Add("nts.required", "set nts.enabled: true, or drop required", "nts.required without nts.enabled would refuse every client")
		}
		return
	}
	if n.Listen == "" {
		ps.Add("nts.listen", "add e.g. listen: \":4460\" (the NTS-KE port)", "no NTS-KE listen address")
		return
	}
	conf.CheckListen(ps, "nts.listen", n.Listen)
}

// NTSStatus is the NTS part of the NTP status.
type NTSStatus = api.NTPNTSStatus

// ntsState is what the NTS-KE server and the packet path share.
type ntsState struct {
	tls     *tls.Config
	keys    *keyRing
	ntpPort uint16 // advertised in NTS-KE when not 123

	handshakes    atomic.Uint64
	authenticated atomic.Uint64
	mu            sync.Mutex
	failures      map[string]uint64
	failMetric    *prometheus.CounterVec
	lastRotate    time.Time
}

func (n *ntsState) count(c *atomic.Uint64) { c.Add(1) }

func (n *ntsState) fail(reason string) {
	n.mu.Lock()
	n.failures[reason]++
	n.mu.Unlock()
	n.failMetric.WithLabelValues(reason).Inc()
}

func newNTSState(cfg Config, deps Deps, now func() time.Time) (*ntsState, error) {
	if !cfg.NTS.Enabled {
		return nil, nil
	}
	if deps.NTSTLS == nil || len(deps.NTSKE) == 0 {
		return nil, errors.New("ntp: nts.enabled needs the NTS-KE socket and a TLS certificate from server")
	}
	for i, ln := range deps.NTSKE {
		if _, ok := ln.Addr().(*net.TCPAddr); !ok {
			return nil, fmt.Errorf("ntp: NTS-KE socket %d is a %T, not TCP", i, ln)
		}
	}
	keys, err := openKeyRing(ntsKeysPath(deps.DataDir), now)
	if err != nil {
		return nil, err
	}
	n := &ntsState{tls: deps.NTSTLS, keys: keys, failures: map[string]uint64{}, lastRotate: now(),
		failMetric: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airgapd_ntp_nts_failures_total",
			Help: "NTS failures by reason: ke_tls (TLS handshake, e.g. the client does not trust the CA), ke_alpn, ke_read, ke_bad_request, ke_no_aead, ke_write, ke_internal; cookie (unknown or damaged cookie: NTS NAK sent), auth (authenticator does not verify), malformed, unauthenticated (plain request refused by nts.required).",
		}, []string{"reason"})}
	if len(deps.UDP) > 0 {
		if a, ok := deps.UDP[0].LocalAddr().(*net.UDPAddr); ok {
			n.ntpPort = uint16(a.Port)
		}
	}
	return n, nil
}

func (n *ntsState) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		n.failMetric,
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "airgapd_ntp_nts_ke_handshakes_total", Help: "NTS-KE exchanges completed (cookies handed out)."},
			func() float64 { return float64(n.handshakes.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "airgapd_ntp_nts_authenticated_total", Help: "NTP requests authenticated with NTS and answered with fresh cookies."},
			func() float64 { return float64(n.authenticated.Load()) }),
	}
}

// rotate renews the cookie key once a day; checked at most once a minute.
func (n *ntsState) rotate(now time.Time, s *Server) {
	if now.Sub(n.lastRotate) < time.Minute && now.After(n.lastRotate) {
		return
	}
	n.lastRotate = now
	if ok, err := n.keys.rotateIfDue(); err != nil {
		s.log.Warn("NTS cookie key not rotated", "err", err)
	} else if ok {
		id, _ := n.keys.current()
		s.log.Info("new NTS cookie key", "id", id)
	}
}

func (n *ntsState) status(cfg NTS, lns []net.Listener) *NTSStatus {
	st := &NTSStatus{Required: cfg.Required, Handshakes: n.handshakes.Load(), Authenticated: n.authenticated.Load()}
	for _, ln := range lns {
		st.Listen = append(st.Listen, ln.Addr().String())
	}
	n.mu.Lock()
	st.Failures = maps.Clone(n.failures)
	n.mu.Unlock()
	st.CookieKeyID, st.CookieKeyCreated = n.keys.current()
	n.keys.mu.RLock()
	st.CookieKeys = len(n.keys.keys)
	n.keys.mu.RUnlock()
	return st
}
