package ntpd

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/ntp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/airgapd/airgapd/internal/conf"
)

// running is a Server on a port-0 loopback socket, stopped at cleanup.
type running struct {
	*Server
	addr string
	reg  *prometheus.Registry
	stop func()
}

func startServer(t *testing.T, cfg Config, deps Deps) *running {
	t.Helper()
	return startServerOn(t, "127.0.0.1:0", cfg, deps)
}

// startServerOn is startServer on a given loopback address.
func startServerOn(t *testing.T, addr string, cfg Config, deps Deps) *running {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	reg := prometheus.NewRegistry()
	deps.UDP = []net.PacketConn{pc}
	deps.Metrics = reg
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return within 5 s of cancel")
		}
	}
	t.Cleanup(stop)
	return &running{Server: s, addr: pc.LocalAddr().String(), reg: reg, stop: stop}
}

func query(addr, from string) (*ntp.Response, error) {
	return ntp.QueryWithOptions(addr, ntp.QueryOptions{Timeout: 2 * time.Second, LocalAddress: from})
}

// answered reports whether a request from `from` gets any answer within
// 500 ms (for requests that should go unanswered).
func answered(addr, from string) bool {
	_, err := ntp.QueryWithOptions(addr, ntp.QueryOptions{Timeout: 500 * time.Millisecond, LocalAddress: from})
	return err == nil
}

// waitFor polls cond every 20 ms until it holds or limit passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func loopbackConfig() Config {
	c := DefaultConfig()
	c.Listen = []string{"127.0.0.1:0"}
	c.Allow = []string{"127.0.0.1"}
	return c
}

