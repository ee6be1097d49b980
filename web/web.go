// Package web builds every HTTP listener's router: the admin UI and JSON
// API (web.listen), the mirror's plain-HTTP listener (/repos/, /files/,
// /bootstrap/, /ca.crt), the registry's /v2/, and the local control socket
// that `airgapd status` and the long-running commands use.
//
// web reaches the rest of airgapd only through the interfaces declared here;
// server satisfies them.
package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"text/template"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/internal/conf"
)

// Instance is what web needs from the running airgapd.
type Instance interface {
	// Status returns every service's status: what /api/v1/status sends
	// and the pages show.
	Status() api.StatusReport
	// Ready reports whether every enabled service has started.
	Ready() bool
	// CACertPEM returns the appliance CA certificate, or nil when there is
	// none (every listener has tls: off or its own files).
	CACertPEM() []byte
}

// DNSCache is the DNS cache as the API reaches it.
type DNSCache interface {
	// FlushDNSCache removes name (every type), or everything when name is
	// empty, and says how many entries went; an error when DNS is off.
	FlushDNSCache(name string) (int, error)
}

// NTPClock is the NTP service's served clock as the API reaches it.
type NTPClock interface {
	// SetNTPTime sets the served time (chronyc settime) and returns the
	// step; an error when NTP is off.
	// While an upstream source is selected it is refused unless force.
	SetNTPTime(to time.Time, force bool) (time.Duration, error)
}

// Mount is one handler at a path prefix ("/apt/") of mirror.listen.
type Mount struct {
	Prefix  string
	Handler http.Handler
}

// Deps is what server hands web: the sockets it opened (nil for a listener
// that is not configured), their TLS settings, the services' handlers, and
// each thing the API and UI can ask a service to do, as an interface
// declared in this package (web never looks for one on Instance).
type Deps struct {
	Logger   *slog.Logger
	Metrics  prometheus.Gatherer
	Instance Instance

	UI       net.Listener // web.listen; nil when web is disabled
	UITLS    *tls.Config  // nil = plain HTTP
	Control  net.Listener // runtime_dir/api.sock; always present
	Mirror   net.Listener // mirror.listen; nil when the mirror is disabled
	Registry net.Listener // registry.listen; nil when the registry is disabled
	// RegistryTLS is nil for plain HTTP.
	RegistryTLS *tls.Config

	// The services' capabilities, each an interface declared in this
	// package. A nil one turns its routes and forms into "not here" (404).
	DNSCache       DNSCache       // cache flush
	NTPClock       NTPClock       // settime
	MirrorSyncer   MirrorSyncer   // mirror sync
	AptSyncer      AptSyncer      // apt sync and index
	PyPISyncer     PyPISyncer     // pypi sync
	GoProxySyncer  GoProxySyncer  // goproxy sync
	PyPIBrowser    PyPIBrowser    // the PyPI page's project table
	GoProxyBrowser GoProxyBrowser // the Go proxy page's module table
	ChartsSyncer   ChartsSyncer   // charts sync, charts images
	RegistryAdmin  RegistryAdmin  // registry gc, import, tag deletion
	BundleImporter BundleImporter // bundle import
	Bootstrapper   Bootstrapper   // node.sh and the UI's node command
	HA             HA             // ha snapshot and promote

	// RegistryNodeFiles serves the container runtimes' files that point
	// nodes at the registry (containerd/certs.d/NS/hosts.toml, …) under
	// /bootstrap/registry/; nil when the registry is off.
	RegistryNodeFiles http.Handler

	MirrorHandler   http.Handler // serves /repos/ and /files/
	RegistryHandler http.Handler // serves /v2/
	// MirrorMounts are the formats beside the RPM mirror on mirror.listen
	// (/apt/, /pypi/ …), each its service's handler.
	MirrorMounts []Mount

	// ConfigEditor edits the config file (DNS records, Settings, the
	// first password); nil: the UI shows the config read-only.
	ConfigEditor ConfigEditor
	// ConfigImporter turns an existing admin host's files into a config
	// (Settings → Import); nil: the Settings page offers no import.
	ConfigImporter ConfigImporter
	// Jobs is the job table for syncs and imports started from the UI or
	// the API; nil: this instance keeps its own, whose jobs end with Run.
	// server may hand every instance the same one (NewJobs) so that a
	// reload leaves running jobs alone.
	Jobs *Jobs
	// DataDir is data_dir: web keeps sessions, API tokens (hashed) and
	// the audit log in DataDir/web. Empty: in memory only (tests).
	DataDir string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server serves every HTTP listener.
type Server struct {
	cfg        Config
	deps       Deps
	log        *slog.Logger
	nodeScript *template.Template
	pages      pageSet
	auth       *authState
	hist       *history
	jobs       *Jobs
	nodes      *nodeCounters // per-address use of the mirror, registry, DNS
	reports    *reports      // node.sh's checklists
	ownJobs    bool          // jobs is this instance's: bound to Run's context
	now        func() time.Time
	// editMu makes this instance's read-change-apply edits of the config
	// one at a time (editConfig); the file's version check catches edits
	// made elsewhere.
	editMu sync.Mutex
	// stopping is closed when Run's context ends, so requests waiting on
	// a reload that replaces this instance answer instead of holding up
	// its shutdown.
	stopping chan struct{}

	mu      sync.Mutex
	running bool
}

// shutdownGrace bounds how long in-flight requests may finish after stop:
// systemd expects airgapd gone within 5 s of SIGTERM.
const shutdownGrace = 3 * time.Second

// New validates cfg and returns a server for deps' listeners. It opens nothing.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Control == nil {
		return nil, errors.New("web: no control socket")
	}
	if deps.Instance == nil {
		return nil, errors.New("web: no instance to report on")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	stateDir := ""
	if deps.DataDir != "" {
		stateDir = filepath.Join(deps.DataDir, "web")
	}
	auth, err := newAuthState(stateDir, deps.Now)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, deps: deps, log: deps.Logger, nodeScript: parseNodeScript(), pages: parsePages(),
		auth: auth, hist: &history{}, now: deps.Now, stopping: make(chan struct{})}
	s.nodes, s.reports = newNodeCounters(), loadReports(stateDir)
	s.jobs, s.ownJobs = deps.Jobs, deps.Jobs == nil
	if s.ownJobs {
		s.jobs = NewJobs(nil)
	}
	s.jobs.mu.Lock()
	s.jobs.onDone = s.jobAudit
	s.jobs.mu.Unlock()
	if deps.UI != nil && cfg.Admin.PasswordHash == "" {
		auth.setupToken = randomHex(16)
	}
	return s, nil
}

