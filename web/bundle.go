package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"

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
	if wantJob(r) {
		s.answerJob(w, r, func() (string, error) { return s.bundleImportJob(r, path) })
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

// bundleImportJob starts an import of the bundle at path as a job.
func (s *Server) bundleImportJob(r *http.Request, path string) (string, error) {
	bi := s.deps.BundleImporter
	if bi == nil {
		return "", errNoBundle
	}
	if !filepath.IsAbs(path) {
		return "", errBundlePath
	}
	setAudit(r, "bundle import", path)
	id, err := s.jobs.start("bundle import", path, auditWho(r), s.now(), func(ctx context.Context, progress func(any)) (any, string, error) {
		res, err := bi.ImportBundle(ctx, path, progress)
		return res, "", err
	})
	if err != nil {
		setAuditResult(r, "failed: "+err.Error())
		return "", err
	}
	setAuditResult(r, "started: job "+id)
	return id, nil
}

var (
	errNoBundle   = fmt.Errorf("no bundle import here: %w", errNoMirror)
	errBundlePath = errors.New("path must be an absolute path on the airgapd host")
)

// formBundleImport is the mirror page's "Import a bundle" form.
func (s *Server) formBundleImport(w http.ResponseWriter, r *http.Request) {
	if _, err := s.bundleImportJob(r, strings.TrimSpace(r.PostFormValue("path"))); err != nil {
		code := actionErrorCode(err)
		if errors.Is(err, errBundlePath) {
			code = http.StatusUnprocessableEntity
		}
		s.renderService(w, r, "mirror", code, "", err.Error(), nil)
		return
	}
	http.Redirect(w, r, "/mirror?done=job-started", http.StatusSeeOther)
}
