// Package gateway makes the admin host the nodes' way out: ip_forward and
// NAT rules in airgapd's own iptables chains (AIRGAPD-PREROUTING,
// AIRGAPD-POSTROUTING, AIRGAPD-FORWARD, each reached by one jump from the
// built-in chain), static routes and rp_filter, reconciled against the
// kernel at start, on reload and every reconcile_every.
//
// Everything it reads from or changes on the host goes through two small
// interfaces, Tables (iptables) and Kernel (/proc/sys, routes, the sysctl.d
// drop-in, firewalld), so the reconcile logic is tested with fakes and the
// real code inside network namespaces.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airgapd/airgapd/api"
)

// Deps is what server hands the gateway. Tables and Kernel default to the
// real host (NewTables, NewKernel); Now defaults to time.Now.
type Deps struct {
	Logger  *slog.Logger
	Metrics prometheus.Registerer
	Tables  Tables
	Kernel  Kernel
	Now     func() time.Time
}

// Gateway is the NAT service.
type Gateway struct {
	log     *slog.Logger
	tables  Tables
	kernel  Kernel
	now     func() time.Time
	metrics *metrics
	kick    chan struct{}

	// op serialises everything that reads or changes the kernel.
	op sync.Mutex

	mu         sync.Mutex // guards what follows
	cfg        Config
	generation int // bumped by Reload
	status     Status
	inSync     bool // the last reconcile left the kernel as generation asked
	syncedGen  int
	lastLogged string // the last plan logged in plan mode
}

// New validates cfg and returns a gateway. It opens and reads nothing.
func New(cfg Config, deps Deps) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Gateway{
		log:    deps.Logger,
		tables: deps.Tables,
		kernel: deps.Kernel,
		now:    deps.Now,
		cfg:    cfg,
		kick:   make(chan struct{}, 1),
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.tables == nil {
		g.tables = NewTables()
	}
	if g.kernel == nil {
		g.kernel = NewKernel("")
	}
	if g.now == nil {
		g.now = time.Now
	}
	g.status = Status{State: StateStarting, Summary: "not reconciled yet", Mode: cfg.Mode}
	reg := deps.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg, g)
	if err != nil {
		return nil, err
	}
	g.metrics = m
	return g, nil
}

// Config returns the config in force.
func (g *Gateway) Config() Config {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cfg
}

// Run reconciles at start, on Reload and every reconcile_every until ctx
// ends, then returns nil and leaves the rules where they are: the nodes'
// way out must survive a restart of airgapd. In plan mode it only logs and
// reports what apply would change. Errors from the host (iptables missing,
// an interface that does not exist yet) are logged, shown in Status and
// retried; they do not stop airgapd's other services.
func (g *Gateway) Run(ctx context.Context) error {
	g.reconcile(causeStart)
	every := g.Config().ReconcileEvery.D()
	var tick <-chan time.Time
	var ticker *time.Ticker
	if every > 0 {
		ticker = time.NewTicker(every)
		tick = ticker.C
	}
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			g.log.Info("gateway stopped; rules left in place", "mode", g.Config().Mode)
			return nil
		case <-tick:
			g.reconcile(causeTimer)
		case <-g.kick:
			if e := g.Config().ReconcileEvery.D(); e != every {
				every = e
				if ticker != nil {
					ticker.Stop()
					ticker, tick = nil, nil
				}
				if every > 0 {
					ticker = time.NewTicker(every)
					tick = ticker.C
				}
			}
			g.reconcile(causeReload)
		}
	}
}

// Reload takes a new config and reconciles against it right away (in Run's
// goroutine). It never needs a restart. Switching to plan mode leaves the
// rules as they are.
func (g *Gateway) Reload(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	g.mu.Lock()
	g.cfg = cfg
	g.generation++
	g.mu.Unlock()
	select {
	case g.kick <- struct{}{}:
	default:
	}
	return nil
}

