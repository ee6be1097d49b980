package web

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/go-chi/chi/v5"
)

// MirrorSyncer runs mirror syncs for the control socket, so that
// `airgapd mirror sync` run next to a server has the server do the work
// (and the UI show its progress).
type MirrorSyncer interface {
	// SyncMirror syncs the named repos (every mirrored one when names is
	// empty), calling progress with JSON-encodable snapshots as it goes.
	// result is JSON-encodable; err joins every repo's failure.
	SyncMirror(ctx context.Context, names []string, progress func(any)) (result any, err error)
}

// mirrorControlRoutes adds the mirror's control-socket API.
func (s *Server) mirrorControlRoutes(r chi.Router) {
	r.Post("/api/v1/mirror/sync", s.handleMirrorSync)
}

// handleMirrorSync streams a sync as JSON lines: {"progress": …} while it
// runs, then {"done": true, "results": …, "error": "…"}. A request that
// cannot start (no mirror, unknown repo) gets a plain JSON error instead.
// The sync stops when the caller goes away.
func (s *Server) handleMirrorSync(w http.ResponseWriter, r *http.Request) {
	if s.deps.MirrorSyncer == nil {
		writeJSONError(w, http.StatusNotFound, "no mirror here")
		return
	}
	names := r.URL.Query()["repo"]
	rc := http.NewResponseController(w)
	var mu sync.Mutex
	started := false
	enc := json.NewEncoder(w)
	begin := func() {
		if !started {
			started = true
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.WriteHeader(http.StatusOK)
		}
	}
	res, err := s.mirrorSync(r, names, func(p any) {
		mu.Lock()
		defer mu.Unlock()
		begin()
		enc.Encode(map[string]any{"progress": p})
		rc.Flush()
	})
	mu.Lock()
	defer mu.Unlock()
	if !started && err != nil && res == nil {
		writeJSONError(w, http.StatusConflict, err.Error())
		return
	}
	begin()
	final := map[string]any{"done": true, "results": res}
	if err != nil {
		final["error"] = err.Error()
	}
	enc.Encode(final)
}
