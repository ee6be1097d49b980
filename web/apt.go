package web

import (
	"context"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/airgapd/airgapd/api"
)

// AptSyncer runs APT syncs and indexes for the control socket, so that
// `airgapd apt sync|index` run next to a server has the server do the work.
type AptSyncer interface {
	// SyncApt syncs the named repos (every mirrored one when names is
	// empty; a local repo named is indexed), calling progress as it goes.
	SyncApt(ctx context.Context, names []string, progress func(api.Progress)) ([]api.SyncResult, error)
}

// aptControlRoutes adds the APT service's control-socket API.
func (s *Server) aptControlRoutes(r chi.Router) {
	r.Post("/api/v1/apt/sync", s.handleAptSync)
}

// handleAptSync streams a sync as JSON lines, as handleMirrorSync does.
func (s *Server) handleAptSync(w http.ResponseWriter, r *http.Request) {
	as := s.deps.AptSyncer
	if as == nil {
		writeJSONError(w, http.StatusNotFound, "no apt service here")
		return
	}
	names := r.URL.Query()["repo"]
	rc := http.NewResponseController(w)
	stream := api.NewStreamWriter[api.Progress, api.SyncResult](w, func() {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
	}, func() { rc.Flush() })
	what := "every mirrored apt repo"
	if len(names) > 0 {
		what = strings.Join(names, ", ")
	}
	setAudit(r, "apt sync", what)
	res, err := as.SyncApt(r.Context(), names, func(p api.Progress) { stream.Send(api.SyncEvent{Progress: &p}) })
	if err != nil {
		setAuditResult(r, "failed: "+err.Error())
	}
	s.log.Info("apt sync through the API", "repos", names, "err", err, "by", auditWho(r))
	if !stream.Started() && err != nil && res == nil {
		writeJSONError(w, http.StatusConflict, err.Error())
		return
	}
	final := api.SyncEvent{Done: true, Results: res}
	if err != nil {
		final.Error = err.Error()
	}
	stream.Send(final)
}
