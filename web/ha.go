package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/airgapd/airgapd/api"
)

// HA is this host's half of a primary + standby pair; server satisfies it.
type HA interface {
	// HASnapshot is what the standby pulls from the primary each round.
	HASnapshot() (api.HASnapshot, error)
	// PromoteHA makes a standby the primary (writable).
	PromoteHA(ctx context.Context) (string, error)
	// NotifyHA is keepalived's state change (master, backup, fault).
	NotifyHA(state string) (string, error)
}

// HAPeerToken is the name of the API token a standby uses on its primary:
// only it (and root on the control socket) may fetch the snapshot, which
// holds the CA key.
const HAPeerToken = "ha-peer"

func (s *Server) haRoutes(r chi.Router) {
	r.Get("/api/v1/ha/snapshot", s.handleHASnapshot)
	r.Post("/api/v1/ha/promote", s.handleHAPromote)
	r.Post("/api/v1/ha/notify", s.handleHANotify)
}

func (s *Server) handleHANotify(w http.ResponseWriter, r *http.Request) {
	state := r.URL.Query().Get("state")
	setAudit(r, "ha notify", "state="+state)
	if state != "master" && state != "backup" && state != "fault" {
		writeJSONError(w, http.StatusBadRequest, "send ?state=master, backup or fault")
		return
	}
	if s.deps.HA == nil {
		writeJSONError(w, http.StatusNotFound, "no ha: section here")
		return
	}
	msg, err := s.deps.HA.NotifyHA(state)
	if err != nil {
		writeJSONError(w, http.StatusConflict, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"message": msg})
}

func (s *Server) handleHASnapshot(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFrom(r.Context())
	if p.Name != "token:"+HAPeerToken && !strings.HasPrefix(p.Via, "control socket") {
		writeJSONError(w, http.StatusForbidden, "the HA snapshot holds the CA key: only the API token named "+HAPeerToken+" may fetch it")
		return
	}
	if s.deps.HA == nil {
		writeJSONError(w, http.StatusNotFound, "no ha: section here")
		return
	}
	snap, err := s.deps.HA.HASnapshot()
	if err != nil {
		writeJSONError(w, http.StatusConflict, err.Error())
		return
	}
	if snap.Tokens, err = s.ExportTokens(); err != nil {
		writeJSONError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, snap)
}

func (s *Server) handleHAPromote(w http.ResponseWriter, r *http.Request) {
	setAudit(r, "ha promote", "")
	if s.deps.HA == nil {
		writeJSONError(w, http.StatusNotFound, "no ha: section here")
		return
	}
	msg, err := s.deps.HA.PromoteHA(r.Context())
	if err != nil {
		writeConfigError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"message": msg})
}

// ExportTokens is this instance's API tokens (hashes, never the tokens),
// for an HA standby to copy.
func (s *Server) ExportTokens() ([]byte, error) {
	s.auth.mu.Lock()
	defer s.auth.mu.Unlock()
	return json.Marshal(s.auth.data.Tokens)
}

// ImportTokens replaces this instance's API tokens with a primary's (an
// HA standby follows them); sessions stay this host's.
func (s *Server) ImportTokens(data []byte) error {
	var ts []tokenRec
	if err := json.Unmarshal(data, &ts); err != nil {
		return errors.New("the primary's tokens are not token records: " + err.Error())
	}
	s.auth.mu.Lock()
	defer s.auth.mu.Unlock()
	same := func(a, b tokenRec) bool {
		return a.ID == b.ID && a.Hash == b.Hash && a.Name == b.Name && a.Scope == b.Scope && a.Expires.Equal(b.Expires)
	}
	if slices.EqualFunc(ts, s.auth.data.Tokens, same) {
		return nil
	}
	old := s.auth.data.Tokens
	s.auth.data.Tokens = ts
	if err := s.auth.save(); err != nil {
		s.auth.data.Tokens = old
		return err
	}
	return nil
}

// formHAPromote is the standby banner's "Promote" button: the same as
// `airgapd ha promote`.
func (s *Server) formHAPromote(w http.ResponseWriter, r *http.Request) {
	setAudit(r, "ha promote", "UI")
	if s.deps.HA == nil {
		http.Error(w, "no ha: section here", http.StatusNotFound)
		return
	}
	if _, err := s.deps.HA.PromoteHA(r.Context()); err != nil {
		s.render(w, r, "overview", http.StatusConflict, pageData{Title: "Overview", Nav: "overview", Status: s.status(), Error: "promote failed: " + err.Error()})
		return
	}
	http.Redirect(w, r, "/?done=promoted", http.StatusSeeOther)
}