// Plan reads the kernel and returns what Apply would change. It changes
// nothing.
func (g *Gateway) Plan() (Plan, error) {
	g.op.Lock()
	defer g.op.Unlock()
	cfg := g.Config()
	want := desiredState(cfg)
	have, err := observe(g.tables, g.kernel, want)
	if err != nil && errors.Is(err, errIPTables) {
		return Plan{}, err
	}
	return diff(want, have, g.kernel.DropinPath()), err
}

// Apply makes the kernel match the config, whatever the config's mode
// says (`airgapd gateway apply`). It returns the changes it made.
func (g *Gateway) Apply() (Plan, error) {
	g.op.Lock()
	defer g.op.Unlock()
	p, _, err := g.applyLocked(g.Config())
	g.metrics.changes.WithLabelValues(causeCLI).Add(float64(len(p.Steps)))
	return p, err
}

// Down removes airgapd's jumps, chains, routes and drop-in, and leaves every
// other rule, chain and sysctl as it is (`airgapd gateway down`). It returns
// what it removed.
func (g *Gateway) Down() (Plan, error) {
	g.op.Lock()
	defer g.op.Unlock()
	have, err := observe(g.tables, g.kernel, desired{})
	if err != nil && errors.Is(err, errIPTables) {
		return Plan{}, err
	}
	p := downPlan(have, g.kernel.DropinPath())
	if errs := g.execute(p); errs != nil {
		err = errors.Join(err, errs)
	}
	return p, err
}

// Disable is what server calls when a reload removed the gateway section
// or set `enabled: false`: in apply mode it takes airgapd's rules down; in
// plan mode it touches nothing, as plan promises.
func (g *Gateway) Disable() error {
	if g.Config().Mode != ModeApply {
		g.log.Info("gateway disabled; plan mode, so nothing to remove")
		return nil
	}
	p, err := g.Down()
	if err != nil {
		g.log.Error("gateway disabled, but removing its rules failed", "err", err, "removed", p.Changes())
		return err
	}
	g.log.Info("gateway disabled; rules removed", "changes", len(p.Steps), "removed", p.Changes(), "notes", p.Notes)
	return nil
}

// applyLocked plans and applies; g.op must be held. It returns the plan,
// the kernel as read before the plan, and what went wrong.
func (g *Gateway) applyLocked(cfg Config) (Plan, observed, error) {
	want := desiredState(cfg)
	have, err := observe(g.tables, g.kernel, want)
	if err != nil && errors.Is(err, errIPTables) {
		return Plan{}, have, err
	}
	p := diff(want, have, g.kernel.DropinPath())
	if errs := g.execute(p); errs != nil {
		err = errors.Join(err, errs)
	}
	return p, have, err
}

// execute runs every step and collects the failures; a step that fails
// does not stop the independent ones after it.
func (g *Gateway) execute(p Plan) error {
	var errs []error
	for _, s := range p.Steps {
		if err := g.do(s); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s, err))
		}
	}
	return errors.Join(errs...)
}

func (g *Gateway) do(s Step) error {
	t, k := g.tables, g.kernel
	switch s.Op {
	case OpNewChain:
		return t.NewChain(s.Table, s.Chain)
	case OpInsert:
		return t.Insert(s.Table, s.Chain, s.Pos, splitSpec(s.Rule))
	case OpAppend:
		return t.Append(s.Table, s.Chain, splitSpec(s.Rule))
	case OpDelete:
		return t.Delete(s.Table, s.Chain, splitSpec(s.Rule))
	case OpDeleteAt:
		return t.DeleteAt(s.Table, s.Chain, s.Pos)
	case OpFlush:
		return t.ClearChain(s.Table, s.Chain)
	case OpDeleteChain:
		return t.DeleteChain(s.Table, s.Chain)
	case OpSysctl:
		return k.WriteSysctl(s.Path, s.Value)
	case OpRouteReplace:
		return k.ReplaceRoute(s.Route)
	case OpRouteDelete:
		return k.DeleteRoute(s.Route)
	case OpDropinWrite:
		return k.WriteDropin(s.Data)
	case OpDropinRemove:
		return k.RemoveDropin()
	}
	return fmt.Errorf("unknown step %d", s.Op)
}

