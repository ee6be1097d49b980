// Package server loads and validates airgapd.yaml, owns every listening
// socket and the appliance CA, builds every service, and runs them together:
// ordered start, reverse stop, reload on SIGHUP that builds the new service
// before the old one stops, and systemd notify/watchdog.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"

	"github.com/airgapd/airgapd/internal/atomicfile"
	"github.com/airgapd/airgapd/internal/conf"
	"github.com/airgapd/airgapd/server/pki"
	"github.com/airgapd/airgapd/web"
)

// Options configure a Server beyond its config file.
type Options struct {
	// ConfigPath is reread on Reload; empty means the built-in dev defaults.
	ConfigPath string
	Version    string
	// Logger, when nil, is built from the config's log section.
	Logger *slog.Logger
	// Notify reports state to systemd; nil uses NOTIFY_SOCKET when set.
	Notify Notifier
}

// Notifier tells the service manager what airgapd is doing.
type Notifier interface {
	Notify(state string) error
	// WatchdogInterval is zero when no watchdog is expected.
	WatchdogInterval() time.Duration
}

// Server runs every configured service.
type Server struct {
	opts    Options
	log     *slog.Logger
	notify  Notifier
	metrics *prometheus.Registry // server's own metrics; services get their own

	sockets    *socketSet
	controlKey socketKey
	ca         *pki.Authority

	mirrorHandler   swappableHandler
	registryHandler swappableHandler
	mounts          []*mirrorMount // the formats served on mirror.listen, from the table
	jobs            *web.Jobs      // UI- and API-started jobs, shared by every web instance

	// mu guards cfg, instances and loadedAt for readers on other goroutines
	// (status, metrics); only the Run goroutine writes them.
	mu        sync.Mutex
	cfg       *Config
	instances []*instance // in start order
	loadedAt  time.Time
	bound     map[string]string // listen path → bound address; see recordBound

	startedAt time.Time
	ready     atomic.Bool
	failed    chan error // a service's Run returned an error
	reloads   *prometheus.CounterVec

	applyc chan applyRequest // reloads asked for by ApplyConfig (the UI)
	editMu sync.Mutex        // one ApplyConfig at a time
}

var _ web.Instance = (*Server)(nil)

// stopBudget bounds a whole stop: systemd (and users) expect SIGTERM to end
// airgapd within 5 s.
const stopBudget = 4500 * time.Millisecond

// New prepares a server for cfg. It opens nothing.
func New(cfg *Config, opts Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = NewLogger(cfg.Log, os.Stderr)
	}
	n := opts.Notify
	if n == nil {
		n = systemdNotifier{}
	}
	s := &Server{
		opts:    opts,
		log:     log,
		notify:  n,
		metrics: prometheus.NewRegistry(),
		sockets: newSocketSet(),
		cfg:     cfg,
		failed:  make(chan error, 16),
		applyc:  make(chan applyRequest),
		mounts:  newMounts(),
	}
	s.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "airgapd_build_info", Help: "airgapd's version; always 1."}, []string{"version"})
	build.WithLabelValues(opts.Version).Set(1)
	s.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "airgapd_config_reloads_total", Help: "Config reloads, by result."}, []string{"result"})
	s.metrics.MustRegister(build, s.reloads, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "airgapd_ready", Help: "1 when every enabled service has started.",
	}, func() float64 {
		if s.ready.Load() {
			return 1
		}
		return 0
	}))
	return s, nil
}

// cleanConfigTemps removes what an edit killed mid-write (kill -9, power
// loss) left beside the config file and its .prev copy: the file itself is
// whole, old or new, and the temporary is of no use.
func (s *Server) cleanConfigTemps() {
	if s.opts.ConfigPath == "" {
		return
	}
	for _, p := range []string{s.opts.ConfigPath, s.opts.ConfigPath + ".prev"} {
		removed, err := atomicfile.Clean(p)
		for _, r := range removed {
			s.log.Info("removed what an interrupted config edit left", "file", r)
		}
		if err != nil {
			s.log.Warn("cannot clean interrupted config edits", "config", p, "err", err)
		}
	}
}

// Logger returns the server's logger.
func (s *Server) Logger() *slog.Logger { return s.log }

