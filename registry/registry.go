// Package registry is airgapd's OCI registry: distribution/v3's registry
// application embedded as an http.Handler that web mounts on
// registry.listen, with airgapd's own authorisation in front of it
// (anonymous pulls from pull_from, pushes and deletes by registry.users),
// garbage collection inside the running server with writes held off,
// `airgapd registry import` of OCI layouts and `docker save` tarballs, and
// the node-side configuration (containerd hosts.toml, CRI-O/podman
// registries.conf) that points nodes at it.
//
// distribution keeps process-wide state of its own: logrus's standard
// logger, which its request code falls back to, and docker/go-metrics
// namespaces that its storage driver package registers on Prometheus's
// default registry when it is imported. This package is the only one that
// imports distribution. It never touches that global state: every context
// it hands distribution carries a per-instance logrus logger that forwards
// to slog (see logging.go), distribution's Prometheus endpoint stays off,
// and airgapd's own metrics go to Deps.Metrics.
//
// One registry serves several upstreams (`mirrors`) under their own names:
// containerd's ?ns= parameter and the path-prefix layout reach the same
// upstream-qualified repositories (namespace.go), which pull through from
// the upstream while it is reachable and serve from the store when it is
// not (pullthrough.go, upstream.go).
package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distribution/distribution/v3"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/internal/conf"
	"github.com/airgapd/airgapd/internal/humanize"
	"github.com/airgapd/airgapd/internal/lockout"
)

// Deps is what server hands the registry.
type Deps struct {
	Logger  *slog.Logger
	Metrics prometheus.Registerer
	// DataDir holds the filesystem storage (data_dir/registry) and the
	// lock that keeps offline commands off a running server's storage.
	DataDir string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Status is the registry's state (the api package defines it).
type Status = api.RegistryStatus

// RepoStatus is one repository in Status.
type RepoStatus = api.RegistryRepoStatus

// Registry is the image service.
type Registry struct {
	deps Deps
	log  *slog.Logger
	now  func() time.Time

	cfg  atomic.Pointer[Config]
	auth atomic.Pointer[authorizer]

	storageDesc string
	driver      storagedriver.StorageDriver // airgapd's own handle, for GC and counting
	ns          distribution.Namespace      // on driver
	app         http.Handler                // distribution's application
	handler     http.Handler                // what web mounts: auth → gate → app
	internal    http.Handler                // the same without auth, for import
	logrusCtx   context.Context

	// referrersMu makes each change of a referrers list (read, add,
	// write back) one at a time.
	referrersMu sync.Mutex

	upstreams atomic.Pointer[map[string]*upstream] // by mirror name
	fetches   blobFetches
	fetchCtx  context.Context // pulled-through downloads; ends with Run
	stopFetch context.CancelFunc

	gate writeGate
	// guesses locks out a client after too many wrong passwords, as the
	// web login does (internal/lockout).
	guesses *lockout.Lockout
	pending pendingBlobs
	stats   stats
	gcMu    sync.Mutex // one collection at a time
	lastGC  atomic.Pointer[GCResult]
	inv     atomic.Pointer[inventory]
	dirty   chan struct{} // asks Run to count again
	changes atomic.Uint64 // pushes, deletes and collections (Changes)
	running atomic.Bool
}

// New validates cfg and builds the registry application on its storage. It
// opens no socket and writes nothing: distribution's drivers create their
// folders on the first push.
func New(cfg Config, deps Deps) (*Registry, error) {
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
		return nil, errors.New("registry: no data_dir")
	}
	r := &Registry{deps: deps, log: deps.Logger, now: deps.Now, dirty: make(chan struct{}, 1)}
	r.guesses = lockout.New(authFailures, authWindow, r.now)
	r.cfg.Store(&cfg)
	a, err := newAuthorizer(cfg)
	if err != nil {
		return nil, err
	}
	r.auth.Store(a)
	if err := r.setUpstreams(cfg.Mirrors); err != nil {
		return nil, err
	}
	r.fetchCtx, r.stopFetch = context.WithCancel(context.Background())
	r.logrusCtx = withLogrus(context.Background(), deps.Logger)
	dc, err := r.distributionConfig(cfg)
	if err != nil {
		return nil, err
	}
	r.storageDesc = describeStorage(dc.Storage)
	if r.app, err = newApp(r.logrusCtx, dc); err != nil {
		return nil, err
	}
	if r.driver, r.ns, err = openStorage(r.logrusCtx, dc); err != nil {
		return nil, err
	}
	r.pending = newPendingBlobs(r.now)
	app := r.app
	if dc.Storage.Type() == "filesystem" {
		app = blobFiles(fmt.Sprint(dc.Storage.Parameters()["rootdirectory"]), app)
	}
	app = r.otherDigests(app)
	app = r.referrersAPI(app)
	// Import goes through internal: it stores what the file holds and must
	// never be told a blob exists because an upstream has it.
	entry := newLogrusEntry(deps.Logger)
	r.internal = logRequests(entry, r.track(r.gated(app)))
	r.handler = r.stats.middleware(r.namespaces(r.authorize(logRequests(entry, r.track(r.gated(r.pullThrough(app)))))))
	if deps.Metrics != nil {
		if err := deps.Metrics.Register(newCollector(r)); err != nil {
			return nil, fmt.Errorf("registry metrics: %w", err)
		}
	}
	return r, nil
}

