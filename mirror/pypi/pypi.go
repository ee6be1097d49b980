// Package pypi is the PyPI format on the content store (package mirror)
// and the service server builds from the `pypi:` section: a PEP 503 /
// PEP 691 simple index at /pypi/simple/ on mirror.listen, synced from
// upstream simple indexes for the projects pinned requirements files and
// package specs name, and an upload endpoint (twine's legacy API) for
// in-house packages.
//
// The index is two trees in the store: "index" (what a sync publishes)
// and "local" (uploads). Each holds files/NAME/FILENAME (and
// FILENAME.metadata, PEP 658) and index.json, the project pages' data;
// each is published in one switch (Store.PublishTree), so pip never sees a
// page naming a file that is not there. The pages are made from the two
// trees' index.json when asked.
package pypi

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/internal/lockout"
	"github.com/airgapd/airgapd/mirror"
)

// Tree names: the synced index and the uploads.
const (
	TreeIndex = "index"
	TreeLocal = "local"
)

// Deps is what server hands the index.
type Deps struct {
	Logger  *slog.Logger
	Metrics prometheus.Registerer // nil: no metrics (one-shot commands)
	DataDir string
	Now     func() time.Time
}

// Status is the index's state for the UI, API and metrics.
type (
	Status     = api.PyPIStatus
	TreeStatus = api.PyPITreeStatus
)

// Index is the PyPI service.
type Index struct {
	deps Deps
	log  *slog.Logger
	m    *metrics

	mu       sync.Mutex
	cfg      Config
	auth     *authorizer
	running  bool
	progress *mirror.Progress
	states   map[string]treeState
	pages    map[string]*treeIndex // by tree: the published index.json, by snapshot

	guesses *lockout.Lockout
}

// treeState is state.json of a tree.
type treeState struct {
	mirror.State
	Projects int `json:"projects"`
}

// New validates cfg and returns the index. It opens nothing.
func New(cfg Config, deps Deps) (*Index, error) {
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
		return nil, fmt.Errorf("pypi: no data_dir")
	}
	x := &Index{deps: deps, log: deps.Logger, cfg: cfg, auth: newAuthorizer(cfg), states: map[string]treeState{}, pages: map[string]*treeIndex{}}
	x.guesses = lockout.New(authFailures, authWindow, deps.Now)
	x.m = newMetrics(x)
	if deps.Metrics != nil {
		if err := x.m.register(deps.Metrics); err != nil {
			return nil, fmt.Errorf("pypi metrics: %w", err)
		}
	}
	return x, nil
}

// Run marks the index up until ctx ends. Syncs run when asked (Sync).
func (x *Index) Run(ctx context.Context) error {
	x.mu.Lock()
	x.running = true
	x.mu.Unlock()
	x.log.Info("pypi index ready", "requirements", len(x.config().Requirements), "packages", len(x.config().Packages))
	<-ctx.Done()
	x.mu.Lock()
	x.running = false
	x.mu.Unlock()
	return nil
}

// Reload applies a new config for the next request and sync.
func (x *Index) Reload(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	x.mu.Lock()
	x.cfg, x.auth = cfg, newAuthorizer(cfg)
	x.mu.Unlock()
	return nil
}

func (x *Index) config() Config {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.cfg
}

// Names are the index's trees, for bundles.
func (x *Index) Names() []string { return []string{TreeIndex, TreeLocal} }

// Store is tree name's folder in the content store.
func (x *Index) Store(name string) mirror.Store {
	return mirror.FormatStore(x.deps.DataDir, "pypi", name)
}

func (x *Index) state(name string) treeState {
	x.mu.Lock()
	st, ok := x.states[name]
	x.mu.Unlock()
	if ok {
		return st
	}
	x.Store(name).ReadState(&st)
	x.mu.Lock()
	x.states[name] = st
	x.mu.Unlock()
	return st
}

func (x *Index) setState(name string, st treeState) error {
	if err := x.Store(name).WriteState(st); err != nil {
		return err
	}
	x.mu.Lock()
	x.states[name] = st
	x.mu.Unlock()
	return nil
}

// Status reports both trees and a sync under way.
func (x *Index) Status() Status {
	st := Status{State: "up"}
	x.mu.Lock()
	if !x.running {
		st.State = "down"
	}
	var prog *mirror.Progress
	if x.progress != nil {
		p := *x.progress
		prog = &p
	}
	x.mu.Unlock()
	var projects, files int
	for _, n := range x.Names() {
		s := x.state(n)
		ts := TreeStatus{Name: n, Revision: s.Revision, Projects: s.Projects, Files: s.Packages, Bytes: s.Bytes,
			LastSync: s.LastSync, LastResult: s.LastResult, LastError: s.LastError, Published: s.Published, Upstream: s.Upstream}
		if n == TreeIndex {
			ts.Progress = prog
		}
		projects += s.Projects
		files += s.Packages
		st.Trees = append(st.Trees, ts)
	}
	st.Summary = fmt.Sprintf("%d projects, %d files", projects, files)
	if prog != nil {
		st.Summary += ", syncing"
	}
	if s := x.state(TreeIndex); s.LastResult == "failed" {
		st.Summary += ", last sync failed"
	}
	return st
}

func (x *Index) setProgress(p *mirror.Progress) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.progress = p
}
