// Package charts is airgapd's Helm chart service. Charts live once, as OCI
// artifacts in the registry's charts/ namespace (what `helm push
// chart.tgz oci://HOST/charts` stores), and this package serves them also
// as a classic chart repository on mirror.listen — /charts/index.yaml and
// /charts/NAME-VERSION.tgz, for `helm repo add` — built from the registry's
// content and rebuilt when it changes. Sync copies charts from upstream
// classic repositories into the registry, each .tgz verified against the
// upstream index's digest before any is pushed; Images lists the images a
// chart names.
//
// The registry is reached through ChartStore, an interface this package
// declares and server satisfies; charts never imports registry.
package charts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/mirror"
)

// Status is the service's state (the api package defines it).
type Status = api.ChartsStatus

// Deps is what server hands the service.
type Deps struct {
	Logger  *slog.Logger
	Metrics prometheus.Registerer
	// DataDir holds the upstream repositories' pools and sync records
	// (data_dir/mirror/charts/NAME).
	DataDir string
	// Store is the registry the charts live in.
	Store ChartStore
	// Images copies the images of a repo with images: true (nil: none
	// can be, and such a sync fails).
	Images ImageCopier
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service is the chart service.
type Service struct {
	deps    Deps
	log     *slog.Logger
	now     func() time.Time
	cfg     atomic.Pointer[Config]
	view    view
	syncMu  sync.Mutex
	stateMu sync.Mutex
	live    map[string]*api.Progress // a sync under way, by repo
	metrics metrics
}

type metrics struct {
	builds   prometheus.Counter
	versions prometheus.Gauge
	copied   prometheus.Counter
	images   prometheus.Counter
	syncs    *prometheus.CounterVec
}

// record is what data_dir/mirror/charts/NAME/state.json keeps of a repo's
// last sync.
type record struct {
	mirror.State
	Copied []string `json:"copied,omitempty"`
}

// New validates cfg and prepares the service; it opens nothing.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil {
		return nil, errors.New("charts: no registry to keep the charts in (a bug)")
	}
	if deps.DataDir == "" {
		return nil, errors.New("charts: no data_dir")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	s := &Service{deps: deps, log: deps.Logger, now: deps.Now, live: map[string]*api.Progress{}}
	s.cfg.Store(&cfg)
	s.metrics = metrics{
		builds:   prometheus.NewCounter(prometheus.CounterOpts{Name: "airgapd_charts_index_builds_total", Help: "Times /charts/index.yaml was built anew from the registry's charts/ namespace."}),
		versions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "airgapd_charts_versions", Help: "Chart versions /charts/index.yaml lists."}),
		copied:   prometheus.NewCounter(prometheus.CounterOpts{Name: "airgapd_charts_copied_total", Help: "Chart versions syncs copied from upstream repositories into the registry."}),
		images:   prometheus.NewCounter(prometheus.CounterOpts{Name: "airgapd_charts_images_copied_total", Help: "Images of charts (repos with images: true) syncs copied into the registry."}),
		syncs:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "airgapd_charts_syncs_total", Help: "Chart syncs by upstream repository and result (ok, failed)."}, []string{"repo", "result"}),
	}
	if deps.Metrics != nil {
		for _, c := range []prometheus.Collector{s.metrics.builds, s.metrics.versions, s.metrics.copied, s.metrics.images, s.metrics.syncs} {
			if err := deps.Metrics.Register(c); err != nil {
				return nil, fmt.Errorf("charts metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Run builds the view once (so the status and metrics have numbers) and
// waits for ctx to end; syncs run when asked.
func (s *Service) Run(ctx context.Context) error {
	if _, err := s.current(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("could not build the chart index yet; it is built when first asked for", "err", err)
	}
	<-ctx.Done()
	return nil
}

// Reload takes a new section in place.
func (s *Service) Reload(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	s.cfg.Store(&cfg)
	return nil
}

// Status reports what the view lists and each repo's last sync.
func (s *Service) Status() Status {
	st := Status{State: "ok", Repos: []api.ChartRepoState{}}
	b := s.view.cur.Load() // never view.mu: see view.cur
	st.Entries = []api.ChartEntry{}
	if b != nil {
		st.Entries = b.entries()
		st.Charts, st.Versions, st.Bytes = len(st.Entries), b.versions, b.bytes
	}
	for _, r := range s.cfg.Load().Repos {
		var rec record
		mirror.FormatStore(s.deps.DataDir, "charts", r.Name).ReadState(&rec)
		rs := api.ChartRepoState{Name: r.Name, URL: r.URL, Charts: r.Charts, LastSync: rec.LastSync,
			LastResult: rec.LastResult, LastError: rec.LastError, Copied: rec.Copied}
		s.stateMu.Lock()
		if p := s.live[r.Name]; p != nil {
			cp := *p
			rs.Progress = &cp
		}
		s.stateMu.Unlock()
		if rs.LastResult == "failed" {
			st.State = "degraded"
		}
		st.Repos = append(st.Repos, rs)
	}
	sort.Slice(st.Repos, func(i, j int) bool { return st.Repos[i].Name < st.Repos[j].Name })
	st.Summary = fmt.Sprintf("%d charts, %d versions in /charts/index.yaml, %d upstream repos", st.Charts, st.Versions, len(st.Repos))
	return st
}

func (s *Service) setProgress(repo string, p *api.Progress) {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if p.Phase == "done" || p.Phase == "failed" {
		delete(s.live, repo)
		return
	}
	cp := *p
	s.live[repo] = &cp
}

func (s *Service) recordSync(repo string, res Result, copied []string) {
	result := "ok"
	if !res.OK {
		result = "failed"
	}
	s.metrics.syncs.WithLabelValues(repo, result).Inc()
	rec := record{State: mirror.State{LastSync: s.now().Add(-time.Duration(res.Duration * float64(time.Second))), LastResult: result,
		LastError: res.Error, Duration: res.Duration, Downloaded: res.Downloaded, Packages: res.Packages}, Copied: copied}
	if err := mirror.FormatStore(s.deps.DataDir, "charts", repo).WriteState(rec); err != nil {
		s.log.Warn("could not record the chart sync", "repo", repo, "err", err)
	}
}
