package web

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/airgapd/airgapd/api"
)

// jobRoutes adds GET /api/v1/jobs[/{id}] and DELETE /api/v1/jobs/{id}
// (cancel).
func (s *Server) jobRoutes(r chi.Router) {
	r.Get("/api/v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"jobs": s.jobs.list(r.URL.Query().Get("kind"))})
	})
	r.Get("/api/v1/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		j, ok := s.jobs.get(chi.URLParam(r, "id"))
		if !ok {
			writeJSONError(w, http.StatusNotFound, "no such job: GET /api/v1/jobs lists them (the last finished ones are kept)")
			return
		}
		writeJSON(w, http.StatusOK, j)
	})
	r.Delete("/api/v1/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		j, err := s.cancelJob(r, chi.URLParam(r, "id"))
		if err != nil {
			writeJSONError(w, http.StatusNotFound, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, j)
	})
}

func (s *Server) cancelJob(r *http.Request, id string) (Job, error) {
	setAudit(r, "job canceled", "job "+id)
	j, ok := s.jobs.cancel(id)
	if !ok {
		setAuditResult(r, "refused: no such running job")
		return j, fmt.Errorf("no running job %s: GET /api/v1/jobs lists them", id)
	}
	setAuditResult(r, "ok: "+j.Kind+" "+j.What)
	return j, nil
}

// formCancelJob is the cancel button of a job on its page.
func (s *Server) formCancelJob(w http.ResponseWriter, r *http.Request) {
	if _, err := s.cancelJob(r, chi.URLParam(r, "id")); err != nil {
		s.renderService(w, r, "mirror", http.StatusNotFound, "", err.Error(), nil)
		return
	}
	back := "/mirror"
	if b := r.PostFormValue("back"); b == "/pypi" || b == "/goproxy" { // the page the job is listed on
		back = b
	}
	http.Redirect(w, r, back+"?done=canceled", http.StatusSeeOther)
}

// wantJob: the caller asked for a job id instead of a stream
// (?job=true, or Prefer: respond-async).
func wantJob(r *http.Request) bool {
	v := r.URL.Query().Get("job")
	return v == "true" || v == "1" || strings.Contains(r.Header.Get("Prefer"), "respond-async")
}

// answerJob starts a job and answers 202 with its id, or the reason it
// could not start.
func (s *Server) answerJob(w http.ResponseWriter, r *http.Request, start func() (string, error)) {
	id, err := start()
	if err != nil {
		writeJSONError(w, actionErrorCode(err), err.Error())
		return
	}
	w.Header().Set("Location", "/api/v1/jobs/"+id)
	writeJSON(w, http.StatusAccepted, map[string]string{"job": id, "url": "/api/v1/jobs/" + id})
}

// jobView is a job as its page shows it: a line per repo in progress.
type jobView struct {
	Job
	Lines []string
	// Results is a finished sync's per-repo table.
	Results []api.SyncResult
}

func (s *Server) jobViews(kind string) []jobView {
	var out []jobView
	for _, j := range s.jobs.list(kind) {
		v := jobView{Job: j}
		switch p := j.Progress.(type) {
		case map[string]api.Progress:
			names := make([]string, 0, len(p))
			for n := range p {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				v.Lines = append(v.Lines, progressLine(p[n]))
			}
		case api.ImportProgress:
			v.Lines = append(v.Lines, importLine(p))
		}
		if res, ok := j.Result.([]api.SyncResult); ok {
			v.Results = res
		}
		out = append(out, v)
	}
	return out
}

// progressLine is one repo's progress: "upstream: packages 3/10 · 1.2 MiB of 4.0 MiB (30%)".
func progressLine(p api.Progress) string {
	var parts []string
	parts = append(parts, p.Phase)
	if p.ToFetch > 0 {
		parts = append(parts, fmt.Sprintf("%d/%d packages", p.Fetched, p.ToFetch))
	}
	if p.Bytes > 0 {
		parts = append(parts, fmt.Sprintf("%s of %s (%s)", bytesOf(p.BytesDone), bytesOf(p.Bytes), percentOf(p.BytesDone, p.Bytes)))
	}
	return p.Repo + ": " + strings.Join(parts, " · ")
}

func importLine(p api.ImportProgress) string {
	s := p.Phase
	if p.Item != "" {
		s += " " + p.Item
	}
	if p.Bytes > 0 {
		s += fmt.Sprintf(" · %s of %s (%s)", bytesOf(p.BytesDone), bytesOf(p.Bytes), percentOf(p.BytesDone, p.Bytes))
	}
	if p.Blobs > 0 {
		s += fmt.Sprintf(" · %d/%d blobs", p.BlobsDone, p.Blobs)
	}
	return s
}
