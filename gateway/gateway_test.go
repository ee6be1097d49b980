package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/airgapd/airgapd/internal/conf"
)

// fullConfig uses every kind of rule and setting.
func fullConfig() Config {
	c := labConfig()
	c.SNAT = []SNAT{{Source: "192.168.20.0/24", OutInterface: "enp0s8", ToSource: "203.0.113.10"}}
	c.DNAT = []DNAT{{InInterface: "enp0s8", Proto: "tcp", Port: 8443, To: "192.168.10.20:443"}}
	c.ForwardPolicy = PolicyDrop
	c.Routes = []Route{{Destination: "10.20.0.0/16", Via: "192.168.10.1", Dev: "enp0s9"}}
	c.RPFilter = map[string]int{"enp0s8": 2}
	c.SysctlDropin = true
	return c
}

// libvirtNet is a namespace with libvirt-like rules that must never change.
func libvirtNet() *memNet {
	m := newMemNet()
	m.sysctl["net/ipv4/conf/enp0s8/rp_filter"] = "1"
	m.add("filter", "LIBVIRT_FWI", "-o virbr0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
	m.add("filter", "LIBVIRT_FWI", "-o virbr0 -j REJECT --reject-with icmp-port-unreachable")
	m.add("filter", "FORWARD", "-j LIBVIRT_FWI")
	m.add("nat", "LIBVIRT_PRT", "-s 192.168.122.0/24 -d 224.0.0.0/24 -j RETURN")
	m.add("nat", "POSTROUTING", "-j LIBVIRT_PRT")
	return m
}

// foreign is the dump without airgapd's chains and jumps.
func foreign(dump string) string {
	var keep []string
	for _, l := range strings.Split(dump, "\n") {
		if !strings.Contains(l, chainPrefix) && !strings.HasPrefix(l, "sysctl ") && !strings.HasPrefix(l, "route ") && !strings.HasPrefix(l, "dropin ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func newTestGateway(t *testing.T, cfg Config, ft *fakeTables, fk *fakeKernel) (*Gateway, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	g, err := New(cfg, Deps{Metrics: reg, Tables: ft, Kernel: fk})
	if err != nil {
		t.Fatal(err)
	}
	return g, reg
}

func TestNewOpensNothing(t *testing.T) {
	ft, fk := &fakeTables{t: t}, &fakeKernel{t: t} // every call fails the test
	if _, err := New(fullConfig(), Deps{Tables: ft, Kernel: fk, Metrics: prometheus.NewRegistry()}); err != nil {
		t.Fatal(err)
	}
	bad := labConfig()
	bad.Mode = "now"
	if _, err := New(bad, Deps{Tables: ft, Kernel: fk}); err == nil {
		t.Error("New accepted an invalid config")
	}
}

func TestApplyConvergesAndIsIdempotent(t *testing.T) {
	m := libvirtNet()
	before := foreign(m.dump())
	ft, fk := m.fakes(t)
	g, _ := newTestGateway(t, fullConfig(), ft, fk)

	p, err := g.Apply()
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, p)
	}
	if p.Empty() {
		t.Fatal("first apply changed nothing")
	}
	if got := foreign(m.dump()); got != before {
		t.Errorf("foreign rules changed:\n%s\nwant:\n%s", got, before)
	}
	if got := m.chainRules("filter", "FORWARD"); got[0] != "-j AIRGAPD-FORWARD" {
		t.Errorf("FORWARD = %q; airgapd's jump must come first", got)
	}
	if got := m.sysctl[ipForwardPath]; got != "1" {
		t.Errorf("ip_forward %q", got)
	}
	if !strings.Contains(string(m.dropin), "net.ipv4.conf.enp0s8.rp_filter = 2") {
		t.Errorf("drop-in:\n%s", m.dropin)
	}

	// A second apply and a plan find nothing to do, and change nothing.
	n := m.mutating
	if p, err := g.Plan(); err != nil || !p.Empty() {
		t.Errorf("plan after apply: %v\n%s", err, p)
	}
	if p, err := g.Apply(); err != nil || !p.Empty() {
		t.Errorf("second apply: %v\n%s", err, p)
	}
	if m.mutating != n {
		t.Errorf("%d changes after the kernel was in sync", m.mutating-n)
	}

	// Down removes airgapd's things and nothing else; ip_forward stays.
	p, err = g.Down()
	if err != nil {
		t.Fatalf("down: %v\n%s", err, p)
	}
	after := m.dump()
	if strings.Contains(after, chainPrefix) {
		t.Errorf("AIRGAPD chains left after down:\n%s", after)
	}
	if got := foreign(after); got != before {
		t.Errorf("foreign rules changed by down:\n%s\nwant:\n%s", got, before)
	}
	if len(m.routes) != 0 || m.dropin != nil || m.sysctl[ipForwardPath] != "1" {
		t.Errorf("after down: routes %v, drop-in %q, ip_forward %s", m.routes, m.dropin, m.sysctl[ipForwardPath])
	}
	if p, err := g.Down(); err != nil || !p.Empty() {
		t.Errorf("second down: %v\n%s", err, p)
	}
}

func TestDriftIsRepaired(t *testing.T) {
	cases := []struct {
		name  string
		drift func(m *memNet)
		// foreignChange is true when the drift itself changed foreign
		// rules, which airgapd must leave as they now are.
		foreignChange bool
	}{
		{name: "nat POSTROUTING and airgapd's nat chains flushed", foreignChange: true, drift: func(m *memNet) {
			m.rules[key("nat", "POSTROUTING")] = nil
			m.rules[key("nat", ChainPostrouting)] = nil
			m.rules[key("nat", ChainPrerouting)] = nil
		}},
		{name: "jump deleted", drift: func(m *memNet) {
			m.rules[key("filter", "FORWARD")] = m.rules[key("filter", "FORWARD")][1:]
		}},
		{name: "another tool inserted above the jump", foreignChange: true, drift: func(m *memNet) {
			fwd := m.rules[key("filter", "FORWARD")]
			m.rules[key("filter", "FORWARD")] = append([]*memRule{{spec: "-j DOCKER-USER"}}, fwd...)
		}},
		{name: "duplicate MASQUERADE", drift: func(m *memNet) {
			r := m.rules[key("nat", ChainPostrouting)]
			m.rules[key("nat", ChainPostrouting)] = append(r, &memRule{spec: r[0].spec})
		}},
		{name: "chain deleted", drift: func(m *memNet) {
			m.rules[key("nat", "POSTROUTING")] = m.rules[key("nat", "POSTROUTING")][1:]
			m.rules[key("nat", ChainPostrouting)] = nil
			m.chains["nat"] = m.chains["nat"][:len(m.chains["nat"])-1]
		}},
		{name: "ip_forward off", drift: func(m *memNet) { m.sysctl[ipForwardPath] = "0" }},
		{name: "route deleted", drift: func(m *memNet) { m.routes = nil }},
		{name: "drop-in edited", drift: func(m *memNet) { m.dropin = []byte("net.ipv4.ip_forward = 0\n") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := libvirtNet()
			ft, fk := m.fakes(t)
			g, reg := newTestGateway(t, fullConfig(), ft, fk)
			g.reconcile(causeStart)
			if st := g.Status(); st.State != StateApplied || len(st.Drift) != 0 {
				t.Fatalf("after start: %+v", st)
			}
			synced := m.dump()

			m.mu.Lock()
			tc.drift(m)
			m.mu.Unlock()
			drifted := foreign(m.dump())

			g.reconcile(causeTimer)
			st := g.Status()
			if st.State != StateApplied || len(st.Pending) != 0 || st.LastError != "" {
				t.Errorf("after repair: state %s, pending %q, error %q", st.State, st.Pending, st.LastError)
			}
			if len(st.Drift) != 1 || len(st.Drift[0].Changes) == 0 {
				t.Errorf("drift events %+v, want one with changes", st.Drift)
			}
			if p, _ := g.Plan(); !p.Empty() {
				t.Errorf("not repaired:\n%s", p)
			}
			if got := foreign(m.dump()); got != drifted {
				t.Errorf("foreign rules changed by the repair:\n%s\nwant:\n%s", got, drifted)
			}
			if !tc.foreignChange && m.dump() != synced {
				t.Errorf("state after repair differs from the state after start:\n%s\nwant:\n%s", m.dump(), synced)
			}
			if n := count(m.chainRules("nat", ChainPostrouting), "-j MASQUERADE"); n != 1 {
				t.Errorf("%d MASQUERADE rules, want 1", n)
			}
			if v := metricValue(t, reg, "airgapd_gateway_drift_events_total", nil); v != 1 {
				t.Errorf("airgapd_gateway_drift_events_total = %v, want 1", v)
			}
			// In sync again: the next pass is quiet.
			g.reconcile(causeTimer)
			if st := g.Status(); len(st.Drift) != 1 {
				t.Errorf("a quiet pass recorded drift: %+v", st.Drift)
			}
		})
	}
}

func count(rules []string, substr string) int {
	n := 0
	for _, r := range rules {
		if strings.Contains(r, substr) {
			n++
		}
	}
	return n
}

// metricValue finds one sample in a registry; labels must match exactly.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue next
				}
			}
			return sampleValue(m)
		}
	}
	t.Fatalf("no sample %s%v", name, labels)
	return 0
}

func sampleValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

// waitFor polls a condition on an in-memory fake, bounded.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// runGateway runs g.Run and returns a stop function that cancels it and
// returns Run's result.
func runGateway(t *testing.T, g *Gateway) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancel")
			return nil
		}
	}
	t.Cleanup(func() { stop() })
	return stop
}

func TestPlanModeTouchesNothing(t *testing.T) {
	m := libvirtNet()
	before := m.dump()
	ft, fk := m.fakes(t)
	readOnly(ft, fk) // any change fails the test
	cfg := fullConfig()
	cfg.Mode = ModePlan
	g, reg := newTestGateway(t, cfg, ft, fk)
	stop := runGateway(t, g)
	waitFor(t, "the first plan", func() bool { return g.Status().State == StatePlan })
	if err := stop(); err != nil {
		t.Fatalf("Run returned %v", err)
	}
	st := g.Status()
	if len(st.Pending) == 0 || !strings.Contains(strings.Join(st.Pending, "\n"), "-j MASQUERADE") {
		t.Errorf("pending %q lacks the MASQUERADE rule", st.Pending)
	}
	if !strings.Contains(st.Summary, "nothing changed on this host") {
		t.Errorf("summary %q", st.Summary)
	}
	if v := metricValue(t, reg, "airgapd_gateway_pending_changes", nil); v != float64(len(st.Pending)) {
		t.Errorf("airgapd_gateway_pending_changes = %v, want %d", v, len(st.Pending))
	}
	if m.dump() != before || m.mutating != 0 {
		t.Errorf("plan mode changed the kernel:\n%s", m.dump())
	}
	// Disabling a gateway in plan mode touches nothing either.
	if err := g.Disable(); err != nil {
		t.Fatal(err)
	}
}

