package charts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/mirror"
)

// Result is how one repository's sync ended (the api package's type:
// Packages is the chart versions chosen, Fetched those copied into the
// registry, Downloaded the bytes fetched).
type Result = api.SyncResult

// planned is one chart version a sync copies.
type planned struct {
	repo   string // the upstream repository's name
	chart  string // NAME-VERSION
	cv     *ChartVersion
	url    string
	sum    mirror.Checksum
	pool   string // where the verified .tgz is, once fetched
	copied bool   // already in the registry with this digest
	md     Metadata
	oci    *ociChart // set for a chart from an oci:// upstream
}

// check reads the fetched .tgz: a chart whose Chart.yaml is the one the
// index names.
func (p *planned) check() error {
	tgz, err := os.ReadFile(p.pool)
	if err != nil {
		return err
	}
	a, err := ReadArchive(tgz)
	if err != nil {
		return fmt.Errorf("chart %s from %s: %w", p.chart, p.url, err)
	}
	if a.Metadata.Name != p.cv.Name || a.Metadata.Version != p.cv.Version {
		return fmt.Errorf("chart %s from %s: its Chart.yaml says %s %s", p.chart, p.url, a.Metadata.Name, a.Metadata.Version)
	}
	p.md = a.Metadata
	return nil
}

// Sync copies the listed charts of the named upstream repositories (all
// when names is empty) into the registry. Every chosen .tgz is fetched and
// checked against its index digest before anything is pushed: one that
// fails (a tampered archive, a digest missing) fails the whole sync, named,
// and nothing of it reaches the registry.
func (s *Service) Sync(ctx context.Context, names []string, progress func(mirror.Progress)) ([]Result, error) {
	if !s.syncMu.TryLock() {
		return nil, errors.New("a chart sync is running already: wait for it (airgapd status shows it)")
	}
	defer s.syncMu.Unlock()
	cfg := *s.cfg.Load()
	repos, err := selectRepos(cfg, names)
	if err != nil {
		return nil, err
	}
	have, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	results := make([]Result, len(repos))
	plans := make([][]*planned, len(repos))
	trackers := make([]*mirror.Tracker[api.Progress, *api.Progress], len(repos))
	var errs []error
	for i, r := range repos {
		start := s.now()
		results[i] = Result{Repo: r.Name}
		name := r.Name
		trackers[i] = mirror.NewTracker[api.Progress](api.Progress{Repo: r.Name, Phase: "metadata", Started: start}, progress,
			func(p *api.Progress) { s.setProgress(name, p) })
		plans[i], err = s.fetchRepo(ctx, cfg, r, have, trackers[i], &results[i])
		results[i].Duration = time.Since(start).Seconds()
		if err != nil {
			results[i].Error = err.Error()
			errs = append(errs, fmt.Errorf("%s: %w", r.Name, err))
		}
	}
	if len(errs) > 0 {
		for i := range repos {
			if results[i].Error == "" {
				results[i].Error = "nothing pushed: another repository of this sync failed"
			}
			trackers[i].Update(true, func(p *api.Progress) { p.Phase = "failed" })
			s.recordSync(repos[i].Name, results[i], nil)
		}
		err := errors.Join(errs...)
		s.log.Error("chart sync refused: nothing pushed", "err", err)
		return results, err
	}
	for i, r := range repos {
		copied, err := s.pushPlanned(ctx, plans[i], trackers[i])
		results[i].Fetched = len(copied)
		if err == nil && r.Images {
			trackers[i].Update(true, func(p *api.Progress) { p.Phase = "images" })
			var n int
			if n, err = s.copyImages(ctx, plans[i]); err == nil {
				s.log.Info("chart images in the registry", "repo", r.Name, "images", n)
			}
		}
		if err != nil {
			results[i].Error = err.Error()
			errs = append(errs, fmt.Errorf("%s: %w", r.Name, err))
		} else {
			results[i].OK = true
			results[i].UpToDate = len(copied) == 0
		}
		phase := "done"
		if err != nil {
			phase = "failed"
		}
		trackers[i].Update(true, func(p *api.Progress) { p.Phase = phase })
		s.recordSync(r.Name, results[i], copied)
	}
	return results, errors.Join(errs...)
}

