package server

import (
	"context"
	"log/slog"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/mirror/bundle"
	"github.com/airgapd/airgapd/mirror/rpm"
)

// The mirror's and bundles' one-shot work without a running server
// (`airgapd mirror sync|index`, `bundle create|import|inspect`): cmd reaches
// mirror/rpm and mirror/bundle only through these, as it reaches the other
// services through offline.go.

// SyncMirrorHere syncs (or indexes, for local repos) the named repos on
// data_dir itself, while no server runs; the repos' locks keep two runs
// apart.
func SyncMirrorHere(ctx context.Context, cfg *Config, log *slog.Logger, names []string, progress func(api.Progress)) ([]api.SyncResult, error) {
	m, err := rpm.New(*cfg.Mirror, rpm.Deps{Logger: log, DataDir: cfg.DataDir})
	if err != nil {
		return nil, err
	}
	return m.Sync(ctx, names, progress)
}

// BundleRequest is what `airgapd bundle create` asks for.
type BundleRequest struct {
	Repos, Files, Images []string
	// Trees are the formats beside RPM: format → tree names (none: all).
	Trees     map[string][]string
	Out       string
	SplitSize int64
	Since     string
	Platforms []string
	Compress  string
	// FromRegistry: images come from the running server's registry
	// (found through the control socket), not from the upstreams.
	FromRegistry bool
	// Charts (NAME or NAME@RANGE) and AllCharts: Helm charts of the
	// running server's registry (charts/), carried as their OCI artifacts.
	Charts    []string
	AllCharts bool
	Progress  func(BundleCreateProgress)
}

// Bundle types as the command line shows them.
type (
	BundleCreateProgress = bundle.CreateProgress
	BundleCreateResult   = bundle.CreateResult
	BundleInfo           = bundle.Info
)

// CreateBundle writes a bundle from this instance's published repos, the
// given folders and images.
func CreateBundle(ctx context.Context, cfg *Config, log *slog.Logger, req BundleRequest) (BundleCreateResult, error) {
	c, err := BundleCarrier(cfg, log)
	if err != nil {
		return BundleCreateResult{}, err
	}
	opts := bundle.CreateOptions{
		Repos: req.Repos, Trees: req.Trees, Files: req.Files, Images: req.Images, Out: req.Out, SplitSize: req.SplitSize,
		Since: req.Since, Platforms: req.Platforms, Compress: req.Compress,
		Upstreams: BundleUpstreams(cfg), Progress: req.Progress, Charts: req.Charts, AllCharts: req.AllCharts,
	}
	if req.FromRegistry || len(req.Charts) > 0 || req.AllCharts {
		local, err := LocalRegistry(ctx, cfg, api.ControlSocketPath(cfg.RuntimeDir))
		if err != nil {
			return BundleCreateResult{}, err
		}
		if req.FromRegistry {
			opts.FromRegistry = local
		}
		if len(req.Charts) > 0 || req.AllCharts {
			opts.ChartsFrom = local
		}
	}
	return c.Create(ctx, opts)
}

// ImportBundleHere imports the bundle at path on data_dir itself, while no
// server runs (the registry's storage lock keeps one from starting
// meanwhile). Images go straight into the registry's storage.
func ImportBundleHere(ctx context.Context, cfg *Config, log *slog.Logger, path string, progress func(api.ImportProgress)) (api.BundleImportResult, error) {
	info, err := bundle.Inspect(path)
	if err != nil {
		return api.BundleImportResult{}, err
	}
	c, err := BundleCarrier(cfg, log)
	if err != nil {
		return api.BundleImportResult{}, err
	}
	opts := bundle.ImportOptions{Progress: progress}
	for _, im := range info.Manifest.Images {
		if im.InBase {
			continue
		}
		store, closeStore, err := OpenBundleImages(cfg, log)
		if err != nil {
			return api.BundleImportResult{}, err
		}
		defer closeStore()
		opts.Images = store
		break
	}
	return c.Import(ctx, path, opts)
}

// InspectBundle reads a bundle's manifest and sizes (import verifies).
func InspectBundle(path string) (BundleInfo, error) { return bundle.Inspect(path) }

// ParseBundleSize reads --split-size: 4G, 700M, 1T or bytes.
func ParseBundleSize(s string) (int64, error) { return bundle.ParseSize(s) }