func TestRunLeavesRulesWhenStopped(t *testing.T) {
	m := libvirtNet()
	ft, fk := m.fakes(t)
	g, reg := newTestGateway(t, fullConfig(), ft, fk)
	stop := runGateway(t, g)
	waitFor(t, "the first apply", func() bool { return g.Status().State == StateApplied })
	applied := m.dump()
	// From here on, nothing may be removed.
	ft.delete, ft.deleteAt, ft.deleteChain, ft.clearChain = nil, nil, nil, nil
	fk.deleteRoute, fk.removeDropin = nil, nil
	if err := stop(); err != nil {
		t.Fatalf("Run returned %v", err)
	}
	if m.dump() != applied {
		t.Errorf("stopping changed the kernel:\n%s\nwant:\n%s", m.dump(), applied)
	}
	if v := metricValue(t, reg, "airgapd_gateway_in_sync", nil); v != 1 {
		t.Errorf("airgapd_gateway_in_sync = %v", v)
	}
	if v := metricValue(t, reg, "airgapd_gateway_changes_total", map[string]string{"cause": "start"}); v == 0 {
		t.Error("airgapd_gateway_changes_total{cause=start} is 0")
	}
}

func TestReloadAndDisable(t *testing.T) {
	m := libvirtNet()
	before := foreign(m.dump())
	ft, fk := m.fakes(t)
	cfg := labConfig()
	cfg.ReconcileEvery = 0 // no timer: only start and reloads
	g, _ := newTestGateway(t, cfg, ft, fk)
	runGateway(t, g)
	waitFor(t, "the first apply", func() bool { return g.Status().State == StateApplied })

	cfg.Masquerade = append(cfg.Masquerade, Masquerade{Source: "192.168.30.0/24", OutInterface: "enp0s8"})
	if err := g.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new rule", func() bool { return count(m.chainRules("nat", ChainPostrouting), "192.168.30.0/24") == 1 })

	// plan mode: the rules stay; a disable in plan mode leaves them too.
	plan := cfg
	plan.Mode = ModePlan
	g.Reload(plan)
	waitFor(t, "plan mode", func() bool { return g.Status().State == StatePlan })
	if count(m.chainRules("nat", ChainPostrouting), "MASQUERADE") != 2 {
		t.Errorf("switching to plan mode changed the rules: %q", m.chainRules("nat", ChainPostrouting))
	}
	g.Reload(cfg)
	waitFor(t, "apply mode", func() bool { return g.Status().State == StateApplied })
	if err := g.Disable(); err != nil {
		t.Fatal(err)
	}
	if d := m.dump(); strings.Contains(d, chainPrefix) || foreign(d) != before {
		t.Errorf("after disable:\n%s\nwant no AIRGAPD chains and foreign rules:\n%s", d, before)
	}
}

