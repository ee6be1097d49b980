package server

import (
	"context"
	"log/slog"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/mirror/goproxy"
	"github.com/airgapd/airgapd/web"
)

// The Go module proxy (`goproxy:`), served at /goproxy/ on mirror.listen.

func (s *Server) buildGoProxy(c *Config, in *instance) error {
	p, err := goproxy.New(*c.GoProxy, goproxy.Deps{Logger: in.log, Metrics: in.metrics, DataDir: c.DataDir})
	if err != nil {
		return err
	}
	in.service = p
	in.run = func(ctx context.Context) error {
		defer s.mountFor("goproxy").set(p.Handler())()
		return p.Run(ctx)
	}
	in.status = func() ServiceStatus {
		st := p.Status()
		return ServiceStatus{State: st.State, Summary: st.Summary, GoProxy: &st}
	}
	in.reload = func(c *Config) error { return p.Reload(*c.GoProxy) }
	return nil
}

var _ web.GoProxySyncer = (*Server)(nil)

// SyncGoProxy implements web.GoProxySyncer on the running proxy: the
// control socket's POST /api/v1/goproxy/sync, which `airgapd goproxy
// sync` uses while a server runs.
func (s *Server) SyncGoProxy(ctx context.Context, progress func(api.Progress)) (api.SyncResult, error) {
	// By its type: the PyPI index's Sync has the same signature, and the
	// first service found would be synced.
	p, err := capability[*goproxy.Proxy](s, "goproxy")
	if err != nil {
		return api.SyncResult{}, err
	}
	return p.Sync(ctx, progress)
}

// SyncGoProxyHere syncs the Go module proxy on data_dir itself, while no
// server runs; the tree's lock keeps two runs apart.
func SyncGoProxyHere(ctx context.Context, cfg *Config, log *slog.Logger, progress func(api.Progress)) (api.SyncResult, error) {
	p, err := goproxy.New(*cfg.GoProxy, goproxy.Deps{Logger: log, DataDir: cfg.DataDir})
	if err != nil {
		return api.SyncResult{}, err
	}
	return p.Sync(ctx, progress)
}

var _ web.GoProxyBrowser = (*Server)(nil)

// GoModules implements web.GoProxyBrowser on the running proxy: the Go
// proxy page's module table.
func (s *Server) GoModules(q string, offset, limit int) (api.PackageList, error) {
	p, err := capability[*goproxy.Proxy](s, "goproxy")
	if err != nil {
		return api.PackageList{}, err
	}
	return p.Modules(q, offset, limit)
}
