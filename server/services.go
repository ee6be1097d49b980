package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airgapd/airgapd/dnsd"
	"github.com/airgapd/airgapd/gateway"
	"github.com/airgapd/airgapd/internal/conf"
	"github.com/airgapd/airgapd/mirror/apt"
	"github.com/airgapd/airgapd/mirror/charts"
	"github.com/airgapd/airgapd/mirror/goproxy"
	"github.com/airgapd/airgapd/mirror/pypi"
	"github.com/airgapd/airgapd/mirror/rpm"
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
	// service is the built service itself. What it can do beyond running
	// (flush a cache, sync, import …) is found on it by type assertion to a
	// small interface, see capability.
	service any
	log     *slog.Logger // server's, with the service's name
	run     func(context.Context) error
	status  func() ServiceStatus
	reload  func(*Config) error
	fds     []io.Closer // duplicates handed to the service; closed after Run
	metrics *prometheus.Registry

	cancel context.CancelFunc
	done   chan error // receives Run's result once
}

func (in *instance) closeFDs() {
	for _, c := range in.fds {
		c.Close()
	}
}

// service is one service airgapd can run: everything server, config
// loading, `check` and status need to know about it. The table (services)
// is the one place that lists them.
type service struct {
	// key is the service's config section (a yaml key of Config) and its
	// name in status, logs and errors.
	key string
	// defaults returns the package's default section: a present section
	// starts from it before decoding, so keys left out keep their values.
	defaults func() any
	// listen are the networks of the section's `listen:` (one address or
	// a list); none when the service opens no socket of its own.
	listen []string
	// moreListens are sockets beyond `listen:` (ntp's cmdmon.listen),
	// opened and checked for clashes like those.
	moreListens func(*Config) []listenAddr
	// http: web serves this service's listener (the service hands web a
	// handler), so the listener is web's socket, not the service's, and
	// web is rebuilt when it moves.
	http bool
	// inputs is what an instance is built from, for change detection, or
	// nil when the service does not run; nil means the section itself
	// when it is enabled.
	inputs func(*Config) any
	// sockets are the sockets an instance is handed; nil means its own
	// listen addresses (none when web serves them).
	sockets func(*Config) []listenAddr
	// mount is the path prefix ("/apt/") this service's handler serves
	// on mirror.listen, for the formats that add no listener of their
	// own; the handler is installed by the service's run (mountFor).
	mount string
	// build makes the service and fills in: its run, status and reload.
	build func(*Server, *Config, *instance) error
}

// services is the table, in start order; stop goes in reverse. The gateway
// comes first (the nodes' way out), web last (it reports on the others).
// Config loading and validation go in the order of Config's fields.
func services() []service {
	return []service{
		{key: "gateway", defaults: defaultsOf(gateway.DefaultConfig), build: (*Server).buildGateway},
		{key: "dns", defaults: defaultsOf(dnsd.DefaultConfig), listen: []string{"tcp", "udp"}, inputs: dnsSection, build: (*Server).buildDNS},
		{key: "ntp", defaults: defaultsOf(ntpd.DefaultConfig), listen: []string{"udp"}, moreListens: ntpMoreListens, build: (*Server).buildNTP},
		{key: "mirror", defaults: defaultsOf(rpm.DefaultConfig), listen: []string{"tcp"}, http: true, inputs: mirrorSection, build: (*Server).buildMirror},
		{key: "registry", defaults: defaultsOf(registry.DefaultConfig), listen: []string{"tcp"}, http: true, build: (*Server).buildRegistry},
		{key: "apt", defaults: defaultsOf(apt.DefaultConfig), inputs: aptSection, mount: "/apt/", build: (*Server).buildApt},
		{key: "pypi", defaults: defaultsOf(pypi.DefaultConfig), mount: "/pypi/", build: (*Server).buildPyPI},
		{key: "goproxy", defaults: defaultsOf(goproxy.DefaultConfig), mount: goproxy.Prefix, build: (*Server).buildGoProxy},
		{key: "ha", defaults: defaultsOf(DefaultHAConfig), build: (*Server).buildHA},
		{key: "charts", defaults: defaultsOf(charts.DefaultConfig), mount: "/charts/", build: (*Server).buildCharts},
		// web serves every HTTP listener, so it is rebuilt when any of them
		// moves; it always runs, for the control socket.
		{key: "web", defaults: defaultsOf(web.DefaultConfig), listen: []string{"tcp"}, http: true, inputs: webSection, sockets: httpSockets, build: (*Server).buildWeb},
	}
}

