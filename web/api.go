package web

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
)

func subtleEq(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// apiRoutes is /api/v1: on the control socket (root, no login) and over
// TCP (a session or a token). Everything the UI changes, the API changes.
func (s *Server) apiRoutes(r chi.Router) {
	r.Get("/api/v1/status", s.handleStatus)
	r.Post("/api/v1/dns/cache/flush", s.handleDNSFlush)
	r.Get("/api/v1/dns/records", s.handleListRecords)
	r.Post("/api/v1/dns/records", s.handleRecord(true))
	r.Delete("/api/v1/dns/records", s.handleRecord(false))
	r.Put("/api/v1/dns/records", s.handleReplaceRecord)
	r.Post("/api/v1/ntp/settime", s.handleNTPSetTime)
	r.Get("/api/v1/config", s.handleGetConfig)
	r.Put("/api/v1/config", s.handlePutConfig)
	r.Get("/api/v1/audit", s.handleAudit)
	r.Get("/api/v1/tokens", s.handleListTokens)
	r.Post("/api/v1/tokens", s.handleNewToken)
	r.Delete("/api/v1/tokens/{id}", s.handleRevokeToken)
	s.registryAdminRoutes(r)
	s.mirrorControlRoutes(r)
	s.aptControlRoutes(r)
	s.pypiControlRoutes(r)
	s.goproxyControlRoutes(r)
	s.chartsControlRoutes(r)
	s.bundleControlRoutes(r)
	s.jobRoutes(r)
	s.haRoutes(r)
	r.Handle("/api/*", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusNotFound, "no such API endpoint; see the README's API table")
	}))
}

type recordRequest struct {
	Zone   string `json:"zone"`
	Record string `json:"record"`
}

// handleListRecords lists each zone's records as the config holds them.
func (s *Server) handleListRecords(w http.ResponseWriter, r *http.Request) {
	_, data, err := s.configFile()
	if err != nil {
		writeJSONError(w, http.StatusConflict, err.Error())
		return
	}
	recs, err := ZoneRecords(data)
	if err != nil {
		writeJSONError(w, http.StatusConflict, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"zones": recs})
}

// handleRecord adds or deletes one record: {"zone": Z, "record": R}.
func (s *Server) handleRecord(add bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req recordRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8192)).Decode(&req); err != nil || req.Zone == "" || req.Record == "" {
			writeJSONError(w, http.StatusBadRequest, `send {"zone": "lab.internal", "record": "node1 300 A 192.168.10.21"}`)
			return
		}
		if err := s.editRecords(r, req.Zone, req.Record, add); err != nil {
			writeConfigError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "zone": req.Zone, "record": req.Record})
	}
}

// handleReplaceRecord changes one record in place:
// {"zone": Z, "old": R0, "record": R1}.
func (s *Server) handleReplaceRecord(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Zone   string `json:"zone"`
		Old    string `json:"old"`
		Record string `json:"record"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8192)).Decode(&req); err != nil || req.Zone == "" || req.Old == "" || req.Record == "" {
		writeJSONError(w, http.StatusBadRequest, `send {"zone": "lab.internal", "old": "node1 300 A 192.168.10.21", "record": "node1 300 A 192.168.10.22"}`)
		return
	}
	if err := s.replaceRecord(r, req.Zone, req.Old, req.Record); err != nil {
		writeConfigError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "zone": req.Zone, "old": req.Old, "record": strings.TrimSpace(req.Record)})
}

func writeConfigError(w http.ResponseWriter, err error) {
	var ce *ConfigError
	switch {
	case errors.As(err, &ce):
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": err.Error(), "problems": ce.Problems})
	case errors.Is(err, ErrNoConfigFile):
		writeJSONError(w, http.StatusConflict, err.Error())
	case errors.Is(err, ErrStaleConfig):
		writeJSONError(w, http.StatusPreconditionFailed, err.Error())
	default:
		writeJSONError(w, http.StatusUnprocessableEntity, err.Error())
	}
}

func (s *Server) handleGetConfig(w http.ResponseWriter, r *http.Request) {
	_, data, err := s.configFile()
	if err != nil {
		writeJSONError(w, http.StatusConflict, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("ETag", ConfigETag(data))
	w.Write(data)
}

// handlePutConfig replaces the whole config (the body, YAML): 422 with
// every problem at its line when it does not validate.
func (s *Server) handlePutConfig(w http.ResponseWriter, r *http.Request) {
	if s.deps.ConfigEditor == nil {
		writeJSONError(w, http.StatusNotFound, "no config editor here")
		return
	}
	data, err := readBody(r, 1<<20)
	if err != nil {
		writeJSONError(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	setAudit(r, "config replaced", "through the API")
	// If-Match: the ETag of the GET this edit started from; a file changed
	// since gets 412 and nothing is written.
	if err := s.applyOn(r, r.Header.Get("If-Match"), data); err != nil {
		setAuditResult(r, "refused: "+err.Error())
		writeConfigError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.auth.auditLog(auditKeep))
}

func (s *Server) handleListTokens(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.auth.tokens())
}

// handleNewToken creates a token: {"name": N} → the token, shown once.
func (s *Server) handleNewToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name      string `json:"name"`
		Scope     string `json:"scope"`      // admin (the default) or read
		ExpiresIn string `json:"expires_in"` // a Go duration, e.g. 720h; empty: never
	}
	json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req)
	setAudit(r, "api token created", req.Name+" (scope "+valueOr(req.Scope, ScopeAdmin)+")")
	ttl, err := parseTokenTTL(req.ExpiresIn)
	var info TokenInfo
	var tok string
	if err == nil {
		info, tok, err = s.auth.newToken(req.Name, req.Scope, ttl)
	}
	if err != nil {
		setAuditResult(r, "refused: "+err.Error())
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": info.ID, "name": info.Name, "token": tok, "created": info.Created, "scope": info.Scope, "expires": info.Expires})
}

func (s *Server) handleRevokeToken(w http.ResponseWriter, r *http.Request) {
	name, ok := s.auth.revokeToken(chi.URLParam(r, "id"))
	setAudit(r, "api token revoked", name)
	if !ok {
		writeJSONError(w, http.StatusNotFound, "no such token")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"revoked": name})
}
