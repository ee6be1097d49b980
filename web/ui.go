package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/airgapd/airgapd/internal/humanize"
	"github.com/go-chi/chi/v5"

	"github.com/airgapd/airgapd/api"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pageNames are the pages, each templates/NAME.html inside layout.html.
var pageNames = []string{"login", "setup", "overview", "dns", "ntp", "gateway", "mirror", "pypi", "goproxy", "registry", "charts", "settings", "tokens", "audit", "nodes", "registryrepo", "mirrorrepo"}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// pageSet is every page's parsed template.
type pageSet map[string]*template.Template

// parsePages parses every page with the layout; template data only.
func parsePages() pageSet {
	funcs := template.FuncMap{
		"bytes":   humanize.Bytes,
		"secs":    formatSeconds,
		"float":   formatFloat,
		"pct":     func(v float64) string { return formatPercent(v * 100) },
		"ms":      func(v float64) string { return fmt.Sprintf("%.2f ms", v) },
		"took":    func(a, b time.Time) string { return b.Sub(a).Round(100 * time.Millisecond).String() },
		"ago":     func(t time.Time) string { return ago(time.Since(t)) },
		"clock":   func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") },
		"hhmmss":  func(t time.Time) string { return t.Local().Format("15:04:05") },
		"title":   func(s string) string { return strings.ToUpper(s[:1]) + s[1:] },
		"stateOK": stateOK,
		// The gateway reports firewalld as "not running", "running (…)"
		// or "active (…)"; only the last two warrant the banner.
		"firewalldRunning": func(s string) bool {
			return strings.HasPrefix(s, "running") || strings.HasPrefix(s, "active")
		},
		"join": strings.Join,
		"count": func(n any, noun string) string {
			switch v := n.(type) {
			case int:
				return humanize.Count(v, noun)
			case int64:
				return humanize.Count(int(v), noun)
			case uint64:
				return humanize.Count(int(v), noun)
			}
			return fmt.Sprint(n) + " " + noun
		},
		"add": func(a, b int) int { return a + b },
		"hitratio": func(hits, misses int64) string {
			if hits+misses == 0 {
				return "—"
			}
			return formatPercent(float64(hits) * 100 / float64(hits+misses))
		},
	}
	out := pageSet{}
	for _, name := range pageNames {
		out[name] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
	return out
}

// stateOK sorts a service state into the badge colours.
func stateOK(state string) string {
	switch state {
	case "up", "synced", "local", "applied", "ready":
		return "ok"
	case "disabled":
		return "off"
	case "down", "failed", "unsynchronised", "error":
		return "bad"
	}
	return "warn"
}

func ago(d time.Duration) string {
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm ago", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// pageData is what every page gets.
type pageData struct {
	Title   string
	Nav     string // the nav entry to mark
	User    string
	Status  api.StatusReport
	Service api.ServiceStatus // the page's service, on service pages
	Flash   string
	Error   string
	Node    nodeLine
	Data    any
	// Action is the result of the form just posted on a service page
	// (mirrorAction, registryAction), or nil.
	Action any
}

// nodeLine is the one command a node needs, with the CA pin.
type nodeLine struct {
	Command string
	CA      string
}

func (s *Server) nodeLine(r *http.Request) nodeLine {
	b := s.deps.Bootstrapper
	ca := caFingerprint(s.deps.Instance.CACertPEM())
	if b == nil || ca == "" {
		return nodeLine{}
	}
	base := b.NodeBootstrap().MirrorURL
	if base == "" {
		base = "http://" + r.Host
	}
	return nodeLine{Command: fmt.Sprintf("curl -fsS %s/bootstrap/node.sh | sh -s -- --ca-sha256 %s", base, ca), CA: ca}
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, name string, code int, d pageData) {
	if p, ok := principalFrom(r.Context()); ok {
		d.User = p.Name
	}
	if d.Flash == "" {
		d.Flash = flashes[r.URL.Query().Get("done")]
	}
	var buf bytes.Buffer
	if err := s.pages[name].Execute(&buf, d); err != nil {
		s.log.Error("render page", "page", name, "err", err)
		http.Error(w, "cannot render the page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

// flashes are the messages a redirect after a change may show (?done=KEY);
// fixed texts, so nothing from the URL lands on the page.
var flashes = map[string]string{
	"record-added":   "Record added; DNS reloaded.",
	"record-deleted": "Record deleted; DNS reloaded.",
	"record-changed": "Record changed; DNS reloaded.",
	"flushed":        "DNS cache flushed.",
	"restored":       "The previous config was restored and reloaded.",
	"revoked":        "Token revoked.",
	"job-started":    "Started: the job runs on the server (closing this page does not stop it) and is listed at the top until it ends.",
	"canceled":       "Job canceled.",
	"password-set":   "Password set. Sign in with it.",
	"promoted":       "This host is now the primary and takes writes. Demote the old primary before it starts again (README).",
}

// securityHeaders: no inline script or style, no framing, no sniffing,
// nothing from elsewhere.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

func staticHandler() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	fsrv := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fsrv.ServeHTTP(w, r)
	})
}

// uiPages adds the signed-in pages.
func (s *Server) uiPages(r chi.Router) {
	r.Get("/", s.pageOverview)
	r.Get("/dns", s.pageDNS)
	r.Post("/dns/records", s.formAddRecord)
	r.Post("/dns/records/delete", s.formDeleteRecord)
	r.Post("/dns/records/edit", s.formEditRecord)
	r.Post("/dns/flush", s.formFlush)
	r.Get("/ntp", s.pageService("ntp"))
	r.Get("/gateway", s.pageService("gateway"))
	r.Get("/mirror", s.pageService("mirror"))
	r.Get("/pypi", s.pageService("pypi"))
	r.Get("/goproxy", s.pageService("goproxy"))
	r.Get("/registry", s.pageService("registry"))
	r.Get("/charts", s.pageService("charts"))
	r.Post("/ntp/settime", s.formNTPSetTime)
	r.Post("/mirror/sync", s.formMirrorSync)
	r.Post("/pypi/sync", s.formTreeSync("pypi", s.pypiSyncJob))
	r.Post("/goproxy/sync", s.formTreeSync("goproxy", s.goproxySyncJob))
	r.Post("/mirror/bundle", s.formBundleImport)
	r.Post("/jobs/{id}/cancel", s.formCancelJob)
	r.Post("/registry/gc", s.formRegistryGC)
	r.Post("/registry/tags/delete", s.formRegistryDeleteTag)
	r.Get("/settings", s.pageSettings)
	r.Post("/settings", s.formSettings)
	r.Post("/settings/restore", s.formRestore)
	r.Post("/settings/import", s.formImport)
	r.Get("/tokens", s.pageTokens)
	r.Post("/tokens", s.formNewToken)
	r.Post("/tokens/{id}/revoke", s.formRevokeToken)
	r.Get("/audit", s.pageAudit)
	r.Get("/nodes", s.pageNodes)
	r.Get("/registry/repo", s.pageRegistryRepo)
	r.Get("/mirror/repo", s.pageMirrorRepo)
	r.Post("/logout", s.handleLogout)
	r.Post("/ha/promote", s.formHAPromote)
}

func (s *Server) configFile() (string, []byte, error) {
	if s.deps.ConfigEditor == nil {
		return "", nil, errors.New("this instance has no config editor")
	}
	return s.deps.ConfigEditor.ConfigFile()
}

// apply hands a new config to the editor. When the reload rebuilds web
// itself (the web section changed), this instance is told to stop while
// the request waits; it then answers at once instead of holding up its own
// shutdown: the file is saved and the reload is under way.
func (s *Server) apply(r *http.Request, data []byte) error { return s.applyOn(r, "", data) }

// applyOn is apply for an edit made on the file version base
// (ConfigETag; "" = any).
func (s *Server) applyOn(r *http.Request, base string, data []byte) error {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-s.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := s.deps.ConfigEditor.ApplyConfig(ctx, base, data)
	select {
	case <-s.stopping:
		if errors.Is(err, context.Canceled) {
			return nil
		}
	default:
	}
	return err
}

// editRecords changes the records through the config file.
func (s *Server) editRecords(r *http.Request, zone, record string, add bool) error {
	verb := "dns record deleted"
	if add {
		verb = "dns record added"
	}
	setAudit(r, verb, zone+": "+record)
	return s.editConfig(r, func(data []byte) ([]byte, error) {
		if add {
			return AddZoneRecord(data, zone, record)
		}
		return DeleteZoneRecord(data, zone, record)
	})
}

// editConfig makes one change to the config file: read it, change it with
// edit, apply it on the version read. When another edit saved first, the
// change is made again on the new file, so two edits at once both land
// and neither is lost; an If-Match the client sent pins the version
// instead (412 when stale).
func (s *Server) editConfig(r *http.Request, edit func([]byte) ([]byte, error)) error {
	s.editMu.Lock()
	defer s.editMu.Unlock()
	const attempts = 5
	for i := 0; ; i++ {
		_, data, err := s.configFile()
		if err != nil {
			return err
		}
		base := ConfigETag(data)
		if m := r.Header.Get("If-Match"); m != "" && m != base {
			setAuditResult(r, "refused: "+ErrStaleConfig.Error())
			return ErrStaleConfig
		}
		next, err := edit(data)
		if err != nil {
			return err
		}
		err = s.applyOn(r, base, next)
		if errors.Is(err, ErrStaleConfig) && r.Header.Get("If-Match") == "" && i+1 < attempts {
			continue
		}
		if err != nil {
			setAuditResult(r, "failed: "+err.Error())
		}
		return err
	}
}

// replaceRecord changes one record in place through the config file:
// the same path as add and delete (validated, written, reloaded, audited).
func (s *Server) replaceRecord(r *http.Request, zone, old, record string) error {
	setAudit(r, "dns record changed", zone+": "+old+" → "+strings.TrimSpace(record))
	return s.editConfig(r, func(data []byte) ([]byte, error) {
		return ReplaceZoneRecord(data, zone, old, record)
	})
}

func (s *Server) formEditRecord(w http.ResponseWriter, r *http.Request) {
	if err := s.replaceRecord(r, r.PostFormValue("zone"), r.PostFormValue("old"), r.PostFormValue("record")); err != nil {
		s.renderDNS(w, r, http.StatusUnprocessableEntity, err.Error())
		return
	}
	http.Redirect(w, r, "/dns?done=record-changed", http.StatusSeeOther)
}

func (s *Server) formAddRecord(w http.ResponseWriter, r *http.Request) {
	if err := s.editRecords(r, r.PostFormValue("zone"), r.PostFormValue("record"), true); err != nil {
		s.renderDNS(w, r, http.StatusUnprocessableEntity, err.Error())
		return
	}
	http.Redirect(w, r, "/dns?done=record-added", http.StatusSeeOther)
}

func (s *Server) formDeleteRecord(w http.ResponseWriter, r *http.Request) {
	if err := s.editRecords(r, r.PostFormValue("zone"), r.PostFormValue("record"), false); err != nil {
		s.renderDNS(w, r, http.StatusUnprocessableEntity, err.Error())
		return
	}
	http.Redirect(w, r, "/dns?done=record-deleted", http.StatusSeeOther)
}

func (s *Server) formFlush(w http.ResponseWriter, r *http.Request) {
	if s.deps.DNSCache == nil {
		s.renderDNS(w, r, http.StatusNotFound, "no DNS cache here")
		return
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	n, err := s.deps.DNSCache.FlushDNSCache(name)
	setAudit(r, "dns cache flushed", fmt.Sprintf("name=%q, %d entries", name, n))
	if err != nil {
		s.renderDNS(w, r, http.StatusConflict, err.Error())
		return
	}
	http.Redirect(w, r, "/dns?done=flushed", http.StatusSeeOther)
}

type tokensPage struct {
	Tokens   []TokenInfo
	NewName  string
	NewToken string
}

func (s *Server) pageTokens(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, "tokens", http.StatusOK, pageData{Title: "API tokens", Nav: "tokens", Status: s.status(), Data: tokensPage{Tokens: s.auth.tokens()}})
}

func (s *Server) formNewToken(w http.ResponseWriter, r *http.Request) {
	ttl, err := parseTokenTTL(r.PostFormValue("expires_in"))
	var info TokenInfo
	var tok string
	if err == nil {
		info, tok, err = s.auth.newToken(r.PostFormValue("name"), r.PostFormValue("scope"), ttl)
	}
	setAudit(r, "api token created", r.PostFormValue("name")+" (scope "+valueOr(r.PostFormValue("scope"), ScopeAdmin)+")")
	d := pageData{Title: "API tokens", Nav: "tokens", Status: s.status()}
	code := http.StatusOK
	if err != nil {
		d.Error, code = err.Error(), http.StatusUnprocessableEntity
	}
	d.Data = tokensPage{Tokens: s.auth.tokens(), NewName: info.Name, NewToken: tok}
	s.render(w, r, "tokens", code, d)
}

func (s *Server) formRevokeToken(w http.ResponseWriter, r *http.Request) {
	name, ok := s.auth.revokeToken(chi.URLParam(r, "id"))
	setAudit(r, "api token revoked", name)
	if !ok {
		http.Error(w, "no such token", http.StatusNotFound)
		return
	}
	http.Redirect(w, r, "/tokens?done=revoked", http.StatusSeeOther)
}

func (s *Server) pageAudit(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, "audit", http.StatusOK, pageData{Title: "Audit log", Nav: "audit", Status: s.status(), Data: s.auth.auditLog(200)})
}

// readBody reads a bounded request body.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("request body over %d bytes", limit)
	}
	return b, nil
}