// Run opens the sockets, starts every enabled service in order and serves
// until ctx ends or a service fails. reload delivers SIGHUPs. On a clean stop
// it returns nil.
func (s *Server) Run(ctx context.Context, reload <-chan os.Signal) error {
	s.startedAt = time.Now()
	s.cleanConfigTemps()
	// One job table for every web instance, so a reload that rebuilds web
	// leaves running syncs and imports alone; they end with the server.
	jobsCtx, stopJobs := context.WithCancel(ctx)
	defer stopJobs()
	s.jobs = web.NewJobs(jobsCtx)
	if err := s.start(); err != nil {
		return err
	}
	s.ready.Store(true)
	s.notify.Notify("READY=1\nSTATUS=" + s.oneLine())
	s.log.Info("airgapd ready", "version", s.opts.Version, "config", s.cfg.Source)

	var watchdog <-chan time.Time
	if iv := s.notify.WatchdogInterval(); iv > 0 {
		t := time.NewTicker(iv / 2)
		defer t.Stop()
		watchdog = t.C
	}
	caCtx, stopCA := context.WithCancel(context.Background())
	caDone := make(chan struct{})
	go func() { defer close(caDone); s.ca.Run(caCtx) }()

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-reload:
			s.sighup()
		case req := <-s.applyc:
			req.done <- s.applyEdit(req)
		case <-watchdog:
			s.notify.Notify("WATCHDOG=1")
		case err := <-s.failed:
			runErr = err
			s.log.Error("a service failed; stopping", "err", err)
			break loop
		}
	}
	s.ready.Store(false)
	s.notify.Notify("STOPPING=1")
	s.log.Info("stopping")
	stopCA()
	<-caDone
	s.stopAll()
	return runErr
}

// start opens the data and runtime folders, the CA, every socket, and
// starts the services in order. When one fails, the started ones stop in
// reverse order and the error says which failed and why.
func (s *Server) start() error {
	c := s.cfg
	if err := os.MkdirAll(c.DataDir, 0o750); err != nil {
		return fmt.Errorf("create data_dir: %w", err)
	}
	ca, err := pki.Open(pki.Options{Dir: filepath.Join(c.DataDir, "pki"), Names: certNames(c), Addresses: certAddrs(c), Logger: s.log.With("component", "pki")})
	if err != nil {
		return fmt.Errorf("appliance CA: %w", err)
	}
	s.ca = ca
	if s.controlKey, err = s.sockets.openControlSocket(c.RuntimeDir); err != nil {
		return err
	}
	if _, err := s.sockets.open(c.listens()); err != nil {
		s.sockets.closeAll()
		return err
	}
	s.mu.Lock()
	s.recordBound(c)
	s.mu.Unlock()
	for _, sv := range services() {
		if sv.inputsOf(c) == nil { // absent or disabled
			continue
		}
		in, err := s.build(sv, c)
		if err == nil {
			s.launch(in)
			s.mu.Lock()
			s.instances = append(s.instances, in)
			s.mu.Unlock()
			continue
		}
		s.log.Error("service failed to start; stopping the others", "service", sv.key, "err", err)
		s.stopAll()
		return fmt.Errorf("%s failed to start: %w", sv.key, err)
	}
	s.mu.Lock()
	s.loadedAt = time.Now()
	s.mu.Unlock()
	return nil
}

// build makes an instance without starting it.
func (s *Server) build(sv service, c *Config) (*instance, error) {
	in := s.newInstance(sv, c)
	if err := sv.build(s, c, in); err != nil {
		in.closeFDs()
		return nil, err
	}
	return in, nil
}

// launch runs an instance in its own goroutine. An error from Run while it
// is meant to be running stops airgapd (systemd restarts it).
func (s *Server) launch(in *instance) {
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	in.done = make(chan error, 1)
	go func() {
		err := in.run(ctx)
		in.closeFDs()
		if err != nil && ctx.Err() == nil {
			s.failed <- fmt.Errorf("%s: %w", in.name, err)
		}
		in.done <- err
	}()
}

// stop cancels an instance and waits for it, at most until deadline.
func (s *Server) stop(in *instance, deadline time.Time) {
	in.cancel()
	select {
	case <-in.done:
		s.log.Info("service stopped", "service", in.name)
	case <-time.After(time.Until(deadline)):
		s.log.Warn("service did not stop in time", "service", in.name)
	}
}

