package web

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/airgapd/airgapd/api"
)

// MirrorSyncer runs mirror syncs for the control socket, so that
// `airgapd mirror sync` run next to a server has the server do the work
// (and the UI show its progress).
type MirrorSyncer interface {
	// SyncMirror syncs the named repos (every mirrored one when names is
	// empty), calling progress as it goes; err joins every repo's failure.
	SyncMirror(ctx context.Context, names []string, progress func(api.Progress)) ([]api.SyncResult, error)
}

// mirrorControlRoutes adds the mirror's control-socket API.
func (s *Server) mirrorControlRoutes(r chi.Router) {
	r.Post("/api/v1/mirror/sync", s.handleMirrorSync)
}

// handleMirrorSync streams a sync as JSON lines (api.SyncEvent):
// {"progress": …} while it runs, then {"done": true, "results": …,
// "error": "…"}. A request that cannot start (no mirror, unknown repo) gets
// a plain JSON error instead. The sync stops when the caller goes away.
func (s *Server) handleMirrorSync(w http.ResponseWriter, r *http.Request) {
	if s.deps.MirrorSyncer == nil {
		writeJSONError(w, http.StatusNotFound, "no mirror here")
		return
	}
	names := r.URL.Query()["repo"]
	rc := http.NewResponseController(w)
	stream := api.NewStreamWriter[api.Progress, api.SyncResult](w, func() {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
	}, func() { rc.Flush() })
	res, err := s.mirrorSync(r, names, func(p api.Progress) {
		stream.Send(api.SyncEvent{Progress: &p})
	})
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
