package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/internal/conf"
	"github.com/airgapd/airgapd/mirror"
	"github.com/airgapd/airgapd/mirror/charts"
	"github.com/airgapd/airgapd/registry"
	"github.com/airgapd/airgapd/web"
)

// The Helm chart service: its charts live in the registry (charts/), its
// classic view is served at /charts/ on mirror.listen.

func (s *Server) buildCharts(c *Config, in *instance) error {
	rr := &runningRegistry{s: s}
	x, err := charts.New(*c.Charts, charts.Deps{Logger: in.log, Metrics: in.metrics, DataDir: c.DataDir, Store: rr, Images: rr})
	if err != nil {
		return err
	}
	in.service = x
	in.run = func(ctx context.Context) error {
		defer s.mountFor("charts").set(x.Handler())()
		return x.Run(ctx)
	}
	in.status = func() ServiceStatus {
		st := x.Status()
		return ServiceStatus{State: st.State, Summary: st.Summary, Charts: &st}
	}
	in.reload = func(c *Config) error { return x.Reload(*c.Charts) }
	return nil
}

// checkCharts: the charts live in the registry and are served on
// mirror.listen, so both must run.
func (c *Config) checkCharts(ps *conf.Problems) {
	if !c.Enabled("charts") {
		return
	}
	if !c.Enabled("registry") {
		ps.Add("charts", "enable the registry: section (charts are kept there, in charts/)", "charts needs the registry")
	}
	if !c.Enabled("mirror") {
		ps.Add("charts", "enable the mirror: section (its listen serves /charts/index.yaml)", "charts needs mirror.listen")
	}
}

// runningRegistry is the registry instance running now, for the chart
// service (charts.ChartStore): a reload may rebuild the registry, so each
// call finds the current one.
type runningRegistry struct {
	s     *Server
	mu    sync.Mutex
	last  *registry.Registry
	epoch uint64
}

var _ charts.ChartStore = (*runningRegistry)(nil)

func (r *runningRegistry) get() (*registry.Registry, error) {
	return capability[*registry.Registry](r.s, "registry")
}

// Changes is the registry's own count, moved on whenever the registry
// instance is replaced (its count starts again).
func (r *runningRegistry) Changes() uint64 {
	reg, err := r.get()
	if err != nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if reg != r.last {
		r.last = reg
		r.epoch++
	}
	return r.epoch<<40 + reg.Changes()
}

func (r *runningRegistry) TagDigests(ctx context.Context, prefix string) (map[string]map[string]string, error) {
	reg, err := r.get()
	if err != nil {
		return nil, err
	}
	return reg.TagDigests(ctx, prefix)
}

func (r *runningRegistry) ReadManifest(ctx context.Context, repo, digest string) ([]byte, error) {
	reg, err := r.get()
	if err != nil {
		return nil, err
	}
	return reg.ReadManifest(ctx, repo, digest)
}

func (r *runningRegistry) OpenBlob(ctx context.Context, repo, digest string) (io.ReadSeekCloser, error) {
	reg, err := r.get()
	if err != nil {
		return nil, err
	}
	return reg.OpenBlob(ctx, repo, digest)
}

func (r *runningRegistry) PushManifest(ctx context.Context, repo, tag, mediaType string, manifest []byte, blobs [][]byte) (string, error) {
	reg, err := r.get()
	if err != nil {
		return "", err
	}
	return reg.PushManifest(ctx, repo, tag, mediaType, manifest, blobs)
}

// CopyImage implements charts.ImageCopier: a repo's images: true.
func (r *runningRegistry) CopyImage(ctx context.Context, ref string) (string, string, error) {
	reg, err := r.get()
	if err != nil {
		return "", "", err
	}
	return reg.CopyImage(ctx, ref)
}

var _ web.ChartsSyncer = (*Server)(nil)

type chartsCaps interface {
	Sync(ctx context.Context, names []string, progress func(mirror.Progress)) ([]charts.Result, error)
	ImagesOf(ctx context.Context, chart string) ([]string, error)
}

// SyncCharts implements web.ChartsSyncer on the running chart service:
// the control socket's POST /api/v1/charts/sync (`airgapd charts sync`).
func (s *Server) SyncCharts(ctx context.Context, names []string, progress func(api.Progress)) ([]api.SyncResult, error) {
	x, err := capability[chartsCaps](s, "charts")
	if err != nil {
		return nil, err
	}
	return x.Sync(ctx, names, progress)
}

// ChartImages implements web.ChartsSyncer: `airgapd charts images`.
func (s *Server) ChartImages(ctx context.Context, chart string) ([]string, error) {
	x, err := capability[chartsCaps](s, "charts")
	if err != nil {
		return nil, err
	}
	return x.ImagesOf(ctx, chart)
}

// SyncChartsHere is `airgapd charts sync` with no server running: the
// registry's storage is opened here, under its lock, and the charts are
// pushed into it.
func SyncChartsHere(ctx context.Context, cfg *Config, log *slog.Logger, names []string, progress func(api.Progress)) ([]api.SyncResult, error) {
	if !cfg.Enabled("charts") {
		return nil, errors.New("the charts section is absent or disabled in this config")
	}
	if !cfg.Enabled("registry") {
		return nil, errors.New("the registry section is absent or disabled in this config: charts are kept in the registry")
	}
	o, err := registry.OpenOffline(*cfg.Registry, registry.Deps{Logger: log, DataDir: cfg.DataDir})
	if err != nil {
		return nil, err
	}
	defer o.Close()
	x, err := charts.New(*cfg.Charts, charts.Deps{Logger: log, DataDir: cfg.DataDir, Store: o.Registry, Images: o.Registry})
	if err != nil {
		return nil, err
	}
	return x.Sync(ctx, names, progress)
}

// ChartImagesInFile lists the images a chart .tgz on disk references
// (`airgapd charts images --file`), with no server.
func ChartImagesInFile(tgz []byte) ([]string, error) { return charts.Images(tgz) }