// stopAll stops every instance in reverse start order, then closes the
// sockets and removes the control socket.
func (s *Server) stopAll() {
	deadline := time.Now().Add(stopBudget)
	s.mu.Lock()
	ins := slices.Clone(s.instances)
	s.instances = nil
	s.mu.Unlock()
	for _, in := range slices.Backward(ins) {
		s.stop(in, deadline)
	}
	s.sockets.closeAll()
}

// applyReload applies next, or rereads the config file when next is nil
// (SIGHUP). Only the Run goroutine calls it. An invalid config, or one
// whose new sockets cannot be opened, leaves everything as it was and logs
// why. Unchanged services keep running untouched; a changed one is reloaded
// in place, or rebuilt on the same sockets and swapped in before the old one
// stops.
func (s *Server) applyReload(next *Config) error {
	s.notify.Notify("RELOADING=1\nMONOTONIC_USEC=" + monotonicUsec())
	defer s.notify.Notify("READY=1\nSTATUS=" + s.oneLine())
	err := s.reload(next)
	if err != nil {
		s.reloads.WithLabelValues("failed").Inc()
		s.log.Error("reload failed; keeping the running config", "err", err)
		return err
	}
	s.reloads.WithLabelValues("ok").Inc()
	s.log.Info("config reloaded", "config", s.cfg.Source)
	return nil
}

func (s *Server) reload(next *Config) error {
	if next == nil {
		var err error
		if s.opts.ConfigPath == "" {
			next, err = LoadDev()
		} else {
			next, err = LoadFile(s.opts.ConfigPath)
		}
		if err != nil {
			return err
		}
	}
	// Only the Run goroutine reloads, so s.cfg, s.instances and the sockets
	// change under no one's feet here; s.mu is taken just to publish the
	// result. Holding it through the swap would block status requests that
	// the old web instance is still draining.
	s.mu.Lock()
	cur := s.cfg
	current := slices.Clone(s.instances)
	s.mu.Unlock()
	if next.DataDir != cur.DataDir || next.RuntimeDir != cur.RuntimeDir {
		return errors.New("data_dir or runtime_dir changed: restart airgapd to apply that (systemctl restart airgapd)")
	}
	opened, err := s.sockets.open(next.listens())
	var own *ownSocketError
	if errors.As(err, &own) {
		current, opened, err = s.handOver(cur, current, next)
	}
	if err != nil {
		return err
	}
	if err := s.ca.Update(certNames(next), certAddrs(next)); err != nil {
		s.sockets.close(opened)
		return fmt.Errorf("appliance CA: %w", err)
	}

	plan, err := s.plan(current, next)
	if err != nil {
		s.sockets.close(opened)
		return err
	}
	s.swap(plan)
	ins := plan.instances()
	wantSockets := map[socketKey]bool{s.controlKey: true}
	for _, l := range next.listens() {
		wantSockets[keyFor(l)] = true
	}
	s.sockets.keepOnly(wantSockets)
	s.mu.Lock()
	s.instances = ins
	s.cfg = next
	s.loadedAt = time.Now()
	s.recordBound(next)
	s.mu.Unlock()
	return nil
}

// change is one service a reload replaces: the new instance starts, then
// the old one stops. A nil new means the section went; a nil old, that it
// came.
type change struct {
	old, new *instance
}

// reloadPlan is what a reload does to the running services.
type reloadPlan struct {
	changes []change
	kept    []*instance // running on as they are, or reloaded in place
}

// plan decides, service by service, whether a running instance stays,
// reloads in place or is rebuilt, and builds every new instance before
// any running one is touched. On an error nothing has changed.
func (s *Server) plan(current []*instance, next *Config) (reloadPlan, error) {
	var p reloadPlan
	byName := map[string]*instance{}
	for _, in := range current {
		byName[in.name] = in
	}
	for _, sv := range services() {
		old := byName[sv.key]
		want := sv.inputsOf(next)
		if want == nil {
			if old != nil {
				p.changes = append(p.changes, change{old: old})
			}
			continue
		}
		if old != nil && slices.Equal(old.sockets, s.newInstance(sv, next).sockets) {
			if sameSection(old.section, want) {
				p.kept = append(p.kept, old)
				continue
			}
			err := old.reload(next)
			if err == nil {
				old.section = want
				p.kept = append(p.kept, old)
				s.log.Info("service reloaded in place", "service", sv.key)
				continue
			}
			if !errors.Is(err, conf.ErrRestartNeeded) {
				p.discard()
				return reloadPlan{}, fmt.Errorf("%s: %w", sv.key, err)
			}
		}
		in, err := s.build(sv, next)
		if err != nil {
			p.discard()
			return reloadPlan{}, fmt.Errorf("%s: %w", sv.key, err)
		}
		p.changes = append(p.changes, change{old: old, new: in})
	}
	return p, nil
}

