package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airgapd/airgapd/api"
)

// fakeIndex is a language index of n packages, syncing when asked (the
// sync waits on release, so the job is seen running).
type fakeIndex struct {
	n       int
	release chan struct{}
}

func (f fakeIndex) list(q string, offset, limit int) (api.PackageList, error) {
	var all []api.PackageEntry
	for i := range f.n {
		all = append(all, api.PackageEntry{Name: fmt.Sprintf("pkg-%04d", i), Versions: []string{"1.0", "1.1"}, Files: 2, Bytes: 3072})
	}
	return api.PagePackages(all, q, offset, limit), nil
}
func (f fakeIndex) PyPIProjects(q string, o, l int) (api.PackageList, error) { return f.list(q, o, l) }
func (f fakeIndex) GoModules(q string, o, l int) (api.PackageList, error)    { return f.list(q, o, l) }
func (f fakeIndex) sync(ctx context.Context, progress func(api.Progress)) (api.SyncResult, error) {
	progress(api.Progress{Repo: "index", Phase: "packages", Fetched: 1, ToFetch: 4})
	select {
	case <-f.release:
	case <-ctx.Done():
		return api.SyncResult{}, ctx.Err()
	}
	return api.SyncResult{Repo: "index", OK: true, Packages: 4, Fetched: 4, Downloaded: 4096}, nil
}
func (f fakeIndex) SyncPyPI(ctx context.Context, p func(api.Progress)) (api.SyncResult, error) {
	return f.sync(ctx, p)
}
func (f fakeIndex) SyncGoProxy(ctx context.Context, p func(api.Progress)) (api.SyncResult, error) {
	return f.sync(ctx, p)
}

// TestPackagePages: the PyPI and Go proxy pages list what is published,
// a page of it at a time, searchable; Sync now starts a job the page shows
// with its progress, then its result.
func TestPackagePages(t *testing.T) {
	for _, page := range []string{"pypi", "goproxy"} {
		for _, c := range []struct {
			name, query string
			want, not   []string
		}{
			{"first page", "", []string{"pkg-0000", "1.0, 1.1", "3.0 KiB", "250, 1–100 shown", "page=2#packages"}, []string{"pkg-0100", "← previous"}},
			{"last page", "?page=3", []string{"pkg-0249", "201–250 shown", "page=2#packages"}, []string{"pkg-0199", "next →"}},
			{"search", "?q=PKG-012", []string{"pkg-0120", "pkg-0129", "10 match “PKG-012”"}, []string{"pkg-0130", "next →"}},
			{"no match", "?q=nope", []string{"nothing published matches “nope”"}, nil},
		} {
			t.Run(page+" "+c.name, func(t *testing.T) {
				body := renderPackagePage(t, page, c.query, nil)
				for _, w := range c.want {
					if !strings.Contains(body, w) {
						t.Errorf("%s%s lacks %q", page, c.query, w)
					}
				}
				for _, w := range c.not {
					if strings.Contains(body, w) {
						t.Errorf("%s%s has %q", page, c.query, w)
					}
				}
			})
		}
		t.Run(page+" sync job", func(t *testing.T) {
			f := fakeIndex{n: 1, release: make(chan struct{})}
			s := packageServer(t, f, NewJobs(t.Context()))
			start := map[string]func(*http.Request) (string, error){"pypi": s.pypiSyncJob, "goproxy": s.goproxySyncJob}[page]
			w := httptest.NewRecorder()
			s.formTreeSync(page, start)(w, httptest.NewRequest("POST", "/"+page+"/sync", nil))
			if loc := w.Header().Get("Location"); w.Code != http.StatusSeeOther || loc != "/"+page+"?done=job-started" {
				t.Fatalf("Sync now: %d to %q: %s", w.Code, loc, w.Body)
			}
			waitJob(t, s, func(j Job) bool { return j.Progress != nil })
			body := renderWith(t, s, page, "")
			for _, want := range []string{"index: packages · 1/4 packages", `name="back" value="/` + page + `"`, "running"} {
				if !strings.Contains(body, want) {
					t.Errorf("%s page while syncing lacks %q", page, want)
				}
			}
			close(f.release)
			waitJob(t, s, func(j Job) bool { return j.State == "ok" })
			body = renderWith(t, s, page, "")
			if want := "4 packages, 4 fetched, 4.0 KiB"; !strings.Contains(body, want) {
				t.Errorf("%s page after the sync lacks %q", page, want)
			}
		})
	}
}

// packageServer is a web server whose PyPI and Go proxy run, listing and
// syncing through f.
func packageServer(t *testing.T, f fakeIndex, jobs *Jobs) *Server {
	t.Helper()
	status := map[string]any{"services": []map[string]any{
		{"name": "pypi", "enabled": true, "state": "up", "detail": map[string]any{"trees": []any{map[string]any{"name": "index"}}}},
		{"name": "goproxy", "enabled": true, "state": "up", "detail": map[string]any{}},
	}}
	s, err := New(DefaultConfig(), Deps{Instance: fakeInstance{status: func() any { return status }}, Control: listen(t, "unix", filepath.Join(t.TempDir(), "api.sock")),
		PyPIBrowser: f, GoProxyBrowser: f, PyPISyncer: f, GoProxySyncer: f, Jobs: jobs})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func renderWith(t *testing.T, s *Server, page, query string) string {
	t.Helper()
	w := httptest.NewRecorder()
	s.renderService(w, httptest.NewRequest("GET", "/"+page+query, nil), page, 200, "", "", nil)
	return w.Body.String()
}

func renderPackagePage(t *testing.T, page, query string, jobs *Jobs) string {
	t.Helper()
	return renderWith(t, packageServer(t, fakeIndex{n: 250}, jobs), page, query)
}

// waitJob polls the one job until ok says it has come (5 s at most).
func waitJob(t *testing.T, s *Server, ok func(Job) bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if js := s.jobs.list(""); len(js) == 1 && ok(js[0]) {
			return
		}
	}
	t.Fatalf("the job did not get there: %+v", s.jobs.list(""))
}