func TestIPTablesMissing(t *testing.T) {
	ft := &fakeTables{t: t, backend: func() (string, error) {
		return "", fmt.Errorf("%w: exec: \"iptables\": executable file not found in $PATH", errNoIPTablesForTest)
	}}
	fk := &fakeKernel{t: t}
	g, reg := newTestGateway(t, labConfig(), ft, fk)
	g.reconcile(causeStart)
	st := g.Status()
	if st.State != StateError || !strings.Contains(st.Summary, "iptables is not installed") {
		t.Errorf("status %s %q", st.State, st.Summary)
	}
	if v := metricValue(t, reg, "airgapd_gateway_reconciles_total", map[string]string{"result": "error"}); v != 1 {
		t.Errorf("reconciles{error} = %v", v)
	}
	if _, err := g.Plan(); err == nil {
		t.Error("Plan without iptables did not fail")
	}
	// Plan mode still shows the whole plan, against an empty kernel.
	cfg := labConfig()
	cfg.Mode = ModePlan
	fk.readSysctl = func(string) (string, error) { return "0", nil }
	fk.routes = func() ([]KernelRoute, error) { return nil, nil }
	fk.readDropin = func() ([]byte, error) { return nil, nil }
	fk.firewalld = func() Firewalld { return Firewalld{} }
	g, _ = newTestGateway(t, cfg, ft, fk)
	g.reconcile(causeStart)
	st = g.Status()
	if st.State != StatePlan || !strings.Contains(strings.Join(st.Pending, "\n"), "MASQUERADE") || !strings.Contains(st.Summary, "not installed") {
		t.Errorf("plan mode without iptables: %s %q pending %q", st.State, st.Summary, st.Pending)
	}
}

var errNoIPTablesForTest = errors.New("iptables is not installed")

func TestFailedStepDoesNotStopTheOthers(t *testing.T) {
	m := libvirtNet()
	ft, fk := m.fakes(t)
	cfg := labConfig()
	cfg.RPFilter = map[string]int{"enp9s9": 2} // no such interface
	g, _ := newTestGateway(t, cfg, ft, fk)
	g.reconcile(causeStart)
	st := g.Status()
	if st.State != StateError || !strings.Contains(st.LastError, "enp9s9") {
		t.Errorf("state %s, error %q", st.State, st.LastError)
	}
	if count(m.chainRules("nat", ChainPostrouting), "MASQUERADE") != 1 || m.sysctl[ipForwardPath] != "1" {
		t.Errorf("the other steps did not run:\n%s", m.dump())
	}
	if len(st.Pending) != 1 {
		t.Errorf("pending %q, want the rp_filter line", st.Pending)
	}
	// The retry is not drift: the kernel was never in sync.
	g.reconcile(causeTimer)
	if st := g.Status(); len(st.Drift) != 0 {
		t.Errorf("a retry recorded drift: %+v", st.Drift)
	}
}