func TestServeLocal(t *testing.T) {
	s := startServer(t, loopbackConfig(), Deps{})
	r, err := query(s.addr, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Validate(); err != nil {
		t.Errorf("reply not valid for synchronisation: %v", err)
	}
	if r.Stratum != 10 || r.Leap != 0 || r.ReferenceID != refidLOCL {
		t.Errorf("stratum %d leap %d refid %s; want 10, 0, LOCL", r.Stratum, r.Leap, r.ReferenceString())
	}
	if r.ClockOffset.Abs() > 100*time.Millisecond { // loose: a loaded CI machine delays replies unevenly
		t.Errorf("offset %s from this host's clock", r.ClockOffset)
	}
	if r.Precision > time.Millisecond {
		t.Errorf("precision %s", r.Precision)
	}
	// Outside allow: silence.
	if answered(s.addr, "127.0.0.9") {
		t.Error("127.0.0.9 is outside allow but got an answer")
	}
	if got := counterValue(s.metrics.results[resDenied]); got != 1 {
		t.Errorf("denied counter %v, want 1", got)
	}
	st := s.Status()
	if st.State != "local" || len(st.Listen) != 1 || st.ClientsTotal != 1 || st.Clients[0].Address != "127.0.0.1" {
		t.Errorf("status %+v", st)
	}
	mfs, err := s.reg.Gather()
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, want := range []string{"airgapd_ntp_stratum", "airgapd_ntp_requests_total", "airgapd_ntp_offset_seconds", "airgapd_ntp_clients"} {
		if !names[want] {
			t.Errorf("metric %s missing (%v)", want, err)
		}
	}
}

// TestSyncFromUpstream: one airgapd syncs from another at local stratum 3,
// serves stratum 4, and falls back to stratum 10 once the upstream is gone.
func TestSyncFromUpstream(t *testing.T) {
	upCfg := loopbackConfig()
	upCfg.LocalStratum = 3
	up := startServer(t, upCfg, Deps{})

	cfg := loopbackConfig()
	cfg.Servers = []string{up.addr}
	cfg.MinPoll, cfg.MaxPoll = -4, -3
	cfg.FallbackAfter = conf.Duration(time.Second)
	cfg.RateLimit.Enabled = false
	s := startServer(t, cfg, Deps{})

	waitFor(t, 15*time.Second, "synced", func() bool { return s.Status().State == "synced" })
	r, err := query(s.addr, "")
	if err != nil {
		t.Fatal(err)
	}
	// Root delay and dispersion on loopback can be below the 15 µs the
	// short format resolves, so they are checked in TestRespondFields.
	if r.Stratum != 4 || r.Leap != 0 || r.ReferenceString() != "127.0.0.1" {
		t.Errorf("stratum %d leap %d refid %s; want 4, 0, 127.0.0.1", r.Stratum, r.Leap, r.ReferenceString())
	}
	st := s.Status()
	if len(st.Sources) != 1 || st.Sources[0].Mark != "*" || !strings.Contains(st.SourcesView, "^* "+up.addr) {
		t.Errorf("sources view:\n%s", st.SourcesView)
	}
	if len(st.History) == 0 || st.LastUpdate == nil {
		t.Errorf("no history")
	}

	up.stop()
	waitFor(t, 15*time.Second, "fallback to local stratum", func() bool { return s.Status().State == "local" })
	r, err = query(s.addr, "")
	if err != nil {
		t.Fatal(err)
	}
	if r.Stratum != 10 || r.Leap != 0 || r.ReferenceID != refidLOCL {
		t.Errorf("after the upstream stopped: stratum %d leap %d refid %s", r.Stratum, r.Leap, r.ReferenceString())
	}
}

func TestUnsynchronisedWithoutLocal(t *testing.T) {
	cfg := loopbackConfig()
	cfg.LocalStratum = 0
	s := startServer(t, cfg, Deps{})
	r, err := query(s.addr, "")
	if err != nil {
		t.Fatal(err)
	}
	if r.Leap != ntp.LeapNotInSync || r.Validate() == nil {
		t.Errorf("leap %d, validate %v: want leap 3, refused", r.Leap, r.Validate())
	}
}

func TestReload(t *testing.T) {
	cfg := loopbackConfig()
	s := startServer(t, cfg, Deps{})
	if answered(s.addr, "127.0.0.9") {
		t.Fatal("answered outside allow")
	}
	cfg.Allow = []string{"127.0.0.0/8"}
	cfg.LocalStratum = 8
	if err := s.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	r, err := query(s.addr, "127.0.0.9")
	if err != nil || r.Stratum != 8 {
		t.Fatalf("after reload: %v, %v", r, err)
	}
	moved := cfg
	moved.Listen = []string{"127.0.0.1:12345"}
	if err := s.Reload(moved); !errors.Is(err, conf.ErrRestartNeeded) {
		t.Errorf("listen change: %v, want ErrRestartNeeded", err)
	}
	bad := cfg
	bad.MinPoll = 99
	if err := s.Reload(bad); err == nil || errors.Is(err, conf.ErrRestartNeeded) {
		t.Errorf("invalid config: %v", err)
	}
}

// TestFiles: the drift file seeds the frequency; a settime request left in
// data_dir is applied by the running server.
func TestFiles(t *testing.T) {
	dir := t.TempDir()
	if err := writeDrift(filepath.Join(Dir(dir), driftFile), 12.5, 0.1); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, loopbackConfig(), Deps{DataDir: dir})
	waitFor(t, 10*time.Second, "drift loaded", func() bool { return s.Status().FrequencyFrom == "drift file" })
	if f := s.Status().Frequency; f < 12.4999 || f > 12.5001 {
		t.Errorf("frequency %v", f)
	}
	now := time.Now()
	if err := WriteSetTime(dir, now.Add(time.Hour), now, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "settime applied", func() bool { return !SetTimePending(dir) })
	r, err := query(s.addr, "")
	if err != nil {
		t.Fatal(err)
	}
	if d := r.ClockOffset - time.Hour; d.Abs() > time.Second {
		t.Errorf("served time is %s ahead, want 1h", r.ClockOffset)
	}
	if st := s.Status(); st.ManualSetAt == nil || !strings.Contains(st.Summary, "time set by operator") {
		t.Errorf("status: %s", st.Summary)
	}
	if _, err := os.Stat(filepath.Join(Dir(dir), driftFile)); err != nil {
		t.Error(err)
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	c.Write(&m)
	return m.GetCounter().GetValue()
}
