package web

import (
	"context"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/airgapd/airgapd/api"
)

// ChartsSyncer runs the Helm chart service's jobs for the control socket,
// so that `airgapd charts sync` and `airgapd charts images` run next to a
// server have the server do the work.
type ChartsSyncer interface {
	// SyncCharts syncs the named upstream chart repositories (every one
	// when names is empty), calling progress as it goes.
	SyncCharts(ctx context.Context, names []string, progress func(api.Progress)) ([]api.SyncResult, error)
	// ChartImages lists the images chart NAME-VERSION references.
	ChartImages(ctx context.Context, chart string) ([]string, error)
}

// chartsControlRoutes adds the chart service's API.
func (s *Server) chartsControlRoutes(r chi.Router) {
	r.Post("/api/v1/charts/sync", s.handleChartsSync)
	r.Get("/api/v1/charts/images", s.handleChartImages)
}

// handleChartsSync streams a chart sync as JSON lines (api.SyncEvent),
// as handleMirrorSync does a mirror sync.
func (s *Server) handleChartsSync(w http.ResponseWriter, r *http.Request) {
	if s.deps.ChartsSyncer == nil {
		writeJSONError(w, http.StatusNotFound, "no chart service here")
		return
	}
	names := r.URL.Query()["repo"]
	what := "every chart repository"
	if len(names) > 0 {
		what = strings.Join(names, ", ")
	}
	setAudit(r, "charts sync", what)
	rc := http.NewResponseController(w)
	stream := api.NewStreamWriter[api.Progress, api.SyncResult](w, func() {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
	}, func() { rc.Flush() })
	res, err := s.deps.ChartsSyncer.SyncCharts(r.Context(), names, func(p api.Progress) {
		stream.Send(api.SyncEvent{Progress: &p})
	})
	s.log.Info("charts sync through the API", "repos", names, "err", err, "by", auditWho(r))
	if err != nil {
		setAuditResult(r, "failed: "+err.Error())
	}
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

func (s *Server) handleChartImages(w http.ResponseWriter, r *http.Request) {
	if s.deps.ChartsSyncer == nil {
		writeJSONError(w, http.StatusNotFound, "no chart service here")
		return
	}
	chart := r.URL.Query().Get("chart")
	imgs, err := s.deps.ChartsSyncer.ChartImages(r.Context(), chart)
	if err != nil {
		writeJSONError(w, http.StatusNotFound, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, api.ChartImages{Chart: chart, Images: imgs})
}
