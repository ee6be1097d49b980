package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airgapd/airgapd/dnsd"
	"github.com/airgapd/airgapd/gateway"
	"github.com/airgapd/airgapd/internal/conf"
	"github.com/airgapd/airgapd/mirror"
	"github.com/airgapd/airgapd/ntpd"
	"github.com/airgapd/airgapd/registry"
	"github.com/airgapd/airgapd/server/pki"
	"github.com/airgapd/airgapd/web"
)

// instance is one running (or about to run) service, seen generically.
type instance struct {
	name    string
	section any // the config this instance was built from, for change detection
	sockets []socketKey
	run     func(context.Context) error
	status  func() ServiceStatus
	reload  func(*Config) error
	// removed, when set, runs after the instance stopped because a reload
	// removed or disabled its section (not on shutdown).
	removed func()
	// flushDNS is set on the dns instance only, setNTPTime on ntp's.
	flushDNS   func(name string) int
	setNTPTime func(time.Time) time.Duration
	// mirror is set on the mirror instance only (syncs through the API).
	mirror *mirror.Mirror
	// registry is set on the registry instance only (gc and import
	// through the API).
	registry *registry.Registry
	fds      []io.Closer // duplicates handed to the service; closed after Run
	metrics  *prometheus.Registry

	cancel context.CancelFunc
	done   chan error // receives Run's result once
}

func (in *instance) closeFDs() {
	for _, c := range in.fds {
		c.Close()
	}
}

// spec describes how server builds one service from the config. The order of
// specs is the start order; stop goes in reverse. The gateway comes first
// (the nodes' way out), web last (it reports on the others).
type spec struct {
	name    string
	section func(*Config) any          // nil when absent or disabled
	sockets func(*Config) []listenAddr // the sockets it is built on
	build   func(*Server, *Config, *instance) error
}

func (s *Server) specs() []spec {
	return []spec{
		{"gateway", func(c *Config) any { return sectionIf(c, "gateway", c.Gateway) }, noSockets, (*Server).buildGateway},
		{"dns", func(c *Config) any { return sectionIf(c, "dns", c.DNS) }, socketsOf("dns"), (*Server).buildDNS},
		{"ntp", func(c *Config) any { return sectionIf(c, "ntp", c.NTP) }, socketsOf("ntp"), (*Server).buildNTP},
		{"mirror", mirrorSection, noSockets, (*Server).buildMirror},
		{"registry", func(c *Config) any { return sectionIf(c, "registry", c.Registry) }, noSockets, (*Server).buildRegistry},
		// web serves every HTTP listener, so it is rebuilt when any of them
		// moves; it always runs, for the control socket.
		{"web", webSection, httpSockets, (*Server).buildWeb},
	}
}

func sectionIf[T any](c *Config, key string, p *T) any {
	if !c.Enabled(key) {
		return nil
	}
	return *p
}

// webSection is everything the web instance is built from.
func webSection(c *Config) any {
	type webInputs struct {
		Web              *web.Config
		Advertise        Advertise
		RegistryTLS      conf.TLS
		Mirror, Registry bool
	}
	in := webInputs{Advertise: c.Advertise, Mirror: c.Enabled("mirror"), Registry: c.Enabled("registry")}
	if c.Enabled("web") {
		w := *c.Web
		in.Web = &w
	}
	if in.Registry {
		in.RegistryTLS = c.Registry.TLS
	}
	return in
}

func noSockets(*Config) []listenAddr { return nil }

func socketsOf(prefix string) func(*Config) []listenAddr {
	return func(c *Config) []listenAddr {
		var out []listenAddr
		for _, l := range c.listens() {
			if len(l.path) > len(prefix) && l.path[:len(prefix)+1] == prefix+"." {
				out = append(out, l)
			}
		}
		return out
	}
}

func httpSockets(c *Config) []listenAddr {
	var out []listenAddr
	for _, l := range c.listens() {
		switch l.path {
		case "web.listen", "mirror.listen", "registry.listen":
			out = append(out, l)
		}
	}
	return out
}

// newInstance prepares the bookkeeping every build shares.
func (s *Server) newInstance(sp spec, c *Config) *instance {
	in := &instance{name: sp.name, section: sp.section(c), metrics: prometheus.NewRegistry()}
	for _, l := range sp.sockets(c) {
		in.sockets = append(in.sockets, keyFor(l))
	}
	return in
}

