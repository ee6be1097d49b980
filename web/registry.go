package web

import (
	"context"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/airgapd/airgapd/api"
)

// RegistryAdmin is the registry's maintenance work as the control API
// reaches it: `airgapd registry gc` and `airgapd registry import`.
type RegistryAdmin interface {
	// RegistryGC collects unreferenced blobs (or lists them, dry) and
	// returns what it removed; an error when the registry is off or a
	// collection already runs.
	RegistryGC(ctx context.Context, dryRun bool) (api.GCResult, error)
	// RegistryImport stores the images in the file at path (on this host)
	// under repo when given, calling progress as bytes go in.
	RegistryImport(ctx context.Context, path, repo string, progress func(complete, total int64)) (api.RegistryImportResult, error)
	// RegistryDeleteTag removes tag from repo (the manifest and blobs stay
	// until GC); an error wrapping fs.ErrNotExist when there is no such tag.
	RegistryDeleteTag(ctx context.Context, repo, tag string) error
}

// registryAdminRoutes adds the control socket's registry endpoints.
func (s *Server) registryAdminRoutes(r chi.Router) {
	r.Post("/api/v1/registry/gc", s.handleRegistryGC)
	r.Post("/api/v1/registry/import", s.handleRegistryImport)
	r.Delete("/api/v1/registry/tags", s.handleRegistryDeleteTag)
}

// handleRegistryDeleteTag removes a tag (?repo=R&tag=T).
func (s *Server) handleRegistryDeleteTag(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	repo, tag := q.Get("repo"), q.Get("tag")
	if repo == "" || tag == "" {
		writeJSONError(w, http.StatusBadRequest, "send ?repo=lab/app&tag=v1")
		return
	}
	if err := s.registryDeleteTag(r, repo, tag); err != nil {
		writeJSONError(w, actionErrorCode(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deleted": repo + ":" + tag})
}

// handleRegistryGC is `airgapd registry gc [--dry-run]` (?dry_run=true).
func (s *Server) handleRegistryGC(w http.ResponseWriter, r *http.Request) {
	if s.deps.RegistryAdmin == nil {
		writeJSONError(w, http.StatusNotFound, "no registry here")
		return
	}
	dry, _ := strconv.ParseBool(r.URL.Query().Get("dry_run"))
	res, err := s.registryGC(r, dry)
	if err != nil {
		writeJSONError(w, http.StatusConflict, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// handleRegistryImport is `airgapd registry import F` (?path=ABS&repo=R):
// JSON lines (api.RegistryImportEvent), progress lines, then one line with
// the result or the error. The path is read by the server, so it must be
// absolute.
func (s *Server) handleRegistryImport(w http.ResponseWriter, r *http.Request) {
	if s.deps.RegistryAdmin == nil {
		writeJSONError(w, http.StatusNotFound, "no registry here")
		return
	}
	path := r.URL.Query().Get("path")
	if !filepath.IsAbs(path) {
		writeJSONError(w, http.StatusBadRequest, "path must be an absolute path on the airgapd host")
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	stream := api.NewStreamWriter[struct{}, api.RegistryImportResult](w, nil, func() { rc.Flush() })
	var last time.Time
	progress := func(complete, total int64) {
		// At most 10 lines a second, and always the last.
		if now := time.Now(); now.Sub(last) >= 100*time.Millisecond || complete == total {
			last = now
			stream.Send(api.RegistryImportEvent{Complete: complete, Total: total})
		}
	}
	res, err := s.deps.RegistryAdmin.RegistryImport(r.Context(), path, r.URL.Query().Get("repo"), progress)
	if err != nil {
		stream.Send(api.RegistryImportEvent{Error: err.Error()})
		return
	}
	s.log.Info("registry import done", "path", path)
	stream.Send(api.RegistryImportEvent{Result: &res})
}