func defaultsOf[T any](defaults func() T) func() any { return func() any { return defaults() } }

// inputsOf is what an instance of sv is built from; nil when it does not run.
func (sv service) inputsOf(c *Config) any {
	if sv.inputs != nil {
		return sv.inputs(c)
	}
	if !c.Enabled(sv.key) {
		return nil
	}
	return c.sectionField(sv.key).Elem().Interface()
}

// socketsOf are the sockets an instance of sv is built on.
func (sv service) socketsOf(c *Config) []listenAddr {
	switch {
	case sv.sockets != nil:
		return sv.sockets(c)
	case sv.http:
		return nil
	}
	return c.listensOf(sv)
}

// webSection is everything the web instance is built from.
func webSection(c *Config) any {
	// Which HTTP listeners there are is in the instance's sockets.
	type webInputs struct {
		Web         *web.Config
		Advertise   Advertise
		RegistryTLS conf.TLS
	}
	in := webInputs{Advertise: c.Advertise}
	if c.Enabled("web") {
		w := *c.Web
		in.Web = &w
	}
	if c.Enabled("registry") {
		in.RegistryTLS = c.Registry.TLS
	}
	return in
}

// httpSockets are the listeners web serves.
func httpSockets(c *Config) []listenAddr {
	var out []listenAddr
	for _, l := range c.listens() {
		if l.http {
			out = append(out, l)
		}
	}
	return out
}

// capability finds the running service that can do C (a small interface
// of the service's own methods). key names the service in the error when
// none runs.
func capability[C any](s *Server, key string) (C, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, in := range s.instances {
		if c, ok := in.service.(C); ok {
			return c, nil
		}
	}
	var none C
	return none, fmt.Errorf("%s is not running: its section is absent or disabled", key)
}

// mountFor is the handler web serves at a service's mount on
// mirror.listen; a build's run installs the service's handler on it.
func (s *Server) mountFor(key string) *swappableHandler {
	for _, m := range s.mounts {
		if m.key == key {
			return &m.handler
		}
	}
	panic("server: service " + key + " has no mount in the table (a bug)")
}

// checkMounts: a format served at a prefix of mirror.listen needs the
// mirror section on.
func (c *Config) checkMounts(ps *conf.Problems) {
	for _, sv := range services() {
		if sv.mount != "" && c.Enabled(sv.key) && !c.Enabled("mirror") {
			ps.Add(sv.key, "turn the mirror section on (mirror: {listen: …}): "+sv.key+" is served at "+sv.mount+" on mirror.listen", "%s is on but the mirror section is not", sv.key)
		}
	}
}

// mirrorMount is one format's path prefix on mirror.listen and the
// handler behind it.
type mirrorMount struct {
	key, prefix string
	handler     swappableHandler
}

func newMounts() []*mirrorMount {
	var out []*mirrorMount
	for _, sv := range services() {
		if sv.mount != "" {
			out = append(out, &mirrorMount{key: sv.key, prefix: sv.mount})
		}
	}
	return out
}

// newInstance prepares the bookkeeping every build shares.
func (s *Server) newInstance(sv service, c *Config) *instance {
	in := &instance{name: sv.key, section: sv.inputsOf(c), log: s.log.With("service", sv.key), metrics: prometheus.NewRegistry()}
	for _, l := range sv.socketsOf(c) {
		in.sockets = append(in.sockets, keyFor(l))
	}
	return in
}

// tcpFor / udpFor hand a service its own duplicate of each of its sockets.
func (s *Server) tcpFor(in *instance) ([]net.Listener, error) {
	var out []net.Listener
	for _, k := range in.sockets {
		if k.network != "tcp" {
			continue
		}
		ln, err := s.sockets.listener(k)
		if err != nil {
			return nil, err
		}
		in.fds = append(in.fds, ln)
		out = append(out, ln)
	}
	return out, nil
}