// tcpFor / udpFor hand a service its own duplicate of each socket.
func (s *Server) tcpFor(in *instance, ls []listenAddr) ([]net.Listener, error) {
	var out []net.Listener
	for _, l := range ls {
		if l.network != "tcp" {
			continue
		}
		ln, err := s.sockets.listener(keyFor(l))
		if err != nil {
			return nil, err
		}
		in.fds = append(in.fds, ln)
		out = append(out, ln)
	}
	return out, nil
}

func (s *Server) udpFor(in *instance, ls []listenAddr) ([]net.PacketConn, error) {
	var out []net.PacketConn
	for _, l := range ls {
		if l.network != "udp" {
			continue
		}
		pc, err := s.sockets.packetConn(keyFor(l))
		if err != nil {
			return nil, err
		}
		in.fds = append(in.fds, pc)
		out = append(out, pc)
	}
	return out, nil
}

func (s *Server) buildGateway(c *Config, in *instance) error {
	g, err := gateway.New(*c.Gateway, gateway.Deps{Logger: s.log.With("service", "gateway"), Metrics: in.metrics})
	if err != nil {
		return err
	}
	// Run leaves the rules in place: on SIGTERM the nodes' way out must
	// survive a restart. Only when a reload removes the section (or sets
	// enabled: false) do the rules go too.
	in.run = g.Run
	in.removed = func() { g.Disable() } // it logs what it removed, or why not
	in.status = func() ServiceStatus {
		st := g.Status()
		return ServiceStatus{State: st.State, Summary: st.Summary, Gateway: &st}
	}
	in.reload = func(c *Config) error { return g.Reload(*c.Gateway) }
	return nil
}

func (s *Server) buildDNS(c *Config, in *instance) error {
	ls := socketsOf("dns")(c)
	udp, err := s.udpFor(in, ls)
	if err != nil {
		return err
	}
	tcp, err := s.tcpFor(in, ls)
	if err != nil {
		return err
	}
	d, err := dnsd.New(*c.DNS, dnsd.Deps{Logger: s.log.With("service", "dns"), Metrics: in.metrics, UDP: udp, TCP: tcp, NameServer: c.Advertise.Name})
	if err != nil {
		return err
	}
	in.run = d.Run
	in.status = func() ServiceStatus {
		st := d.Status()
		return ServiceStatus{State: st.State, Summary: st.Summary, DNS: &st}
	}
	in.reload = func(c *Config) error { return d.Reload(*c.DNS) }
	in.flushDNS = d.FlushCache
	return nil
}

func (s *Server) buildNTP(c *Config, in *instance) error {
	udp, err := s.udpFor(in, socketsOf("ntp")(c))
	if err != nil {
		return err
	}
	n, err := ntpd.New(*c.NTP, ntpd.Deps{Logger: s.log.With("service", "ntp"), Metrics: in.metrics, UDP: udp, DataDir: c.DataDir})
	if err != nil {
		return err
	}
	in.run = n.Run
	in.status = func() ServiceStatus {
		st := n.Status()
		return ServiceStatus{State: st.State, Summary: st.Summary, NTP: &st}
	}
	in.reload = func(c *Config) error { return n.Reload(*c.NTP) }
	in.setNTPTime = n.SetTime
	return nil
}

func (s *Server) buildMirror(c *Config, in *instance) error {
	m, err := mirror.New(*c.Mirror, mirror.Deps{
		Logger: s.log.With("service", "mirror"), Metrics: in.metrics, DataDir: c.DataDir,
		AdvertiseName: c.Advertise.Name, AdvertiseAddresses: c.Advertise.Addresses, Listen: s.mirrorListen(c),
	})
	if err != nil {
		return err
	}
	in.mirror = m
	in.run = func(ctx context.Context) error {
		defer s.mirrorHandler.set(m.Handler())()
		return m.Run(ctx)
	}
	in.status = func() ServiceStatus {
		st := mirrorStatus(m.Status())
		return ServiceStatus{State: st.State, Summary: st.Summary, Mirror: &st}
	}
	built := *c
	in.reload = func(next *Config) error {
		// .repo baseurls come from advertise and the listen port.
		if !reflect.DeepEqual(next.Advertise, built.Advertise) || next.Mirror.Listen != built.Mirror.Listen {
			return conf.ErrRestartNeeded
		}
		return m.Reload(*next.Mirror)
	}
	return nil
}

