package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/airgapd/airgapd/api"
)

// The language indexes' pages (PyPI, Go proxy): the trees' counts, a
// searchable, paged table of what they publish, and syncs started from the
// page as jobs, shown with their progress as the mirror page shows its.

// PyPIBrowser lists the PyPI index's published projects for its page.
type PyPIBrowser interface {
	PyPIProjects(q string, offset, limit int) (api.PackageList, error)
}

// GoProxyBrowser lists the Go module proxy's published modules for its
// page.
type GoProxyBrowser interface {
	GoModules(q string, offset, limit int) (api.PackageList, error)
}

// packagesPerPage bounds the table: thousands of projects are paged.
const packagesPerPage = 100

// packagesView is one page of the table.
type packagesView struct {
	api.PackageList
	Noun, NameHead string // "Projects", "Project"
	Action         string // the page's path, where the search form goes
	Filter         string
	From, To       int    // the rows shown, 1-based
	Prev, Next     string // links to the pages beside, "" at an end
	Error          string
}

// listPackages reads the page ?q=&page= asks for through list.
func listPackages(r *http.Request, base, noun, head string, list func(q string, offset, limit int) (api.PackageList, error)) packagesView {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	page = max(page, 1)
	v := packagesView{Filter: q, Noun: noun, NameHead: head, Action: base}
	l, err := list(q, (page-1)*packagesPerPage, packagesPerPage)
	if err != nil {
		v.Error = err.Error()
	}
	v.PackageList = l
	if len(l.Packages) > 0 {
		v.From = (page-1)*packagesPerPage + 1
		v.To = v.From + len(l.Packages) - 1
	}
	link := func(p int) string {
		u := url.Values{}
		if q != "" {
			u.Set("q", q)
		}
		u.Set("page", strconv.Itoa(p))
		return base + "?" + u.Encode() + "#packages"
	}
	if page > 1 {
		v.Prev = link(page - 1)
	}
	if page*packagesPerPage < l.Total {
		v.Next = link(page + 1)
	}
	return v
}

// pypiPage is the PyPI page's data.
type pypiPage struct {
	api.PyPIStatus
	CanSync bool
	Jobs    []jobView
	Listing *packagesView // nil: no browser here
}

func (s *Server) pypiPage(r *http.Request, st api.PyPIStatus) pypiPage {
	p := pypiPage{PyPIStatus: st, CanSync: s.deps.PyPISyncer != nil, Jobs: s.jobViews(jobPyPISync)}
	if b := s.deps.PyPIBrowser; b != nil {
		v := listPackages(r, "/pypi", "Projects", "Project", b.PyPIProjects)
		p.Listing = &v
	}
	return p
}

// goproxyPage is the Go proxy page's data.
type goproxyPage struct {
	api.GoProxyStatus
	CanSync bool
	Jobs    []jobView
	Listing *packagesView
}

func (s *Server) goproxyPage(r *http.Request, st api.GoProxyStatus) goproxyPage {
	p := goproxyPage{GoProxyStatus: st, CanSync: s.deps.GoProxySyncer != nil, Jobs: s.jobViews(jobGoProxySync)}
	if b := s.deps.GoProxyBrowser; b != nil {
		v := listPackages(r, "/goproxy", "Modules", "Module path", b.GoModules)
		p.Listing = &v
	}
	return p
}

// The job kinds of the two syncs.
const (
	jobPyPISync    = "pypi sync"
	jobGoProxySync = "goproxy sync"
)

var (
	errNoPyPI    = errors.New("no pypi index here")
	errNoGoProxy = errors.New("no goproxy here")
)

// treeSyncJob starts one index's sync as a job of kind: it outlives the
// request, its progress and result shown as a mirror sync's are.
func (s *Server) treeSyncJob(r *http.Request, kind, what string, sync func(ctx context.Context, progress func(api.Progress)) (api.SyncResult, error)) (string, error) {
	setAudit(r, kind, what)
	id, err := s.jobs.start(kind, what, auditWho(r), s.now(), func(ctx context.Context, progress func(any)) (any, string, error) {
		res, err := sync(ctx, func(p api.Progress) { progress(map[string]api.Progress{p.Repo: p}) })
		if err != nil && res.Repo == "" {
			return nil, "", err
		}
		return []api.SyncResult{res}, syncSummary([]api.SyncResult{res}), err
	})
	if err != nil {
		setAuditResult(r, "failed: "+err.Error())
		return "", err
	}
	setAuditResult(r, "started: job "+id)
	return id, nil
}

func (s *Server) pypiSyncJob(r *http.Request) (string, error) {
	if s.deps.PyPISyncer == nil {
		return "", errNoPyPI
	}
	return s.treeSyncJob(r, jobPyPISync, "the pypi index", s.deps.PyPISyncer.SyncPyPI)
}

func (s *Server) goproxySyncJob(r *http.Request) (string, error) {
	if s.deps.GoProxySyncer == nil {
		return "", errNoGoProxy
	}
	return s.treeSyncJob(r, jobGoProxySync, "the go modules", s.deps.GoProxySyncer.SyncGoProxy)
}

// formTreeSync is a page's "Sync now" button: the job starts, the page
// lists it with its progress.
func (s *Server) formTreeSync(page string, start func(*http.Request) (string, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, err := start(r); err != nil {
			s.renderService(w, r, page, actionErrorCode(err), "", fmt.Sprintf("sync not started: %v", err), nil)
			return
		}
		http.Redirect(w, r, "/"+page+"?done=job-started", http.StatusSeeOther)
	}
}
