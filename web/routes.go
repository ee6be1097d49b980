package web

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// uiRouter serves web.listen. Login arrives with the UI issue; until then
// the API over TCP answers 401 to everything, and only the health
// endpoints, the CA certificate and /metrics are open.
func (s *Server) uiRouter() http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	s.commonRoutes(r)
	r.Handle("/metrics", promhttp.HandlerFor(s.deps.Metrics, promhttp.HandlerOpts{}))
	r.Handle("/api/*", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="airgapd"`)
		writeJSONError(w, http.StatusUnauthorized, "authentication required: over TCP the API needs a session or an API token; on this host use `airgapd status` (control socket, as root)")
	}))
	s.bootstrapRoutes(r)
	r.Get("/", s.handleLanding)
	return r
}

// controlRouter serves the control socket: the API without login, for
// callers the kernel says are uid 0.
func (s *Server) controlRouter() http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer, requireRoot)
	s.commonRoutes(r)
	r.Get("/api/v1/status", s.handleStatus)
	r.Post("/api/v1/dns/cache/flush", s.handleDNSFlush)
	r.Post("/api/v1/ntp/settime", s.handleNTPSetTime)
	s.registryAdminRoutes(r)
	s.mirrorControlRoutes(r)
	r.Handle("/metrics", promhttp.HandlerFor(s.deps.Metrics, promhttp.HandlerOpts{}))
	return r
}

// mirrorRouter serves mirror.listen: plain HTTP that nodes reach before they
// trust anything.
func (s *Server) mirrorRouter() http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	s.commonRoutes(r)
	if s.deps.MirrorHandler != nil {
		r.Handle("/repos/*", s.deps.MirrorHandler)
		r.Handle("/files/*", s.deps.MirrorHandler)
	}
	s.bootstrapRoutes(r)
	return r
}

// registryRouter serves registry.listen.
func (s *Server) registryRouter() http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	r.Get("/healthz", s.handleHealthz)
	if s.deps.RegistryHandler != nil {
		r.Handle("/v2", s.deps.RegistryHandler)
		r.Handle("/v2/*", s.deps.RegistryHandler)
	}
	return r
}

// handleLanding is the plain-text front page until the admin UI lands: the
// one command a node needs, with the CA fingerprint to pin.
func (s *Server) handleLanding(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, "airgapd\n\nThe admin UI is not built yet. Open endpoints: /healthz /readyz /ca.crt /metrics.\nOn this host, `airgapd status` shows every service.\n")
	b, ok := s.deps.Instance.(Bootstrapper)
	ca := caFingerprint(s.deps.Instance.CACertPEM())
	if !ok || ca == "" {
		return
	}
	base := b.NodeBootstrap().MirrorURL
	if base == "" {
		base = "http://" + r.Host
	}
	fmt.Fprintf(w, "\nSet up a node (as root on the node):\n\n  curl -fsS %s/bootstrap/node.sh | sh -s -- --ca-sha256 %s\n\nAdd --dry-run to see the changes first, --k8s-prereqs for Kubernetes' modules, sysctls and swap.\n", base, ca)
}

func (s *Server) commonRoutes(r chi.Router) {
	r.Get("/healthz", s.handleHealthz)
	r.Get("/readyz", s.handleReadyz)
	r.Get("/ca.crt", s.handleCACert)
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !s.deps.Instance.Ready() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "starting")
		return
	}
	fmt.Fprintln(w, "ready")
}

func (s *Server) handleCACert(w http.ResponseWriter, r *http.Request) {
	pem := s.deps.Instance.CACertPEM()
	if pem == nil {
		http.Error(w, "no appliance CA: every listener uses tls: off or its own certificate", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `attachment; filename="airgapd-ca.crt"`)
	w.Write(pem)
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.deps.Instance.Status())
}

// handleDNSFlush is `rndc flushname NAME` (?name=NAME) or `rndc flush`.
func (s *Server) handleDNSFlush(w http.ResponseWriter, r *http.Request) {
	if s.deps.DNSCache == nil {
		writeJSONError(w, http.StatusNotFound, "no DNS cache here")
		return
	}
	name := r.URL.Query().Get("name")
	n, err := s.deps.DNSCache.FlushDNSCache(name)
	if err != nil {
		writeJSONError(w, http.StatusConflict, err.Error())
		return
	}
	s.log.Info("DNS cache flushed", "name", name, "entries", n)
	writeJSON(w, http.StatusOK, map[string]any{"flushed": n, "name": name})
}

// handleNTPSetTime is `chronyc settime`: {"time": RFC 3339}.
func (s *Server) handleNTPSetTime(w http.ResponseWriter, r *http.Request) {
	if s.deps.NTPClock == nil {
		writeJSONError(w, http.StatusNotFound, "no NTP service here")
		return
	}
	var req struct {
		Time time.Time `json:"time"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil || req.Time.IsZero() {
		writeJSONError(w, http.StatusBadRequest, `send {"time": "2026-11-21T16:30:05+09:00"} (RFC 3339)`)
		return
	}
	step, err := s.deps.NTPClock.SetNTPTime(req.Time)
	if err != nil {
		writeJSONError(w, http.StatusConflict, err.Error())
		return
	}
	s.log.Info("NTP served time set through the API", "time", req.Time, "step", step)
	writeJSON(w, http.StatusOK, map[string]any{"time": req.Time, "step_seconds": step.Seconds()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// apiError is the body of every API error: a message that says what to do.
type apiError struct {
	Error string `json:"error"`
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiError{Error: msg})
}