// Handler serves /v2/ for web to mount on registry.listen.
func (r *Registry) Handler() http.Handler { return r.handler }

// Run serves until ctx ends, then returns nil. The HTTP side is web's; Run
// holds the storage lock (shared, so a rebuilt instance can start beside
// this one, but `airgapd registry gc|import` without a server cannot), keeps
// the counts in Status fresh and purges abandoned uploads.
func (r *Registry) Run(ctx context.Context) error {
	lock, err := lockStorage(r.deps.DataDir, false)
	if err != nil {
		return err
	}
	defer lock.Close()
	defer r.stopFetch()
	r.running.Store(true)
	defer r.running.Store(false)
	r.log.Info("serving OCI registry", "storage", r.storageDesc)
	r.count(ctx)

	const (
		recount      = 5 * time.Minute
		debounce     = 2 * time.Second
		purgeFirst   = 10 * time.Minute
		purgeEvery   = 24 * time.Hour
		uploadMaxAge = 7 * 24 * time.Hour
	)
	tick := time.NewTicker(recount)
	defer tick.Stop()
	purge := time.NewTimer(purgeFirst)
	defer purge.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			r.count(ctx)
		case <-r.dirty:
			// Let a burst of pushes settle before counting.
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(debounce):
			}
			r.count(ctx)
		case <-purge.C:
			r.purgeUploads(ctx, uploadMaxAge)
			purge.Reset(purgeEvery)
		}
	}
}

// Reload applies users, pull_from and mirrors in place. A different storage
// needs a new instance.
func (r *Registry) Reload(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if !reflect.DeepEqual(cfg.Storage, r.cfg.Load().Storage) {
		return conf.ErrRestartNeeded
	}
	a, err := newAuthorizer(cfg)
	if err != nil {
		return err
	}
	if err := r.setUpstreams(cfg.Mirrors); err != nil {
		return err
	}
	r.auth.Store(a)
	r.cfg.Store(&cfg)
	return nil
}

// setUpstreams builds the mirrors' upstreams, keeping those that did not
// change (with their counts and reachability).
func (r *Registry) setUpstreams(ms []Mirror) error {
	old := map[string]*upstream{}
	if p := r.upstreams.Load(); p != nil {
		old = *p
	}
	next := make(map[string]*upstream, len(ms))
	for _, m := range ms {
		if u := old[m.Name]; u != nil && u.mirror == m {
			next[m.Name] = u
			continue
		}
		u, err := newUpstream(m, r.now)
		if err != nil {
			return fmt.Errorf("registry.mirrors %s: %w", m.Name, err)
		}
		next[m.Name] = u
	}
	r.upstreams.Store(&next)
	return nil
}

// markDirty asks Run to recount soon.
func (r *Registry) markDirty() {
	r.changes.Add(1)
	select {
	case r.dirty <- struct{}{}:
	default:
	}
}

// Status reports what the registry holds and has done.
func (r *Registry) Status() Status {
	cfg := r.cfg.Load()
	st := Status{
		State:         "starting",
		Storage:       r.storageDesc,
		Users:         len(cfg.Users),
		PullFrom:      cfg.PullFrom,
		Pulls:         r.stats.pulls.Load(),
		Pushes:        r.stats.pushes.Load(),
		Deletes:       r.stats.deletes.Load(),
		BytesSent:     r.stats.bytesSent.Load(),
		BytesReceived: r.stats.bytesReceived.Load(),
		AuthFailures:  r.stats.authFailures(),
		GCRunning:     r.gate.closed(),
		LastGC:        r.lastGC.Load(),
	}
	if ups := r.upstreams.Load(); ups != nil {
		for _, m := range cfg.Mirrors {
			st.Mirrors = append(st.Mirrors, m.Name)
			if u := (*ups)[m.Name]; u != nil {
				st.Upstreams = append(st.Upstreams, u.status())
			}
		}
	}
	if r.running.Load() {
		st.State = "up"
	}
	if inv := r.inv.Load(); inv != nil {
		st.Repositories = inv.repos
		st.RepositoriesOmitted = inv.omitted
		st.Tags, st.Blobs, st.Bytes, st.CountedAt = inv.tags, inv.blobs, inv.bytes, inv.at
	}
	st.Summary = fmt.Sprintf("%s, %s, %s in %s; %s, %s",
		humanize.Count(len(st.Repositories)+st.RepositoriesOmitted, "repository"), humanize.Count(st.Tags, "tag"), humanize.Bytes(st.Bytes),
		humanize.Count(st.Blobs, "blob"), humanize.Count(int(st.Pulls), "pull"), humanize.Count(int(st.Pushes), "push"))
	if st.GCRunning {
		st.Summary += "; garbage collection running, writes held off"
	}
	if !cfg.gcAllowed() {
		st.Summary += "; gc off on this host (shared storage)"
	}
	if len(st.Upstreams) > 0 {
		up := 0
		for _, m := range st.Upstreams {
			if m.Reachable {
				up++
			}
		}
		st.Summary += fmt.Sprintf("; %d mirrors (%d reachable)", len(st.Upstreams), up)
	}
	return st
}

// storageRoot is the default filesystem root under data_dir.
func storageRoot(dataDir string) string { return filepath.Join(dataDir, "registry") }
