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
var pageNames = []string{"login", "setup", "overview", "dns", "ntp", "gateway", "mirror", "registry", "charts", "settings", "tokens", "audit"}

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
		"add":  func(a, b int) int { return a + b },
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
	"saved":          "Config saved and reloaded. The previous version is kept as FILE.prev.",
	"restored":       "The previous config was restored and reloaded.",
	"revoked":        "Token revoked.",
	"password-set":   "Password set. Sign in with it.",
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
	r.Get("/registry", s.pageService("registry"))
	r.Get("/charts", s.pageService("charts"))
	r.Post("/ntp/settime", s.formNTPSetTime)
	r.Post("/mirror/sync", s.formMirrorSync)
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
	r.Post("/logout", s.handleLogout)
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

type settingsPage struct {
	Path string
	Text string
	// Base is the ConfigETag of the file the form was filled from: a save
	// made on an older file is refused instead of undoing the newer edit.
	Base string
	// CanImport: the import form is offered; Imported is an import's
	// report, shown above the YAML it made (in the editor, not yet saved).
	CanImport bool
	Imported  string
	Lines     []settingsLine
	Problems  []api.ConfigProblem
	HasPrev   bool
	ReadOnly  string
}

type settingsLine struct {
	N       int
	Text    string
	Problem string
}

func (s *Server) pageSettings(w http.ResponseWriter, r *http.Request) {
	path, data, err := s.configFile()
	p := settingsPage{Path: path, Text: string(data), Base: ConfigETag(data), CanImport: s.deps.ConfigImporter != nil}
	if err != nil {
		p.ReadOnly = err.Error()
	} else if _, err := s.deps.ConfigEditor.PreviousConfig(); err == nil {
		p.HasPrev = true
	}
	s.render(w, r, "settings", http.StatusOK, pageData{Title: "Settings", Nav: "settings", Status: s.status(), Data: p})
}

func (s *Server) formSettings(w http.ResponseWriter, r *http.Request) {
	path, _, err := s.configFile()
	if err != nil {
		s.render(w, r, "settings", http.StatusConflict, pageData{Title: "Settings", Nav: "settings", Error: err.Error(), Data: settingsPage{ReadOnly: err.Error()}})
		return
	}
	text := strings.ReplaceAll(r.PostFormValue("config"), "\r\n", "\n")
	setAudit(r, "config edited", fmt.Sprintf("%s, %d bytes", path, len(text)))
	if err := s.applyOn(r, r.PostFormValue("base"), []byte(text)); err != nil {
		setAuditResult(r, "refused: "+err.Error())
		p := settingsPage{Path: path, Text: text, Base: r.PostFormValue("base")}
		var ce *ConfigError
		if errors.As(err, &ce) {
			p.Problems = ce.Problems
			p.Lines = annotate(text, ce.Problems)
		}
		if _, err := s.deps.ConfigEditor.PreviousConfig(); err == nil {
			p.HasPrev = true
		}
		s.render(w, r, "settings", http.StatusUnprocessableEntity, pageData{Title: "Settings", Nav: "settings", Status: s.status(), Error: err.Error(), Data: p})
		return
	}
	http.Redirect(w, r, "/settings?done=saved", http.StatusSeeOther)
}

// annotate pairs each line of text with the problems found on it.
func annotate(text string, ps []api.ConfigProblem) []settingsLine {
	byLine := map[int][]string{}
	for _, p := range ps {
		if p.Line > 0 {
			msg := p.Msg
			if p.Path != "" {
				msg = p.Path + ": " + msg
			}
			if p.Hint != "" {
				msg += " (" + p.Hint + ")"
			}
			byLine[p.Line] = append(byLine[p.Line], msg)
		}
	}
	var out []settingsLine
	for i, l := range strings.Split(text, "\n") {
		out = append(out, settingsLine{N: i + 1, Text: l, Problem: strings.Join(byLine[i+1], "; ")})
	}
	return out
}

func (s *Server) formRestore(w http.ResponseWriter, r *http.Request) {
	if s.deps.ConfigEditor == nil {
		http.Error(w, "no config editor", http.StatusNotFound)
		return
	}
	prev, err := s.deps.ConfigEditor.PreviousConfig()
	setAudit(r, "config restored", "from the .prev file")
	if err == nil {
		err = s.apply(r, prev)
	}
	if err != nil {
		setAuditResult(r, "failed: "+err.Error())
		s.render(w, r, "settings", http.StatusConflict, pageData{Title: "Settings", Nav: "settings", Status: s.status(), Error: err.Error(), Data: settingsPage{ReadOnly: "restore failed"}})
		return
	}
	http.Redirect(w, r, "/settings?done=restored", http.StatusSeeOther)
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
	info, tok, err := s.auth.newToken(r.PostFormValue("name"))
	setAudit(r, "api token created", info.Name)
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
