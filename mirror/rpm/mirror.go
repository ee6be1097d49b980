// Package rpm is the RPM format on the content store (package mirror),
// and the mirror service server builds from the `mirror:` section: it
// serves RPM repositories and plain files to the nodes, as reposync +
// nginx do on the seeds' admin host.
//
// The service (New, Run, Reload, Status, Handler, Sync, Index) lives here,
// not in the store: today RPM is its only format, and the store stays a
// library every format uses without a registry of formats. When a second
// format arrives, its package is a service of its own on the same store
// (its own section and routes), or joins this one through an interface
// declared here; the store does not change either way.
//
// A sync (Sync, `airgapd mirror sync`) fetches the upstream's repomd.xml,
// every metadata file it lists and every package primary.xml names that is
// not here yet — in parallel, resumable with Range, each verified against
// its checksum — into a content-addressed pool, builds a tree of hard links
// with the upstream's own repodata byte for byte, and publishes it by
// renaming one symlink. Clients never see repodata naming a package that is
// not there; a sync killed at any point leaves the last published tree
// served and its downloads to be resumed.
//
// Handler serves /repos/NAME/… (those trees; local `path:` repos as they
// are), /repos/NAME.repo (a ready .repo file for the nodes) and /files/…,
// with Range, ETag and directory listings, never outside its folders. The
// mirror never listens itself: web mounts the handler on mirror.listen.
//
// Index (`airgapd mirror index`, and the server's scan of local folders)
// does what createrepo_c --update does for repos with a path: it reads the
// headers of new and changed RPMs in parallel (go-rpmutils), reuses the
// entries of unchanged ones, writes primary, filelists and other, and
// repomd.xml, optionally signed, and publishes the repodata the same
// atomic way; the packages are served from the folder itself.
//
// Bundles (package mirror/bundle) read published trees with Published
// and publish imported repos with PublishImported; imported repos are
// served and reported here like the others, and SetImportProgress puts a
// bundle import in the status.
package rpm

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/internal/humanize"
	"github.com/airgapd/airgapd/mirror"
)

// Deps is what server hands the mirror.
type Deps struct {
	Logger  *slog.Logger
	Metrics prometheus.Registerer // nil: no metrics (one-shot commands)
	DataDir string
	// AdvertiseName and AdvertiseAddresses are how nodes reach this host;
	// the first of them, with Listen's port, goes into .repo baseurls.
	AdvertiseName      string
	AdvertiseAddresses []string
	// Listen is the address mirror.listen is bound to (its real port when
	// the config said 0).
	Listen string
	// Now is the clock schedules and records read; nil means time.Now.
	Now func() time.Time
}

// Mirror is the repository service.
type Mirror struct {
	deps Deps
	log  *slog.Logger
	m    *metrics

	book  *mirror.Book[Config, repoState] // config, state.json records, syncs under way
	sched *scheduler                      // sync_every / sync_at (schedule.go)

	mu sync.Mutex
	// bundleImport is the bundle import under way, or the last one.
	bundleImport *mirror.ImportProgress
}

// New validates cfg and returns a mirror. It opens nothing.
func New(cfg Config, deps Deps) (*Mirror, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.DataDir == "" {
		return nil, fmt.Errorf("mirror: no data_dir")
	}
	m := &Mirror{deps: deps, log: deps.Logger, sched: newScheduler()}
	m.book = mirror.NewBook[Config, repoState](cfg, func(name string) mirror.Store { return mirror.RepoStore(deps.DataDir, name) })
	m.m = newMetrics(m)
	if deps.Metrics != nil {
		if err := m.m.register(deps.Metrics); err != nil {
			return nil, fmt.Errorf("mirror metrics: %w", err)
		}
	}
	return m, nil
}

// Run marks the mirror up until ctx ends, then returns nil. Syncs run when
// asked (Sync) and when a repo's sync_every or sync_at says (schedule.go);
// local repos are indexed at start and re-indexed when their
// folder changes (a scan every index_every); the handler serves whenever
// web calls it.
func (m *Mirror) Run(ctx context.Context) error {
	m.book.SetRunning(true)
	m.log.Info("mirror ready", "repos", len(m.Config().Repos))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.scheduleLoop(ctx)
	}()
	m.scanLoop(ctx)
	wg.Wait()
	m.book.SetRunning(false)
	return nil
}

// Reload applies a new config in place: repos, files and parallel take
// effect for the next request and the next sync. (A new listen address is
// server's business: it rebuilds web on the new socket.)
func (m *Mirror) Reload(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	m.book.SetConfig(cfg)
	m.sched.poke()
	return nil
}

func (m *Mirror) finished(name string, st repoState, res Result) {
	m.book.SetState(name, st)
	m.m.synced(name, res)
}

// Status is the mirror's state for the UI, API and metrics, and RepoStatus
// one repo in it: the api package's types.
type (
	Status     = api.MirrorStatus
	RepoStatus = api.RepoStatus
)

// Status reports every repo: what is published, the last sync and any sync
// under way.
func (m *Mirror) Status() Status {
	cfg := m.Config()
	st := Status{State: m.book.ServiceState(), Files: cfg.Files, BundleImport: m.bundleImportStatus()}
	var pkgs, failed, syncing int
	for _, r := range cfg.Repos {
		rs := RepoStatus{Name: r.Name, Kind: "mirror", BaseURL: r.BaseURL, Path: r.Path}
		if !r.Mirrored() {
			rs.Kind = "local"
		}
		s := m.book.State(r.Name)
		rs.Revision, rs.Packages, rs.Bytes = s.Revision, s.Packages, s.Bytes
		rs.LastSync, rs.LastResult, rs.LastError, rs.Published = s.LastSync, s.LastResult, s.LastError, s.Published
		rs.HeadersRead = s.HeadersRead
		rs.Upstream = s.Upstream
		rs.Schedule, rs.NextSync = cfg.scheduleOf(r).String(), m.nextSync(cfg, r)
		if s.LastResult == "failed" {
			failed++
		}
		if rs.Progress = m.book.Progress(r.Name); rs.Progress != nil {
			syncing++
		}
		pkgs += rs.Packages
		st.Repos = append(st.Repos, rs)
	}
	for _, n := range mirror.ImportedRepos(m.deps.DataDir) {
		if _, ok := cfg.Lookup(n); ok {
			continue
		}
		s := m.book.State(n)
		st.Repos = append(st.Repos, RepoStatus{Name: n, Kind: "imported", Revision: s.Revision, Packages: s.Packages, Bytes: s.Bytes, LastResult: s.LastResult, Published: s.Published})
		pkgs += s.Packages
	}
	st.Summary = humanize.Count(len(st.Repos), "repo") + ", " + humanize.Count(pkgs, "package")
	st.Summary += mirror.RunSummary(syncing, failed) + mirror.ImportSummary(st.BundleImport)
	return st
}

// baseURL is how nodes reach this mirror (mirror.Advertised.BaseURL).
func (m *Mirror) baseURL(r *http.Request) string {
	return mirror.Advertised{Name: m.deps.AdvertiseName, Addresses: m.deps.AdvertiseAddresses, Listen: m.deps.Listen}.BaseURL(r)
}