func (s *Server) buildRegistry(c *Config, in *instance) error {
	r, err := registry.New(*c.Registry, registry.Deps{Logger: s.log.With("service", "registry"), Metrics: in.metrics, DataDir: c.DataDir})
	if err != nil {
		return err
	}
	in.registry = r
	in.run = func(ctx context.Context) error {
		defer s.registryHandler.set(r.Handler())()
		return r.Run(ctx)
	}
	in.status = func() ServiceStatus {
		st := r.Status()
		return ServiceStatus{State: st.State, Summary: st.Summary, Registry: &st}
	}
	in.reload = func(c *Config) error { return r.Reload(*c.Registry) }
	return nil
}

func (s *Server) buildWeb(c *Config, in *instance) error {
	deps := web.Deps{
		Logger:          s.log.With("service", "web"),
		Metrics:         s.gatherer(),
		Instance:        s,
		DNSCache:        s,
		NTPClock:        s,
		RegistryAdmin:   s,
		MirrorHandler:   &s.mirrorHandler,
		RegistryHandler: &s.registryHandler,
		ConfigEditor:    s,
		DataDir:         c.DataDir,
	}
	if c.Enabled("registry") {
		deps.RegistryNodeFiles = s.registryNodeFiles()
	}
	wc := web.DefaultConfig()
	if c.Enabled("web") {
		wc = *c.Web
	}
	dup := func(path string) (net.Listener, error) {
		for _, l := range httpSockets(c) {
			if l.path == path {
				ln, err := s.sockets.listener(keyFor(l))
				if err == nil {
					in.fds = append(in.fds, ln)
				}
				return ln, err
			}
		}
		return nil, nil
	}
	var err error
	if deps.UI, err = dup("web.listen"); err != nil {
		return err
	}
	if deps.Mirror, err = dup("mirror.listen"); err != nil {
		return err
	}
	if deps.Registry, err = dup("registry.listen"); err != nil {
		return err
	}
	if deps.Control, err = s.sockets.listener(s.controlKey); err != nil {
		return err
	}
	in.fds = append(in.fds, deps.Control)
	if deps.UI != nil {
		if deps.UITLS, err = s.tlsFor(wc.TLS); err != nil {
			return fmt.Errorf("web.tls: %w", err)
		}
	}
	if deps.Registry != nil {
		if deps.RegistryTLS, err = s.tlsFor(c.Registry.TLS); err != nil {
			return fmt.Errorf("registry.tls: %w", err)
		}
	}
	w, err := web.New(wc, deps)
	if err != nil {
		return err
	}
	in.run = w.Run
	in.status = func() ServiceStatus {
		st := w.Status()
		if !c.Enabled("web") {
			st.Summary += " (UI off: web.enabled is false or the section is absent; control socket only)"
		}
		return ServiceStatus{State: st.State, Summary: st.Summary, Web: &st}
	}
	in.reload = func(c *Config) error { return w.Reload(wc) }
	return nil
}

// tlsFor turns a tls: setting into a *tls.Config (nil = plain HTTP).
func (s *Server) tlsFor(t conf.TLS) (*tls.Config, error) {
	switch t.Mode {
	case conf.TLSOff:
		return nil, nil
	case conf.TLSFiles:
		return pki.LoadKeyPair(t.Cert, t.Key)
	}
	return s.ca.TLSConfig(), nil
}

// swappableHandler lets web keep one handler while server swaps the
// service behind it on reload.
type swappableHandler struct {
	h atomic.Pointer[http.Handler]
}

// set installs h and returns a function that uninstalls it, unless another
// instance's handler has replaced it meanwhile.
func (sh *swappableHandler) set(h http.Handler) (unset func()) {
	p := &h
	sh.h.Store(p)
	return func() { sh.h.CompareAndSwap(p, nil) }
}

func (sh *swappableHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := sh.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	http.Error(w, "this service is not running; enable its section in the config", http.StatusServiceUnavailable)
}

// sameSection reports whether an instance can stay as it is.
func sameSection(a, b any) bool { return reflect.DeepEqual(a, b) }