func TestStatusCountersAndNotes(t *testing.T) {
	m := libvirtNet()
	m.fw = Firewalld{Running: true, NFTables: true}
	ft, fk := m.fakes(t)
	g, reg := newTestGateway(t, labConfig(), ft, fk)
	g.reconcile(causeStart)
	m.mu.Lock()
	m.rules[key("nat", ChainPostrouting)][0].packets = 12
	m.rules[key("nat", ChainPostrouting)][0].bytes = 720
	m.mu.Unlock()
	g.reconcile(causeTimer)
	st := g.Status()
	var masq *RuleStatus
	for i, r := range st.Rules {
		if strings.HasSuffix(r.Rule, "-j MASQUERADE") {
			masq = &st.Rules[i]
		}
	}
	if masq == nil || masq.Packets != 12 || masq.Bytes != 720 || masq.Table != "nat" || masq.Chain != ChainPostrouting {
		t.Errorf("MASQUERADE rule status %+v in %+v", masq, st.Rules)
	}
	if st.Backend != "nf_tables" || st.IPForward != "1" || !strings.Contains(st.Firewalld, "nftables") {
		t.Errorf("backend %q, ip_forward %q, firewalld %q", st.Backend, st.IPForward, st.Firewalld)
	}
	notes := strings.Join(st.Notes, "\n")
	for _, want := range []string{"firewall-cmd", "FORWARD holds 1 other rule(s)"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	if !strings.Contains(st.Summary, "firewalld") {
		t.Errorf("summary %q does not mention firewalld", st.Summary)
	}
	labels := map[string]string{"table": "nat", "chain": ChainPostrouting, "rule": "-s 192.168.10.0/24 -o enp0s8 -j MASQUERADE"}
	if v := metricValue(t, reg, "airgapd_gateway_rule_packets_total", labels); v != 12 {
		t.Errorf("rule packets = %v", v)
	}
	if v := metricValue(t, reg, "airgapd_gateway_rule_bytes_total", labels); v != 720 {
		t.Errorf("rule bytes = %v", v)
	}
	if v := metricValue(t, reg, "airgapd_gateway_ip_forward", nil); v != 1 {
		t.Errorf("ip_forward gauge = %v", v)
	}
}

func TestReloadChangesTheInterval(t *testing.T) {
	m := newMemNet()
	ft, fk := m.fakes(t)
	cfg := labConfig()
	cfg.ReconcileEvery = 0
	logs := &logRecorder{}
	reg := prometheus.NewRegistry()
	g, err := New(cfg, Deps{Metrics: reg, Tables: ft, Kernel: fk, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	runGateway(t, g)
	waitFor(t, "the first apply", func() bool { return g.Status().State == StateApplied })
	passes := func() float64 {
		return metricValue(t, reg, "airgapd_gateway_reconciles_total", map[string]string{"result": "ok"})
	}
	cfg.ReconcileEvery = conf.Duration(5 * time.Millisecond)
	g.Reload(cfg)
	waitFor(t, "timer passes", func() bool { return passes() >= 5 })
	cfg.ReconcileEvery = 0
	g.Reload(cfg)
	// Run stops the ticker before the reload's own pass.
	waitFor(t, "the second reload's pass", func() bool { return logs.count("gateway reconciled cause=reload") == 2 })
	n := passes()
	time.Sleep(50 * time.Millisecond) // ten would-be ticks
	if got := passes(); got != n {
		t.Errorf("%v passes after reconcile_every went to 0", got-n)
	}
}

// logRecorder keeps "message cause=…" of every log record.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	line := r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "cause" {
			line += " cause=" + a.Value.String()
		}
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	return nil
}

func (l *logRecorder) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if line == s {
			n++
		}
	}
	return n
}
