package web

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/airgapd/airgapd/api"
)

// PyPISyncer runs PyPI index syncs for the control socket, so that
// `airgapd pypi sync` next to a server has the server do the work.
type PyPISyncer interface {
	SyncPyPI(ctx context.Context, progress func(api.Progress)) (api.SyncResult, error)
}

// pypiControlRoutes adds the PyPI index's control-socket API.
func (s *Server) pypiControlRoutes(r chi.Router) {
	r.Post("/api/v1/pypi/sync", s.handlePyPISync)
}

// handlePyPISync streams a sync as JSON lines (api.SyncEvent), as
// /api/v1/mirror/sync does, with the one tree's result.
func (s *Server) handlePyPISync(w http.ResponseWriter, r *http.Request) {
	if s.deps.PyPISyncer == nil {
		writeJSONError(w, http.StatusNotFound, "no pypi index here")
		return
	}
	if wantJob(r) {
		s.answerJob(w, r, func() (string, error) { return s.pypiSyncJob(r) })
		return
	}
	rc := http.NewResponseController(w)
	stream := api.NewStreamWriter[api.Progress, api.SyncResult](w, func() {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
	}, func() { rc.Flush() })
	res, err := s.deps.PyPISyncer.SyncPyPI(r.Context(), func(p api.Progress) {
		stream.Send(api.SyncEvent{Progress: &p})
	})
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