func (s *Server) udpFor(in *instance) ([]net.PacketConn, error) {
	var out []net.PacketConn
	for _, k := range in.sockets {
		if k.network != "udp" {
			continue
		}
		pc, err := s.sockets.packetConn(k)
		if err != nil {
			return nil, err
		}
		in.fds = append(in.fds, pc)
		out = append(out, pc)
	}
	return out, nil
}

func (s *Server) buildGateway(c *Config, in *instance) error {
	g, err := gateway.New(haGatewayConfig(c), gateway.Deps{Logger: in.log, Metrics: in.metrics})
	if err != nil {
		return err
	}
	// Run leaves the rules in place: on SIGTERM the nodes' way out must
	// survive a restart. Only when a reload removes the section (or sets
	// enabled: false) do the rules go too.
	in.service, in.run = g, g.Run
	in.status = func() ServiceStatus {
		st := g.Status()
		return ServiceStatus{State: st.State, Summary: st.Summary, Gateway: &st}
	}
	in.reload = func(c *Config) error { return g.Reload(haGatewayConfig(c)) }
	return nil
}

func (s *Server) buildDNS(c *Config, in *instance) error {
	udp, err := s.udpFor(in)
	if err != nil {
		return err
	}
	tcp, err := s.tcpFor(in)
	if err != nil {
		return err
	}
	d, err := dnsd.New(*c.DNS, dnsd.Deps{Logger: in.log, Metrics: in.metrics, UDP: udp, TCP: tcp, NameServer: c.Advertise.Name})
	if err != nil {
		return err
	}
	in.service, in.run = d, d.Run
	in.status = func() ServiceStatus {
		st := d.Status()
		return ServiceStatus{State: st.State, Summary: st.Summary, DNS: &st}
	}
	in.reload = func(c *Config) error { return d.Reload(*c.DNS) }
	return nil
}

// ntpCmdMonListens are ntp.cmdmon.listen's UDP sockets (chronyc's port).
func ntpCmdMonListens(c *Config) []listenAddr {
	var ls []listenAddr
	for i, a := range c.NTP.CmdMon.Listen {
		ls = append(ls, listenAddr{network: "udp", addr: a, path: conf.Index("ntp.cmdmon.listen", i)})
	}
	markV6Only(ls)
	return ls
}

// ntpMoreListens are cmdmon's sockets and, with nts.enabled, the NTS-KE
// socket (TCP).
func ntpMoreListens(c *Config) []listenAddr {
	ls := ntpCmdMonListens(c)
	if c.NTP.NTS.Enabled {
		ls = append(ls, listenAddr{network: "tcp", addr: c.NTP.NTS.Listen, path: "ntp.nts.listen"})
	}
	return ls
}

func (s *Server) buildNTP(c *Config, in *instance) error {
	udp, err := s.udpFor(in)
	if err != nil {
		return err
	}
	ke, err := s.tcpFor(in) // nts.listen; the appliance CA's certificate
	if err != nil {
		return err
	}
	var keTLS *tls.Config
	if len(ke) > 0 && s.ca != nil {
		keTLS = s.ca.TLSConfig()
		if c.Advertise.Name == "" && len(c.Advertise.Addresses) == 0 {
			in.log.Warn("ntp.nts: the certificate covers only loopback and specific listen addresses; set advertise so nodes' chrony can verify it")
		}
	}
	// udpFor hands over every socket; the cmdmon ones are split off.
	cmd := map[socketKey]bool{}
	for _, l := range ntpCmdMonListens(c) {
		cmd[keyFor(l)] = true
	}
	var ntpUDP, cmdUDP []net.PacketConn
	for _, k := range in.sockets {
		if k.network != "udp" {
			continue
		}
		pc := udp[0]
		udp = udp[1:]
		if cmd[k] {
			cmdUDP = append(cmdUDP, pc)
		} else {
			ntpUDP = append(ntpUDP, pc)
		}
	}
	n, err := ntpd.New(*c.NTP, ntpd.Deps{Logger: in.log, Metrics: in.metrics, UDP: ntpUDP, CmdMonUDP: cmdUDP, DataDir: c.DataDir,
		NTSKE: ke, NTSTLS: keTLS})
	if err != nil {
		return err
	}
	in.service, in.run = n, n.Run
	in.status = func() ServiceStatus {
		st := n.Status()
		return ServiceStatus{State: st.State, Summary: st.Summary, NTP: &st}
	}
	in.reload = func(c *Config) error { return n.Reload(*c.NTP) }
	return nil
}

