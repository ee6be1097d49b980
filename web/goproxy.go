package web

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/airgapd/airgapd/api"
)

// GoProxySyncer runs Go module proxy syncs for the control socket, so
// that `airgapd goproxy sync` next to a server has the server do the work
// (and its status show the progress).
type GoProxySyncer interface {
	SyncGoProxy(ctx context.Context, progress func(api.Progress)) (api.SyncResult, error)
}

// goproxyControlRoutes adds the Go module proxy's control-socket API.
func (s *Server) goproxyControlRoutes(r chi.Router) {
	r.Post("/api/v1/goproxy/sync", s.handleGoProxySync)
}

// handleGoProxySync streams a sync as JSON lines (api.SyncEvent), as
// handleMirrorSync does, with the one tree's result.
func (s *Server) handleGoProxySync(w http.ResponseWriter, r *http.Request) {
	gs := s.deps.GoProxySyncer
	if gs == nil {
		writeJSONError(w, http.StatusNotFound, "no goproxy here")
		return
	}
	if wantJob(r) {
		s.answerJob(w, r, func() (string, error) { return s.goproxySyncJob(r) })
		return
	}
	rc := http.NewResponseController(w)
	stream := api.NewStreamWriter[api.Progress, api.SyncResult](w, func() {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
	}, func() { rc.Flush() })
	setAudit(r, "goproxy sync", "")
	res, err := gs.SyncGoProxy(r.Context(), func(p api.Progress) { stream.Send(api.SyncEvent{Progress: &p}) })
	if err != nil {
		setAuditResult(r, "failed: "+err.Error())
	}
	s.log.Info("goproxy sync through the API", "err", err, "by", auditWho(r))
	if !stream.Started() && err != nil && res.Repo == "" {
		writeJSONError(w, http.StatusConflict, err.Error())
		return
	}
	final := api.SyncEvent{Done: true, Results: []api.SyncResult{res}}
	if err != nil {
		final.Error = err.Error()
	}
	stream.Send(final)
}
