package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/internal/conf"
)

// haKinds are what a standby copies from its primary, in the order the
// follower copies them.
var haKinds = []string{"config", "zones", "ca", "tokens", "repos", "images"}

// haNode is the running ha section: on a primary it watches the peer; on a
// standby it also follows it (ha_follow.go).
type haNode struct {
	s   *Server
	cfg HAConfig
	log *slog.Logger

	mu          sync.Mutex
	reachable   bool
	peerErr     string
	lastContact time.Time
	inSync      map[string]time.Time
	kindErr     map[string]string
	pinned      []byte // the peer's CA PEM, matched against peer_ca_sha256
	client      *http.Client
	clientTrust []byte // the CAs client trusts
}

func (s *Server) buildHA(c *Config, in *instance) error {
	n := &haNode{s: s, cfg: *c.HA, log: in.log, inSync: map[string]time.Time{}, kindErr: map[string]string{}}
	in.service, in.run = n, n.run
	in.status = func() ServiceStatus {
		st := n.status(time.Now())
		return ServiceStatus{State: st.Role, Summary: n.summary(st), HA: &st}
	}
	in.reload = func(*Config) error { return conf.ErrRestartNeeded }
	n.register(in.metrics)
	return nil
}

func (n *haNode) register(reg prometheus.Registerer) {
	role := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "airgapd_ha_role", Help: "1 for this host's HA role (primary or standby)."}, []string{"role"})
	role.WithLabelValues(n.cfg.Role).Set(1)
	reg.MustRegister(role, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "airgapd_ha_peer_reachable", Help: "1 when the HA peer's API answered the last call.",
	}, func() float64 {
		if n.status(time.Now()).PeerReachable {
			return 1
		}
		return 0
	}))
	if n.cfg.Role != roleStandby {
		return
	}
	for _, k := range haKinds {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "airgapd_ha_replication_lag_seconds", Help: "How far the standby's copy is behind the primary, by kind (-1: never in sync yet).",
			ConstLabels: prometheus.Labels{"kind": k},
		}, func() float64 {
			for _, hk := range n.status(time.Now()).Kinds {
				if hk.Kind == k && !hk.InSync.IsZero() {
					return hk.Lag.Seconds()
				}
			}
			return -1
		}))
	}
}

func (n *haNode) status(now time.Time) api.HAStatus {
	n.mu.Lock()
	defer n.mu.Unlock()
	st := api.HAStatus{Role: n.cfg.Role, Peer: n.cfg.Peer, VIP: n.cfg.VIP, PeerReachable: n.reachable, PeerError: n.peerErr, LastContact: n.lastContact}
	if n.cfg.Role == roleStandby {
		for _, k := range haKinds {
			hk := api.HAKind{Kind: k, InSync: n.inSync[k], Error: n.kindErr[k]}
			if !hk.InSync.IsZero() {
				hk.Lag = now.Sub(hk.InSync).Round(time.Millisecond)
			}
			st.Kinds = append(st.Kinds, hk)
		}
	}
	return st
}

func (n *haNode) summary(st api.HAStatus) string {
	peer := "peer " + st.Peer + " reachable"
	if !st.PeerReachable {
		peer = "peer " + st.Peer + " NOT reachable"
		if st.PeerError != "" {
			peer += " (" + st.PeerError + ")"
		}
	}
	if st.Role != roleStandby {
		return fmt.Sprintf("primary for VIP %s; %s", st.VIP, peer)
	}
	var lags []string
	for _, k := range st.Kinds {
		switch {
		case k.Error != "":
			lags = append(lags, k.Kind+" failing")
		case k.InSync.IsZero():
			lags = append(lags, k.Kind+" never")
		default:
			lags = append(lags, fmt.Sprintf("%s %s", k.Kind, k.Lag.Round(time.Second)))
		}
	}
	return fmt.Sprintf("standby of %s for VIP %s (read-only); %s; lag: %s", st.Peer, st.VIP, peer, strings.Join(lags, ", "))
}

// contact records how the last call to the peer went.
func (n *haNode) contact(err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.reachable = err == nil
	n.peerErr = ""
	if err != nil {
		n.peerErr = err.Error()
		return
	}
	n.lastContact = time.Now()
}

// synced records one kind's round: in sync now, or why not.
func (n *haNode) synced(kind string, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err != nil {
		n.kindErr[kind] = err.Error()
		return
	}
	delete(n.kindErr, kind)
	n.inSync[kind] = time.Now()
}

func (n *haNode) run(ctx context.Context) error {
	t := time.NewTicker(n.cfg.FollowEvery.D())
	defer t.Stop()
	defer func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.client != nil {
			n.client.CloseIdleConnections()
		}
	}()
	for {
		if n.cfg.Role == roleStandby {
			n.follow(ctx)
		} else {
			n.contact(n.ping(ctx))
		}
		n.s.haGateway()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// ping asks the peer's /readyz.
func (n *haNode) ping(ctx context.Context) error {
	resp, err := n.peerGet(ctx, "/readyz", false)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// peerClient trusts the local CA (the shared one, once copied) and the
// peer's CA when its fingerprint is ha.peer_ca_sha256 (the first contact,
// before the standby has the primary's CA).
func (n *haNode) peerClient(ctx context.Context) *http.Client {
	trust := n.s.CACertPEM()
	if pin := normalFingerprint(n.cfg.PeerCASHA256); pin != "" {
		trust = append(trust, n.pinnedCA(ctx, pin)...)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.client != nil && bytes.Equal(n.clientTrust, trust) {
		return n.client
	}
	if n.client != nil {
		n.client.CloseIdleConnections()
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(trust)
	tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	n.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, Proxy: nil, IdleConnTimeout: time.Minute}}
	n.clientTrust = trust
	return n.client
}

// pinnedCA is the peer's /ca.crt when its SHA-256 is pin: fetched without
// verification, trusted only for matching the pin.
func (n *haNode) pinnedCA(ctx context.Context, pin string) []byte {
	n.mu.Lock()
	got := n.pinned
	n.mu.Unlock()
	if got != nil {
		return got
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(n.cfg.Peer, "/")+"/ca.crt", nil)
	if err != nil {
		return nil
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	block, _ := pem.Decode(data)
	if block == nil {
		return nil
	}
	if sum := sha256.Sum256(block.Bytes); hex.EncodeToString(sum[:]) != pin {
		n.log.Warn("the peer's CA does not match ha.peer_ca_sha256; not trusting it", "peer", n.cfg.Peer)
		return nil
	}
	n.mu.Lock()
	n.pinned = data
	n.mu.Unlock()
	return data
}

// peerGet GETs path on the peer, with the peer token when auth is true,
// and turns a non-200 answer into an error.
func (n *haNode) peerGet(ctx context.Context, path string, auth bool) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(n.cfg.Peer, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	if auth {
		tok, err := os.ReadFile(n.cfg.PeerTokenFile)
		if err != nil {
			return nil, fmt.Errorf("ha.peer_token_file: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	resp, err := n.peerClient(ctx).Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("peer %s answered %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
	}
	return resp, nil
}
