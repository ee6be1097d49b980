package web

import (
	"context"
	"net/http"
	"path/filepath"

	"github.com/go-chi/chi/v5"

	"github.com/airgapd/airgapd/api"
)

// BundleImporter imports bundles for the control socket, so that
// `airgapd bundle import` run next to a server has the server do the work
// with its live mirror and registry (and the status show the progress).
type BundleImporter interface {
	// ImportBundle verifies and publishes the bundle at path (on this
	// host), calling progress with JSON-encodable snapshots as it goes.
	ImportBundle(ctx context.Context, path string, progress func(any)) (result any, err error)
}

// bundleControlRoutes adds the bundle import endpoint.
func (s *Server) bundleControlRoutes(r chi.Router) {
	r.Post("/api/v1/bundle/import", s.handleBundleImport)
}

// handleBundleImport is `airgapd bundle import PATH` (?path=ABS). It streams
// JSON lines (api.BundleImportEvent): {"progress": …} while the import runs, then {"done": true,
// "result": …} or {"done": true, "error": "…"}. The path is read by the
// server, so it must be absolute. The import stops when the caller goes
// away; run again, it reuses what was verified.
func (s *Server) handleBundleImport(w http.ResponseWriter, r *http.Request) {
	bi := s.deps.BundleImporter
	if bi == nil {
		writeJSONError(w, http.StatusNotFound, "no bundle import here")
		return
	}
	path := r.URL.Query().Get("path")
	if !filepath.IsAbs(path) {
		writeJSONError(w, http.StatusBadRequest, "path must be an absolute path on the airgapd host")
		return
	}
	setAudit(r, "bundle import", path)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	// The importer's values are api.ImportProgress and
	// api.BundleImportResult from server; web relays them as they come.
	stream := api.NewStreamWriter[any, any](w, nil, func() { rc.Flush() })
	res, err := bi.ImportBundle(r.Context(), path, func(p any) { stream.Send(api.Event[any, any]{Progress: &p}) })
	if err != nil {
		setAuditResult(r, "failed: "+err.Error())
		s.log.Warn("bundle import failed", "path", path, "err", err, "by", auditWho(r))
		stream.Send(api.Event[any, any]{Done: true, Error: err.Error()})
		return
	}
	setAuditResult(r, "ok")
	s.log.Info("bundle import done", "path", path, "by", auditWho(r))
	stream.Send(api.Event[any, any]{Done: true, Result: &res})
}