// discard releases the instances a failed plan built.
func (p reloadPlan) discard() {
	for _, ch := range p.changes {
		if ch.new != nil {
			ch.new.closeFDs()
		}
	}
}

// disabler is a service that undoes its effects when a reload removes its
// section (the gateway's rules); on shutdown they stay.
type disabler interface{ Disable() error }

// swap starts each new instance, then stops the one it replaces.
func (s *Server) swap(p reloadPlan) {
	deadline := time.Now().Add(stopBudget)
	for _, ch := range p.changes {
		if ch.new != nil {
			s.launch(ch.new)
			s.log.Info("service rebuilt", "service", ch.new.name)
		}
		if ch.old != nil {
			s.stop(ch.old, deadline)
			if d, ok := ch.old.service.(disabler); ok && ch.new == nil {
				d.Disable() // it logs what it removed, or why not
			}
		}
	}
}

// instances are the plan's running instances in start order.
func (p reloadPlan) instances() []*instance {
	var ins []*instance
	for _, sv := range services() {
		for _, in := range p.kept {
			if in.name == sv.key {
				ins = append(ins, in)
			}
		}
		for _, ch := range p.changes {
			if ch.new != nil && ch.new.name == sv.key {
				ins = append(ins, ch.new)
			}
		}
	}
	return ins
}

// certNames are the DNS names the server certificate covers.
func certNames(c *Config) []string {
	names := []string{"localhost"}
	if c.Advertise.Name != "" && c.Advertise.Name != "localhost" {
		names = append(names, c.Advertise.Name)
	}
	return names
}

// certAddrs are the IPs it covers: loopback, the advertised addresses and
// every specific listen address.
func certAddrs(c *Config) []netip.Addr {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	add := func(a netip.Addr) {
		if a.IsValid() && !a.IsUnspecified() && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	add(netip.MustParseAddr("127.0.0.1"))
	add(netip.MustParseAddr("::1"))
	for _, s := range c.Advertise.Addresses {
		a, _ := netip.ParseAddr(s)
		add(a)
	}
	for _, l := range c.listens() {
		if ap, err := netip.ParseAddrPort(l.addr); err == nil {
			add(ap.Addr())
		}
	}
	return out
}

// gatherer collects server's metrics and every running instance's.
func (s *Server) gatherer() prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		s.mu.Lock()
		gs := prometheus.Gatherers{s.metrics}
		for _, in := range s.instances {
			gs = append(gs, in.metrics)
		}
		s.mu.Unlock()
		return gs.Gather()
	})
}

// CACertPEM implements web.Instance.
func (s *Server) CACertPEM() []byte {
	if s.ca == nil {
		return nil
	}
	return s.ca.CACertPEM()
}

var _ web.DNSCache = (*Server)(nil)

// FlushDNSCache implements web.DNSCache on the running DNS service.
func (s *Server) FlushDNSCache(name string) (int, error) {
	d, err := capability[interface{ FlushCache(name string) int }](s, "dns")
	if err != nil {
		return 0, err
	}
	return d.FlushCache(name), nil
}

var _ web.NTPClock = (*Server)(nil)

// SetNTPTime implements web.NTPClock on the running NTP service.
func (s *Server) SetNTPTime(to time.Time, force bool) (time.Duration, error) {
	n, err := capability[interface {
		SetTime(time.Time, bool) (time.Duration, error)
	}](s, "ntp")
	if err != nil {
		return 0, err
	}
	return n.SetTime(to, force)
}

// Ready implements web.Instance.
func (s *Server) Ready() bool { return s.ready.Load() }