func selectRepos(cfg Config, names []string) ([]Repo, error) {
	if len(names) == 0 {
		if len(cfg.Repos) == 0 {
			return nil, errors.New("charts.repos lists no upstream repository to sync")
		}
		return cfg.Repos, nil
	}
	var out []Repo
	for _, n := range names {
		found := false
		for _, r := range cfg.Repos {
			if r.Name == n {
				out, found = append(out, r), true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("no chart repository %q in charts.repos", n)
		}
	}
	return out, nil
}

// fetchRepo reads r's index.yaml, picks the listed versions and fetches
// each .tgz not in the registry yet into r's pool, verified.
func (s *Service) fetchRepo(ctx context.Context, cfg Config, r Repo, have *built, tr *mirror.Tracker[api.Progress, *api.Progress], res *Result) ([]*planned, error) {
	if strings.HasPrefix(r.URL, "oci://") {
		return s.fetchOCI(ctx, r, have, tr, res)
	}
	f, err := newFetcher(s, cfg, r)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	indexURL := strings.TrimSuffix(r.URL, "/") + "/index.yaml"
	b, err := f.Get(ctx, indexURL, maxIndex)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", indexURL, err)
	}
	idx, err := ParseIndex(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", indexURL, err)
	}
	var plan []*planned
	for _, spec := range r.Charts {
		w, err := ParseWanted(spec)
		if err != nil {
			return nil, err
		}
		cvs := idx.pick(w)
		if len(cvs) == 0 {
			return nil, fmt.Errorf("%s lists no version of %s that %q asks for", indexURL, w.Name, spec)
		}
		for _, cv := range cvs {
			p, err := planOne(r, cv, have)
			if err != nil {
				return nil, err
			}
			plan = append(plan, p)
		}
	}
	store := mirror.FormatStore(s.deps.DataDir, "charts", r.Name)
	unlock, err := store.Lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	store.Clean()
	toFetch := 0
	for _, p := range plan {
		if !p.copied {
			toFetch++
		}
	}
	res.Packages = len(plan)
	tr.Update(true, func(pr *api.Progress) { pr.Phase, pr.Packages, pr.ToFetch = "packages", len(plan), toFetch })
	buf := make([]byte, mirror.CopyBuffer)
	for _, p := range plan {
		if p.copied {
			continue
		}
		p.pool = store.Pool(p.sum)
		if !store.Has(p.sum) {
			err := f.Fetch(ctx, p.url, store.Partial(p.sum), p.pool, p.sum, 0, buf, func(n int64) {
				res.Downloaded += n
				tr.Update(false, func(pr *api.Progress) { pr.BytesDone += n; pr.Bytes = max(pr.Bytes, pr.BytesDone) })
			})
			if err != nil {
				if errors.Is(err, mirror.ErrChecksum) {
					return nil, fmt.Errorf("chart %s does not match index.yaml's digest (damaged or tampered with upstream), so the sync is refused: %w", p.chart, err)
				}
				return nil, fmt.Errorf("chart %s from %s: %w", p.chart, p.url, err)
			}
		}
		if err := p.check(); err != nil {
			return nil, err
		}
		tr.Update(false, func(pr *api.Progress) { pr.Fetched++ })
	}
	return plan, nil
}

// planOne is where chart version cv of r comes from and how it is checked.
func planOne(r Repo, cv *ChartVersion, have *built) (*planned, error) {
	p := &planned{repo: r.Name, chart: cv.Name + "-" + cv.Version, cv: cv}
	if len(cv.URLs) == 0 {
		return nil, fmt.Errorf("chart %s has no url in index.yaml", p.chart)
	}
	d := strings.ToLower(strings.TrimPrefix(cv.Digest, "sha256:"))
	p.sum = mirror.Checksum{Type: "sha256", Value: d}
	if err := p.sum.Valid(); err != nil {
		return nil, fmt.Errorf("chart %s has no usable sha256 digest in index.yaml (%q), so it cannot be verified: refusing it", p.chart, cv.Digest)
	}
	u, err := resolveURL(r.URL, cv.URLs[0])
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", p.chart, err)
	}
	p.url = u
	if c, ok := have.files[p.chart+".tgz"]; ok && c.layer == "sha256:"+d {
		p.copied = true
	}
	return p, nil
}

// pushPlanned pushes each fetched and checked chart version into the
// registry as helm push would.
func (s *Service) pushPlanned(ctx context.Context, plan []*planned, tr *mirror.Tracker[api.Progress, *api.Progress]) ([]string, error) {
	tr.Update(true, func(pr *api.Progress) { pr.Phase = "publish" })
	var copied []string
	for _, p := range plan {
		if p.copied {
			continue
		}
		tgz, err := os.ReadFile(p.pool)
		if err != nil {
			return copied, err
		}
		repo := Prefix + p.cv.Name
		if err := s.pushOne(ctx, p, tgz); err != nil {
			return copied, fmt.Errorf("push %s into the registry: %w", p.chart, err)
		}
		s.log.Info("chart copied into the registry", "chart", p.chart, "from", p.url, "repo", repo)
		s.metrics.copied.Inc()
		copied = append(copied, p.chart)
	}
	return copied, nil
}

// pushOne pushes one chart version: an oci:// upstream's manifest as it
// came, a classic repository's .tgz as helm push would.
func (s *Service) pushOne(ctx context.Context, p *planned, tgz []byte) error {
	if p.oci != nil {
		return s.pushOCI(ctx, p, tgz)
	}
	created := p.cv.Created
	if created.IsZero() {
		created = s.now()
	}
	manifest, config, err := chartManifest(p.md, tgz, created)
	if err != nil {
		return err
	}
	_, err = s.deps.Store.PushManifest(ctx, Prefix+p.cv.Name, tagFor(p.cv.Version), "application/vnd.oci.image.manifest.v1+json", manifest, [][]byte{config, tgz})
	return err
}

// newFetcher is the downloads of one sync of r: its CA, and its
// credentials sent to its own host only.
func newFetcher(s *Service, cfg Config, r Repo) (*mirror.Fetcher, error) {
	f, err := mirror.NewFetcher(s.log, cfg.Parallel, func(tr *http.Transport) error {
		if r.SSLCACert == "" {
			return nil
		}
		pem, err := os.ReadFile(r.SSLCACert)
		if err != nil {
			return fmt.Errorf("sslcacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("sslcacert %s holds no PEM certificate; give the repository's CA certificate", r.SSLCACert)
		}
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if r.Username != "" {
		u, _ := url.Parse(r.URL)
		f.Client.Transport = basicAuth{next: f.Client.Transport, host: u.Host, user: r.Username, pass: r.Password}
	}
	return f, nil
}

// basicAuth adds HTTP Basic credentials to requests for one host.
type basicAuth struct {
	next             http.RoundTripper
	host, user, pass string
}

func (b basicAuth) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host == b.host {
		req = req.Clone(req.Context())
		req.SetBasicAuth(b.user, b.pass)
	}
	return b.next.RoundTrip(req)
}

// CloseIdleConnections lets the fetcher's Close reach the transport.
func (b basicAuth) CloseIdleConnections() {
	if c, ok := b.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
