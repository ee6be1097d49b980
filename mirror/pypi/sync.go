package pypi

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/mirror"
)

// SyncResult is how a sync ended.
type SyncResult = api.SyncResult

// ErrBusy: a sync runs already.
var ErrBusy = mirror.ErrBusy

// maxPage bounds a project page (the largest public ones are a few MB).
const maxPage = 64 << 20

// Requirements reads every requirement the config names: its
// requirements files, then its packages.
func (c Config) ReadRequirements() ([]Requirement, error) {
	var out []Requirement
	for _, f := range c.Requirements {
		rs, err := ReadRequirements(f)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	for _, s := range c.Packages {
		r, err := ParseSpec(s)
		if err != nil {
			return nil, fmt.Errorf("packages: %w", err)
		}
		out = append(out, r)
	}
	return out, nil
}

// Sync fetches every project the requirements name from the upstreams,
// takes the files they and the selectors want, verifies each against the
// upstream's sha256 (and the requirements' hashes), and publishes the
// index tree in one switch. Any file that fails refuses the whole sync,
// by name, and publishes nothing. progress (may be nil) gets the sync as
// it goes.
func (x *Index) Sync(ctx context.Context, progress func(mirror.Progress)) (SyncResult, error) {
	start := x.deps.Now()
	res := SyncResult{Repo: TreeIndex}
	st := x.Store(TreeIndex)
	unlock, err := st.Lock()
	if err != nil {
		return res, fmt.Errorf("pypi sync: %w", err)
	}
	defer unlock()
	tr := mirror.NewTracker[mirror.Progress](mirror.Progress{Repo: TreeIndex, Phase: "metadata", Started: start}, progress, func(p *mirror.Progress) { x.setProgress(p) })
	defer x.setProgress(nil)
	run := &syncRun{}
	projects, err := x.collect(ctx, st, tr, run)
	upstream, downloaded := run.upstream, run.downloaded
	state := x.state(TreeIndex)
	state.LastSync, state.Duration, state.Downloaded = start, time.Since(start).Seconds(), downloaded
	res.Downloaded, res.Duration = downloaded, state.Duration
	upToDate := false
	if err == nil {
		tr.Update(true, func(p *mirror.Progress) { p.Phase = "publish" })
		var files []mirror.TreeFile
		if files, err = treeFiles(st, projects); err == nil {
			if upToDate = samePublished(st, files); !upToDate {
				_, err = st.PublishTree(ctx, files, noPlace)
			}
		}
	}
	if err != nil {
		state.LastResult, state.LastError = "failed", err.Error()
		tr.Update(true, func(p *mirror.Progress) { p.Phase = "failed" })
		x.setState(TreeIndex, state)
		x.m.synced(false)
		res.Error = err.Error()
		return res, err
	}
	state.LastResult, state.LastError, state.Upstream = "ok", "", upstream
	if !upToDate || state.Revision == "" {
		state.Revision, state.Published = x.deps.Now().UTC().Format("20060102T150405Z"), x.deps.Now()
	}
	state.Projects, state.Packages, state.Bytes = counts(projects)
	if err := x.setState(TreeIndex, state); err != nil {
		return res, err
	}
	tr.Update(true, func(p *mirror.Progress) { p.Phase = "done" })
	x.m.synced(true)
	res.OK, res.Revision, res.Packages, res.UpToDate = true, state.Revision, state.Packages, upToDate
	res.Fetched = run.fetched
	x.log.Info("pypi sync done", "projects", state.Projects, "files", state.Packages, "downloaded", downloaded)
	return res, nil
}

// syncRun is what a sync did, for its record.
type syncRun struct {
	upstream   string
	downloaded int64
	fetched    int
}

type tracker = mirror.Tracker[mirror.Progress, *mirror.Progress]

// collect reads the pages and fetches the files: the projects to publish.
func (x *Index) collect(ctx context.Context, st mirror.Store, tr *tracker, run *syncRun) (map[string][]File, error) {
	cfg := x.config()
	reqs, err := cfg.ReadRequirements()
	if err != nil {
		return nil, err
	}
	byName := map[string][]Requirement{}
	var names []string
	for _, r := range reqs {
		if byName[r.Name] == nil {
			names = append(names, r.Name)
		}
		byName[r.Name] = append(byName[r.Name], r)
	}
	sort.Strings(names)
	fetchers := map[string]*mirror.Fetcher{}
	for _, u := range cfg.Upstreams {
		f, err := x.fetcher(cfg, u)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		fetchers[u.Name] = f
	}
	sel := newSelector(cfg)
	projects := map[string][]File{}
	var problems []string
	var mu sync.Mutex
	upstreams := map[string]bool{}
	from := map[string]string{} // project → the upstream that gave its page
	mirror.EachParallel(ctx, names, cfg.Parallel, func() func(string) {
		return func(name string) {
			files, up, err := x.page(ctx, fetchers, cfg.Upstreams, name)
			if err == nil {
				files, err = pick(name, byName[name], files, sel)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				problems = append(problems, err.Error())
				return
			}
			projects[name], upstreams[up], from[name] = files, true, up
		}
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, fmt.Errorf("pypi sync refused, nothing published: %s", strings.Join(mirror.FirstN(problems, 10), "; "))
	}
	var ups []string
	for u := range upstreams {
		ups = append(ups, u)
	}
	sort.Strings(ups)
	run.upstream = strings.Join(ups, ", ")
	return projects, x.download(ctx, fetchers, from, st, cfg, projects, tr, run)
}

// page fetches project name's page from the first upstream that has it.
func (x *Index) page(ctx context.Context, fetchers map[string]*mirror.Fetcher, ups []Upstream, name string) ([]File, string, error) {
	var errs []string
	for _, u := range ups {
		base, err := url.Parse(strings.TrimSuffix(u.URL, "/") + "/" + name + "/")
		if err != nil {
			return nil, "", err
		}
		files, err := getPage(ctx, fetchers[u.Name], u, base)
		if err == nil {
			return files, u.Name, nil
		}
		errs = append(errs, fmt.Sprintf("%s: %v", u.Name, err))
	}
	return nil, "", fmt.Errorf("%s: no upstream gave its page (%s)", name, strings.Join(errs, "; "))
}

func getPage(ctx context.Context, f *mirror.Fetcher, u Upstream, base *url.URL) ([]File, error) {
	var last error
	for attempt := range 3 {
		if attempt > 0 {
			if err := mirror.Sleep(ctx, time.Duration(attempt)*500*time.Millisecond); err != nil {
				return nil, err
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.String(), nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", acceptHeader)
		if u.Username != "" {
			req.SetBasicAuth(u.Username, u.Password)
		}
		resp, err := f.Client.Do(req)
		if err != nil {
			last = err
			continue
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxPage))
		resp.Body.Close()
		switch {
		case err != nil:
			last = err
			continue
		case resp.StatusCode == http.StatusNotFound:
			return nil, fmt.Errorf("GET %s: %s: %w", base, resp.Status, os.ErrNotExist)
		case resp.StatusCode >= 400 && resp.StatusCode < 500:
			return nil, fmt.Errorf("GET %s: %s", base, resp.Status)
		case resp.StatusCode != http.StatusOK:
			last = fmt.Errorf("GET %s: %s", base, resp.Status)
			continue
		}
		return parsePage(resp.Request.URL, resp.Header.Get("Content-Type"), body)
	}
	return nil, last
}

// pick keeps the files of name that a requirement and the selector want.
func pick(name string, reqs []Requirement, files []File, sel selector) ([]File, error) {
	var out []File
	seen := map[string]bool{}
	for _, r := range reqs {
		n := 0
		for _, f := range files {
			d, ok := parseFilename(name, f.Filename)
			if !ok || !r.Matches(d.version) || !sel.wants(d) || !r.HashOK(f.SHA256) {
				continue
			}
			if f.SHA256 == "" {
				return nil, fmt.Errorf("%s (%s): the upstream gives no sha256 for %s, so it cannot be verified", name, r.Source, f.Filename)
			}
			n++
			if !seen[f.Filename] {
				seen[f.Filename] = true
				f.Version = d.version
				out = append(out, f)
			}
		}
		if n == 0 {
			what := "platforms, python_versions and sdists"
			if len(r.Hashes) > 0 {
				what += " and the hashes"
			}
			return nil, fmt.Errorf("%s%s (%s): none of the upstream's %d files fits %s", name, r.Spec, r.Source, len(files), what)
		}
	}
	return out, nil
}

// fetcher is the sync's downloads from upstream u, with its proxy and CA.
func (x *Index) fetcher(cfg Config, u Upstream) (*mirror.Fetcher, error) {
	return mirror.NewFetcher(x.log, cfg.Parallel, func(tr *http.Transport) error {
		if u.Proxy != "" {
			pu, err := url.Parse(u.Proxy)
			if err != nil {
				return fmt.Errorf("upstream %s proxy: %w", u.Name, err)
			}
			tr.Proxy = http.ProxyURL(pu)
		}
		if u.SSLCACert != "" {
			pem, err := os.ReadFile(u.SSLCACert)
			if err != nil {
				return fmt.Errorf("upstream %s sslcacert: %w", u.Name, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return fmt.Errorf("upstream %s sslcacert %s: no PEM certificate in it", u.Name, u.SSLCACert)
			}
			tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		return nil
	})
}

// download fetches every file (and metadata file) the pool lacks, each
// verified against its sha256; any failure is the sync's, by file name.
func (x *Index) download(ctx context.Context, fetchers map[string]*mirror.Fetcher, from map[string]string, st mirror.Store, cfg Config, projects map[string][]File, tr *tracker, run *syncRun) error {
	type job struct {
		name, url string
		sum       mirror.Checksum
		size      int64
		f         *mirror.Fetcher
	}
	ups := map[string]Upstream{}
	for _, u := range cfg.Upstreams {
		ups[u.Name] = u
	}
	var jobs []job
	var total, files int
	var bytes int64
	for project, fs := range projects {
		up := ups[from[project]]
		f := fetchers[up.Name]
		for _, fl := range fs {
			files++
			sum := mirror.Checksum{Type: "sha256", Value: fl.SHA256}
			if !st.Has(sum) {
				jobs = append(jobs, job{fl.Filename, withAuth(up, fl.URL), sum, fl.Size, f})
				bytes += fl.Size
			}
			if fl.MetadataSHA256 != "" {
				msum := mirror.Checksum{Type: "sha256", Value: fl.MetadataSHA256}
				if !st.Has(msum) {
					jobs = append(jobs, job{fl.Filename + ".metadata", withAuth(up, fl.URL+".metadata"), msum, 0, f})
				}
			}
		}
	}
	total = len(jobs)
	tr.Update(true, func(p *mirror.Progress) { p.Phase, p.Packages, p.ToFetch, p.Bytes = "packages", files, total, bytes })
	var mu sync.Mutex
	var problems []string
	mirror.EachParallel(ctx, jobs, cfg.Parallel, func() func(job) {
		buf := make([]byte, mirror.CopyBuffer)
		return func(j job) {
			err := j.sum.Valid()
			if err == nil {
				err = j.f.Fetch(ctx, j.url, st.Partial(j.sum), st.Pool(j.sum), j.sum, j.size, buf, func(n int64) {
					mu.Lock()
					run.downloaded += n
					mu.Unlock()
					tr.Update(false, func(p *mirror.Progress) {
						p.BytesDone += n
						if j.size <= 0 { // a PEP 503 page gives no size: count it as it comes
							p.Bytes += n
						}
					})
				})
			}
			if err != nil {
				if errors.Is(err, mirror.ErrChecksum) {
					err = fmt.Errorf("damaged: %w", err)
				}
				mu.Lock()
				problems = append(problems, fmt.Sprintf("%s: %v", j.name, err))
				mu.Unlock()
				x.m.failed()
				return
			}
			mu.Lock()
			run.fetched++
			mu.Unlock()
			tr.Update(false, func(p *mirror.Progress) { p.Fetched++ })
		}
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("pypi sync refused, nothing published: %s", strings.Join(mirror.FirstN(problems, 10), "; "))
	}
	x.m.addDownloaded(run.downloaded)
	return nil
}

// withAuth puts upstream up's credentials in a file URL on its own host
// (Go's client sends them as Basic auth); files elsewhere get none.
func withAuth(up Upstream, raw string) string {
	u, err := url.Parse(raw)
	if err != nil || up.Username == "" {
		return raw
	}
	if b, err := url.Parse(up.URL); err == nil && b.Host == u.Host {
		u.User = url.UserPassword(up.Username, up.Password)
		return u.String()
	}
	return raw
}

// samePublished reports whether the published tree is files already
// (the same index.json, which names every other file by its sha256).
func samePublished(st mirror.Store, files []mirror.TreeFile) bool {
	cur, err := st.Current()
	if err != nil || cur == "" {
		return false
	}
	b, err := os.ReadFile(filepath.Join(cur, indexFile))
	if err != nil {
		return false
	}
	h := sha256.Sum256(b)
	for _, f := range files {
		if f.Path == indexFile {
			return f.Sum.Value == hex.EncodeToString(h[:])
		}
	}
	return false
}
