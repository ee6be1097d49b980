// Package goproxy is the Go module format on the content store (package
// mirror), and the service server builds from the `goproxy:` section: a
// GOPROXY for the nodes' go command, filled from an upstream GOPROXY, and
// a proxy of the checksum database, so `go build` and GOSUMDB checks work
// behind the gap.
//
// A sync (Sync, `airgapd goproxy sync`) collects the module versions to
// mirror — modules: PATH@VERSION, and for each go_mod: file its
// requirements and every line of the go.sum beside it (the complete build
// list `go mod tidy` keeps there) — asks the checksum database for each
// (golang.org/x/mod/sumdb's client, which verifies the signed tree and
// the proofs) and compares its hashes with go.sum's, fetches each
// version's .info, .mod and .zip, checks the go.mod's and the zip's h1
// hashes (golang.org/x/mod/zip and dirhash) and publishes one tree in the
// cache/download layout with every database answer beside it. A mismatch
// anywhere refuses the whole sync, naming the module; nothing is published.
//
// Handler serves the GOPROXY protocol under /goproxy/ (PATH/@v/list,
// .info, .mod, .zip and PATH/@latest, paths case-encoded; 404 for what is
// not mirrored) and the checksum database proxy under /goproxy/sumdb/NAME/
// (supported, lookup/…, tile/…): from the tree, else from a cache, else
// asked of the database while it answers.
package goproxy

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/mirror"
)

// treeName is the one tree a proxy keeps in the store
// (data_dir/mirror/goproxy/modules).
const treeName = "modules"

// Deps is what server hands the proxy.
type Deps struct {
	Logger  *slog.Logger
	Metrics prometheus.Registerer // nil: no metrics (one-shot commands)
	DataDir string
	// Now is the clock records read; nil means time.Now.
	Now func() time.Time
}

// Proxy is the Go module proxy service.
type Proxy struct {
	deps Deps
	log  *slog.Logger
	m    *metrics

	mu        sync.Mutex
	cfg       Config
	st        *treeState // read lazily from state.json
	progress  *mirror.Progress
	running   bool
	dbFetch   *mirror.Fetcher
	dbBase    string       // where the last sync found the database (sumdbBase)
	cat       *catalog     // the published modules, for the UI (Modules)
	sumdbDown atomic.Int64 // unix nanos until which the database is not asked
}

// New validates cfg and returns a proxy. It opens nothing.
func New(cfg Config, deps Deps) (*Proxy, error) {
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
		return nil, fmt.Errorf("goproxy: no data_dir")
	}
	p := &Proxy{deps: deps, log: deps.Logger, cfg: cfg}
	p.m = newMetrics(p)
	if deps.Metrics != nil {
		if err := p.m.register(deps.Metrics); err != nil {
			return nil, fmt.Errorf("goproxy metrics: %w", err)
		}
	}
	return p, nil
}

// Run marks the proxy up until ctx ends, then returns nil. Syncs run when
// asked; the handler serves whenever web calls it.
func (p *Proxy) Run(ctx context.Context) error {
	p.mu.Lock()
	p.running = true
	p.mu.Unlock()
	p.log.Info("goproxy ready", "modules", len(p.config().Modules), "go_mod", len(p.config().GoMod))
	<-ctx.Done()
	p.mu.Lock()
	p.running = false
	if p.dbFetch != nil {
		p.dbFetch.Close()
		p.dbFetch = nil
	}
	p.mu.Unlock()
	return nil
}

// Reload applies a new config for the next request and the next sync.
func (p *Proxy) Reload(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	p.mu.Lock()
	p.cfg = cfg
	if p.dbFetch != nil {
		p.dbFetch.Close()
		p.dbFetch = nil
	}
	p.mu.Unlock()
	p.sumdbDown.Store(0)
	return nil
}

func (p *Proxy) config() Config {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg
}

func (p *Proxy) now() time.Time { return p.deps.Now() }

// treeState is state.json of the tree: the store's record and how many
// module paths the published tree holds.
type treeState struct {
	mirror.State
	Modules int `json:"modules"`
	Lookups int `json:"sumdb_lookups"`
}

func (p *Proxy) state() treeState {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.st == nil {
		var st treeState
		p.Store(treeName).ReadState(&st)
		p.st = &st
	}
	return *p.st
}

func (p *Proxy) setState(st treeState) {
	p.mu.Lock()
	p.st = &st
	p.mu.Unlock()
}

func (p *Proxy) setProgress(pr *mirror.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pr == nil {
		p.progress = nil
		return
	}
	c := *pr
	p.progress = &c
}

// Status is the proxy's state for the UI, API and metrics: the api
// package's type.
type Status = api.GoProxyStatus

// Status reports what is published, the last sync and a sync under way.
func (p *Proxy) Status() Status {
	cfg := p.config()
	s := p.state()
	st := Status{State: "up", Upstream: cfg.Upstream, Revision: s.Revision, Modules: s.Modules, Versions: s.Packages,
		Bytes: s.Bytes, LastSync: s.LastSync, LastResult: s.LastResult, LastError: s.LastError, Published: s.Published,
		SumDBLookups: s.Lookups, Imported: p.Store(treeName).Imported()}
	if cfg.SumDB.Enabled() {
		st.SumDB = cfg.SumDB.name()
	}
	p.mu.Lock()
	if !p.running {
		st.State = "down"
	}
	if p.progress != nil {
		pr := *p.progress
		st.Progress = &pr
	}
	p.mu.Unlock()
	st.Summary = fmt.Sprintf("%d modules, %d versions", st.Modules, st.Versions)
	if st.Progress != nil {
		st.Summary += ", syncing"
	}
	if st.LastResult == "failed" {
		st.Summary += ", last sync failed"
	}
	return st
}