// Why a reconcile runs.
const (
	causeStart  = "start"
	causeTimer  = "timer"
	causeReload = "reload"
	causeCLI    = "cli"
	causeDrift  = "drift"
)

// reconcile is one pass of Run.
func (g *Gateway) reconcile(cause string) {
	g.op.Lock()
	defer g.op.Unlock()
	g.mu.Lock()
	cfg, gen := g.cfg, g.generation
	wasInSync := g.inSync && g.syncedGen == gen
	g.mu.Unlock()

	if cfg.Mode == ModePlan {
		g.reconcilePlan(cfg, cause)
		return
	}
	start := time.Now()
	p, have, err := g.applyLocked(cfg)
	result := "ok"
	if err != nil {
		result = "error"
	}
	g.metrics.reconciles.WithLabelValues(result).Inc()
	label := cause
	if cause == causeTimer && !p.Empty() && wasInSync {
		label = causeDrift
	}
	g.metrics.changes.WithLabelValues(label).Add(float64(len(p.Steps)))
	took := time.Since(start).Round(time.Millisecond)

	var drift *DriftEvent
	switch {
	case err != nil:
		g.log.Error("gateway reconcile failed", "cause", cause, "err", err, "changes", p.Changes())
	case label == causeDrift:
		drift = &DriftEvent{Time: g.now(), Changes: p.Changes()}
		g.metrics.drift.Inc()
		g.log.Warn("gateway drift repaired", "changes", len(p.Steps), "repaired", p.Changes(), "took", took)
	case cause == causeTimer && p.Empty():
		g.log.Debug("gateway in sync", "took", took)
	default:
		g.log.Info("gateway reconciled", "cause", cause, "changes", len(p.Steps), "applied", p.Changes(), "backend", have.Backend, "took", took)
	}

	// After a change, read back: for the counters in Status and to see
	// that the change took. Without one, the first read is current.
	left := Plan{Notes: p.Notes}
	var rerr error
	if !p.Empty() || err != nil {
		want := desiredState(cfg)
		have, rerr = observe(g.tables, g.kernel, want)
		if rerr == nil || !errors.Is(rerr, errIPTables) {
			left = diff(want, have, g.kernel.DropinPath())
		}
		if err == nil && rerr == nil && !left.Empty() {
			g.log.Warn("gateway: the kernel differs from the config right after apply; either another tool changed it meanwhile, or a rule reads back differently than airgapd wrote it (then please report this line)", "left", left.Changes())
		}
	}
	// In sync means the apply went through. What the read-back shows is
	// for Status: another tool may change things again at any moment.
	synced := err == nil

	if cause != causeTimer {
		for _, n := range p.Notes {
			level := slog.LevelInfo
			if strings.HasPrefix(n, "firewalld is active") {
				level = slog.LevelWarn
			}
			g.log.Log(context.Background(), level, "gateway note", "note", n)
		}
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	g.inSync, g.syncedGen = synced, gen
	st := g.statusFrom(cfg, have, left, errors.Join(err, rerr))
	st.Drift = g.status.Drift
	if drift != nil {
		st.Drift = append(st.Drift, *drift)
		if len(st.Drift) > maxDrift {
			st.Drift = st.Drift[len(st.Drift)-maxDrift:]
		}
	}
	g.status = st
}

// reconcilePlan is reconcile in plan mode: read, report, change nothing.
func (g *Gateway) reconcilePlan(cfg Config, cause string) {
	want := desiredState(cfg)
	have, err := observe(g.tables, g.kernel, want)
	p := diff(want, have, g.kernel.DropinPath())
	if err != nil && errors.Is(err, errIPTables) {
		// Show the whole plan against an empty kernel: still useful, and
		// what a first apply would do.
		p = diff(want, observed{Sysctls: have.Sysctls, SysctlErr: have.SysctlErr}, g.kernel.DropinPath())
	}
	text := p.String()
	g.mu.Lock()
	changed := text != g.lastLogged
	g.lastLogged = text
	g.mu.Unlock()
	if changed || cause != causeTimer {
		attrs := []any{"cause", cause, "changes", len(p.Steps), "plan", p.Changes()}
		if err != nil {
			attrs = append(attrs, "err", err)
		}
		g.log.Info("gateway plan (mode: plan; nothing was changed)", attrs...)
	}
	g.metrics.reconciles.WithLabelValues("plan").Inc()
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.statusFrom(cfg, have, p, err)
	st.Drift = g.status.Drift
	g.status = st
}

// maxDrift is how many drift events Status keeps.
const maxDrift = 20

// Status is the gateway's state (the api package defines it).
type Status = api.GatewayStatus

// RuleStatus is one of airgapd's rules as the kernel holds it.
type RuleStatus = api.GatewayRule

// SysctlStatus is one sysctl airgapd manages.
type SysctlStatus = api.GatewaySysctl

// DriftEvent is one repair of changes someone else made.
type DriftEvent = api.GatewayDrift

// States a gateway reports.
const (
	StateStarting = "starting"
	StateApplied  = "applied" // the kernel matches the config
	StatePlan     = "plan"    // plan mode: nothing changed on this host
	StateError    = "error"   // the last reconcile failed; retried
)

// Status returns a copy of the latest state.
func (g *Gateway) Status() Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.status
	st.Rules = append([]RuleStatus(nil), st.Rules...)
	st.Drift = append([]DriftEvent(nil), st.Drift...)
	return st
}