func (s *Server) buildMirror(c *Config, in *instance) error {
	m, err := rpm.New(*c.Mirror, rpm.Deps{
		Logger: in.log, Metrics: in.metrics, DataDir: c.DataDir,
		AdvertiseName: c.Advertise.Name, AdvertiseAddresses: c.Advertise.Addresses, Listen: s.mirrorListen(c),
	})
	if err != nil {
		return err
	}
	in.service = m
	in.run = func(ctx context.Context) error {
		defer s.mirrorHandler.set(m.Handler())()
		return m.Run(ctx)
	}
	in.status = func() ServiceStatus {
		st := m.Status()
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
	r, err := registry.New(*c.Registry, registry.Deps{Logger: in.log, Metrics: in.metrics, DataDir: c.DataDir})
	if err != nil {
		return err
	}
	in.service = r
	in.run = func(ctx context.Context) error {
		defer s.registryHandler.set(s.haWriteGuard(r.Handler()))()
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
		Logger:   in.log,
		Metrics:  s.gatherer(),
		Instance: s,
		// Each capability finds its service when called, so a service
		// rebuilt by a reload is reached without rebuilding web.
		DNSCache:        s,
		NTPClock:        s,
		MirrorSyncer:    s,
		AptSyncer:       s,
		PyPISyncer:      s,
		GoProxySyncer:   s,
		PyPIBrowser:     s,
		GoProxyBrowser:  s,
		ChartsSyncer:    s,
		RegistryAdmin:   s,
		BundleImporter:  s,
		Bootstrapper:    s,
		HA:              s,
		MirrorHandler:   &s.mirrorHandler,
		RegistryHandler: &s.registryHandler,
		ConfigEditor:    s,
		ConfigImporter:  s,
		DataDir:         c.DataDir,
		Jobs:            s.jobs,
	}
	for _, m := range s.mounts {
		deps.MirrorMounts = append(deps.MirrorMounts, web.Mount{Prefix: m.prefix, Handler: &m.handler})
	}
	wc := webConfig(c)
	if err := s.webListeners(c, in, &deps); err != nil {
		return err
	}
	var err error
	if deps.UI != nil {
		if deps.UITLS, err = s.tlsFor(wc.TLS); err != nil {
			return fmt.Errorf("web.tls: %w", err)
		}
	}
	if deps.Registry != nil { // the registry is on
		if deps.RegistryTLS, err = s.tlsFor(c.Registry.TLS); err != nil {
			return fmt.Errorf("registry.tls: %w", err)
		}
		deps.RegistryNodeFiles = s.registryNodeFiles()
	}
	w, err := web.New(wc, deps)
	if err != nil {
		return err
	}
	in.service, in.run = w, w.Run
	in.status = func() ServiceStatus {
		st := w.Status()
		if !c.Enabled("web") {
			st.Summary += " (UI off: web.enabled is false or the section is absent; control socket only)"
		}
		return ServiceStatus{State: st.State, Summary: st.Summary, Web: &st}
	}
	in.reload = func(next *Config) error { return w.Reload(webConfig(next)) }
	return nil
}

// webConfig is the web section, or its defaults when web is off (web
// still runs, for the control socket).
func webConfig(c *Config) web.Config {
	if c.Enabled("web") {
		return *c.Web
	}
	return web.DefaultConfig()
}

// webListeners hands web a duplicate of every HTTP listener it serves and
// of the control socket.
func (s *Server) webListeners(c *Config, in *instance, deps *web.Deps) error {
	slots := map[string]*net.Listener{"web.listen": &deps.UI, "mirror.listen": &deps.Mirror, "registry.listen": &deps.Registry}
	for _, l := range httpSockets(c) {
		ln, err := s.sockets.listener(keyFor(l))
		if err != nil {
			return err
		}
		in.fds = append(in.fds, ln)
		slot, ok := slots[l.path]
		if !ok {
			return fmt.Errorf("web has no listener slot for %s (a bug)", l.path)
		}
		*slot = ln
	}
	ln, err := s.sockets.listener(s.controlKey)
	if err != nil {
		return err
	}
	in.fds = append(in.fds, ln)
	deps.Control = ln
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
