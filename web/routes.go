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

// uiRouter serves web.listen: open health endpoints, /ca.crt, /metrics,
// /bootstrap/ and the login pages; everything else needs a session (pages)
// or a session or API token (/api/v1). Every state-changing request must
// come from this site (CrossOriginProtection: a cross-site POST gets 403)
// and is written to the audit log.
func (s *Server) uiRouter() http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer, securityHeaders)
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusForbidden, "cross-origin request refused: changes must come from this site's own pages or a non-browser client")
	}))
	r.Use(cop.Handler, s.authenticate, s.audited)
	s.commonRoutes(r)
	r.Handle("/metrics", s.metricsGuard(promhttp.HandlerFor(s.deps.Metrics, promhttp.HandlerOpts{})))
	s.bootstrapRoutes(r)
	r.Handle("/static/*", staticHandler())
	r.Get("/login", s.pageLogin)
	r.Get("/setup", s.pageSetup)
	r.Group(func(r chi.Router) {
		// Anyone may send these, so they are read no further than a
		// password form needs.
		r.Use(limitBody(unauthenticatedBody))
		r.Post("/login", s.handleLogin)
		r.Post("/setup", s.handleSetup)
	})
	r.Group(func(r chi.Router) {
		r.Use(requireAPIAuth, limitBody(authenticatedBody))
		s.apiRoutes(r)
	})
	r.Group(func(r chi.Router) {
		r.Use(requirePageAuth, limitBody(authenticatedBody))
		s.uiPages(r)
	})
	return r
}

// Request body limits: a login or setup form is a few hundred bytes; the
// largest authenticated body is a whole config file (PUT /api/v1/config,
// the Settings page), which readBody caps at 1 MiB itself.
const (
	unauthenticatedBody = 4 << 10
	authenticatedBody   = 2 << 20
)

// limitBody makes reading more than n bytes of a request body fail (413 for
// form parsers), so no request can make the server buffer more.
func limitBody(n int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > n {
				writeJSONError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", n))
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, n)
			next.ServeHTTP(w, r)
		})
	}
}

// controlRouter serves the control socket: the API without login, for
// callers the kernel says are uid 0 (or airgapd's own uid).
func (s *Server) controlRouter() http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer, requireRoot, controlPrincipal, s.audited)
	s.commonRoutes(r)
	s.apiRoutes(r)
	r.Handle("/metrics", promhttp.HandlerFor(s.deps.Metrics, promhttp.HandlerOpts{}))
	return r
}

// mirrorRouter serves mirror.listen: plain HTTP that nodes reach before they
// trust anything.
func (s *Server) mirrorRouter() http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	s.commonRoutes(r)
	count := countClients(s.nodes.mirror, isDownload, s.now)
	if s.deps.MirrorHandler != nil {
		r.Handle("/repos/*", count(s.deps.MirrorHandler))
		r.Handle("/files/*", count(s.deps.MirrorHandler))
	}
	for _, m := range s.deps.MirrorMounts {
		r.Handle(m.Prefix+"*", count(m.Handler))
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
		count := countClients(s.nodes.registry, isPull, s.now)
		r.Handle("/v2", s.deps.RegistryHandler)
		r.Handle("/v2/*", count(s.deps.RegistryHandler))
	}
	return r
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
	setAudit(r, "dns cache flushed", "name="+name)
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
		Time  time.Time `json:"time"`
		Force bool      `json:"force"` // even while an upstream source is selected
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil || req.Time.IsZero() {
		writeJSONError(w, http.StatusBadRequest, `send {"time": "2026-11-21T16:30:05+09:00"} (RFC 3339)`)
		return
	}
	step, err := s.ntpSetTime(r, req.Time, req.Force)
	if err != nil {
		writeJSONError(w, http.StatusConflict, err.Error())
		return
	}
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