// statusFrom builds Status from one reading of the kernel.
func (g *Gateway) statusFrom(cfg Config, have observed, left Plan, err error) Status {
	st := Status{
		Mode:          cfg.Mode,
		Backend:       have.Backend,
		IPForward:     have.Sysctls[ipForwardPath],
		Firewalld:     have.Firewalld.String(),
		Notes:         left.Notes,
		LastReconcile: g.now(),
		Pending:       left.Changes(),
	}
	for _, oc := range ownedChains() {
		for _, r := range have.Listed[key(oc.Table, oc.Chain)].Rules {
			st.Rules = append(st.Rules, RuleStatus{Table: oc.Table, Chain: oc.Chain, Rule: r.Spec, Packets: r.Packets, Bytes: r.Bytes})
		}
	}
	for _, s := range desiredState(cfg).Sysctls {
		st.Sysctls = append(st.Sysctls, SysctlStatus{Name: sysctlName(s.Path), Want: s.Value, Have: have.Sysctls[s.Path]})
	}
	for _, r := range have.Routes {
		st.Routes = append(st.Routes, r.String())
	}
	if err != nil {
		st.LastError = err.Error()
	}
	fw := ""
	if st.IPForward != "" {
		fw = ", ip_forward " + st.IPForward
	}
	switch {
	case cfg.Mode == ModePlan:
		st.State = StatePlan
		st.Summary = fmt.Sprintf("plan mode: %d change(s) pending, nothing changed on this host", len(left.Steps))
		if err != nil {
			st.Summary += "; " + firstLine(err.Error())
		}
	case err != nil:
		st.State = StateError
		st.Summary = firstLine(err.Error())
	default:
		st.State = StateApplied
		st.Summary = fmt.Sprintf("%d rule(s) in AIRGAPD-* chains%s, %s backend", len(st.Rules), fw, have.Backend)
		if have.Firewalld.NFTables {
			st.Summary += "; firewalld (nftables) may still drop forwarded traffic, see notes"
		}
	}
	return st
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
