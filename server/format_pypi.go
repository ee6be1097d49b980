package server

import (
	"context"
	"log/slog"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/internal/conf"
	"github.com/airgapd/airgapd/mirror/pypi"
	"github.com/airgapd/airgapd/web"
)

// buildPyPI makes the PyPI index (the `pypi:` section), served at /pypi/
// on mirror.listen.
func (s *Server) buildPyPI(c *Config, in *instance) error {
	x, err := pypi.New(*c.PyPI, pypi.Deps{Logger: in.log, Metrics: in.metrics, DataDir: c.DataDir})
	if err != nil {
		return err
	}
	in.service = x
	in.run = func(ctx context.Context) error {
		defer s.mountFor("pypi").set(x.Handler())()
		return x.Run(ctx)
	}
	in.status = func() ServiceStatus {
		st := x.Status()
		return ServiceStatus{State: st.State, Summary: st.Summary, PyPI: &st}
	}
	built := *c
	in.reload = func(next *Config) error {
		if next.DataDir != built.DataDir {
			return conf.ErrRestartNeeded
		}
		return x.Reload(*next.PyPI)
	}
	return nil
}

var _ web.PyPISyncer = (*Server)(nil)

// SyncPyPI implements web.PyPISyncer on the running index: the control
// socket's POST /api/v1/pypi/sync.
func (s *Server) SyncPyPI(ctx context.Context, progress func(api.Progress)) (api.SyncResult, error) {
	// By its type: the Go proxy's Sync has the same signature.
	x, err := capability[*pypi.Index](s, "pypi")
	if err != nil {
		return api.SyncResult{}, err
	}
	return x.Sync(ctx, progress)
}

// SyncPyPIHere syncs the PyPI index on data_dir itself, while no server
// runs (`airgapd pypi sync`); the tree's lock keeps two runs apart.
func SyncPyPIHere(ctx context.Context, cfg *Config, log *slog.Logger, progress func(api.Progress)) (api.SyncResult, error) {
	x, err := pypi.New(*cfg.PyPI, pypi.Deps{Logger: log, DataDir: cfg.DataDir})
	if err != nil {
		return api.SyncResult{}, err
	}
	return x.Sync(ctx, progress)
}

var _ web.PyPIBrowser = (*Server)(nil)

// PyPIProjects implements web.PyPIBrowser on the running index: the PyPI
// page's project table.
func (s *Server) PyPIProjects(q string, offset, limit int) (api.PackageList, error) {
	x, err := capability[*pypi.Index](s, "pypi")
	if err != nil {
		return api.PackageList{}, err
	}
	return x.Projects(q, offset, limit)
}
