package web

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/go-chi/chi/v5"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/internal/humanize"
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

// mirrorSyncJob starts a sync of names as a job (the UI's and the API's
// ?job=true): it outlives the request.
func (s *Server) mirrorSyncJob(r *http.Request, names []string) (string, error) {
	ms := s.deps.MirrorSyncer
	if ms == nil {
		return "", errNoMirror
	}
	what := "every mirrored repo"
	if len(names) > 0 {
		what = strings.Join(names, ", ")
	}
	setAudit(r, "mirror sync", what)
	if err := s.knownRepos(names); err != nil {
		setAuditResult(r, "refused: "+err.Error())
		return "", err
	}
	id, err := s.jobs.start("mirror sync", what, auditWho(r), s.now(), func(ctx context.Context, progress func(any)) (any, string, error) {
		var mu sync.Mutex
		repos := map[string]api.Progress{}
		res, err := ms.SyncMirror(ctx, names, func(p api.Progress) {
			mu.Lock()
			repos[p.Repo] = p
			snap := maps.Clone(repos)
			mu.Unlock()
			progress(snap)
		})
		if err != nil && len(res) == 0 {
			return nil, "", err
		}
		return res, syncSummary(res), err
	})
	if err != nil {
		setAuditResult(r, "failed: "+err.Error())
		return "", err
	}
	setAuditResult(r, "started: job "+id)
	return id, nil
}

// syncSummary is one line per run: "upstream synced: 1 packages, …".
func syncSummary(res []api.SyncResult) string {
	var parts []string
	for _, x := range res {
		switch {
		case !x.OK:
			parts = append(parts, x.Repo+" failed")
		case x.Indexed:
			parts = append(parts, fmt.Sprintf("%s indexed (%s)", x.Repo, humanize.Count(x.Packages, "package")))
		case x.UpToDate:
			parts = append(parts, fmt.Sprintf("%s up to date (%s)", x.Repo, humanize.Count(x.Packages, "package")))
		default:
			parts = append(parts, fmt.Sprintf("%s synced: %s, %d fetched (%s)", x.Repo, humanize.Count(x.Packages, "package"), x.Fetched, humanize.Bytes(x.Downloaded)))
		}
	}
	return strings.Join(parts, "; ")
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
	if wantJob(r) {
		s.answerJob(w, r, func() (string, error) { return s.mirrorSyncJob(r, names) })
		return
	}
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

// knownRepos refuses at once a name the mirror's status does not list, so
// a typo is answered on the form rather than by a failed job.
func (s *Server) knownRepos(names []string) error {
	sv := s.status().Service(api.ServiceMirror)
	if sv.Mirror == nil {
		return nil // the syncer says
	}
	var unknown []string
	for _, n := range names {
		if !slices.ContainsFunc(sv.Mirror.Repos, func(r api.RepoStatus) bool { return r.Name == n }) {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("no such repo %s in mirror.repos: the mirror page lists them", strings.Join(unknown, ", "))
	}
	return nil
}