// logSetupLink tells the operator how to set the first password: a
// one-time link (never a default password).
func (s *Server) logSetupLink() {
	s.auth.mu.Lock()
	tok := s.auth.setupToken
	s.auth.mu.Unlock()
	if tok == "" || s.deps.UI == nil {
		return
	}
	scheme := "http"
	if s.deps.UITLS != nil {
		scheme = "https"
	}
	s.log.Warn("no admin password is set: open the one-time setup link to set one, or run `airgapd passwd --config FILE`",
		"setup_url", scheme+"://"+s.deps.UI.Addr().String()+"/setup?token="+tok)
}

// sample records the figures plotted from status snapshots until ctx ends.
func (s *Server) sample(ctx context.Context) {
	t := time.NewTicker(historyEvery)
	defer t.Stop()
	for {
		st, now := s.status(), s.now()
		s.hist.add(now, st)
		s.nodes.foldDNS(st, now)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Reload applies a new config. The listeners' routers are built at start,
// so any change asks server to build a new instance on the same sockets.
func (s *Server) Reload(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	return conf.ErrRestartNeeded
}

// Status reports web's listeners.
func (s *Server) Status() api.WebStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := api.WebStatus{State: "down"}
	if s.running {
		st.State = "up"
	}
	for _, l := range s.listeners() {
		st.Listeners = append(st.Listeners, l.name+" "+l.url())
	}
	st.Summary = fmt.Sprintf("%d HTTP listeners", len(st.Listeners))
	return st
}

type listener struct {
	name    string
	ln      net.Listener
	tls     *tls.Config
	handler http.Handler
}

func (l listener) url() string {
	if _, ok := l.ln.(*net.UnixListener); ok {
		return "unix:" + l.ln.Addr().String()
	}
	scheme := "http"
	if l.tls != nil {
		scheme = "https"
	}
	return scheme + "://" + l.ln.Addr().String()
}

func (s *Server) listeners() []listener {
	var ls []listener
	if s.deps.UI != nil {
		ls = append(ls, listener{"ui", s.deps.UI, s.deps.UITLS, s.uiRouter()})
	}
	ls = append(ls, listener{"control", s.deps.Control, nil, s.controlRouter()})
	if s.deps.Mirror != nil {
		ls = append(ls, listener{"mirror", s.deps.Mirror, nil, s.mirrorRouter()})
	}
	if s.deps.Registry != nil {
		ls = append(ls, listener{"registry", s.deps.Registry, s.deps.RegistryTLS, s.registryRouter()})
	}
	return ls
}

// Run serves every listener until ctx ends, then lets in-flight requests
// finish (bounded by shutdownGrace) and returns nil. It closes the listeners
// it was handed; server hands each instance its own duplicate, so the
// sockets themselves stay open for the next instance.
func (s *Server) Run(ctx context.Context) error {
	if s.ownJobs {
		jobsCtx, stopJobs := context.WithCancel(ctx)
		s.jobs.bind(jobsCtx)
		defer func() { stopJobs(); s.jobs.wait(shutdownGrace) }()
	}
	ls := s.listeners()
	servers := make([]*http.Server, len(ls))
	errc := make(chan error, len(ls))
	for i, l := range ls {
		hs := &http.Server{
			Handler:           l.handler,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		}
		if _, ok := l.ln.(*net.UnixListener); ok {
			hs.ConnContext = withPeerCred
		}
		servers[i] = hs
		ln := l.ln
		if l.tls != nil {
			ln = tls.NewListener(ln, l.tls)
		}
		go func(name string) {
			err := hs.Serve(ln)
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			if err != nil {
				err = fmt.Errorf("web: %s listener: %w", name, err)
			}
			errc <- err
		}(l.name)
		s.log.Info("serving HTTP", "listener", l.name, "url", l.url())
	}
	s.mu.Lock()
	s.running = true
	s.mu.Unlock()
	s.logSetupLink()
	sampleCtx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() { defer close(sampled); s.sample(sampleCtx) }()
	defer func() { stopSampling(); <-sampled }()
	defer func() {
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
	}()

	var firstErr error
	select {
	case <-ctx.Done():
	case firstErr = <-errc:
		// One listener failed: stop the others and report it.
	}
	close(s.stopping)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	for _, hs := range servers {
		if err := hs.Shutdown(shutdownCtx); err != nil {
			hs.Close()
		}
	}
	return firstErr
}
