package server

import (
	"context"
	"errors"
	"log/slog"

	"github.com/airgapd/airgapd/mirror"
	"github.com/airgapd/airgapd/registry"
)

// bundleImages puts a bundle's images into the registry: mirror declares
// the interface, registry does the work, server joins the two.
type bundleImages struct{ r *registry.Registry }

var _ mirror.ImageStore = bundleImages{}

// ImportLayout implements mirror.ImageStore with the registry's import,
// which stores an OCI layout byte for byte under the names index.json
// gives (upstream-qualified names stay upstream-qualified, so ns= pulls
// find them).
func (b bundleImages) ImportLayout(ctx context.Context, dir string) error {
	_, err := b.r.Import(ctx, dir, registry.ImportOptions{})
	return err
}

// BundleMirror is the mirror a one-shot `airgapd bundle` command works
// with on data_dir: the config's mirror section, or its defaults when the
// section is absent (a bundle of files and images needs none to be made).
func BundleMirror(cfg *Config, log *slog.Logger) (*mirror.Mirror, error) {
	mc := mirror.DefaultConfig()
	if cfg.Enabled("mirror") {
		mc = *cfg.Mirror
	}
	return mirror.New(mc, mirror.Deps{Logger: log, DataDir: cfg.DataDir})
}

// BundleUpstreams is registry.mirrors as bundle create uses it: where each
// upstream registry is really reached from this host, with credentials.
func BundleUpstreams(cfg *Config) map[string]mirror.BundleUpstream {
	ups := map[string]mirror.BundleUpstream{}
	if cfg.Registry == nil {
		return ups
	}
	for _, m := range cfg.Registry.Mirrors {
		if m.URL != "" {
			ups[m.Name] = mirror.BundleUpstream{URL: m.URL, Username: m.Username, Password: m.Password}
		}
	}
	return ups
}

// OpenBundleImages opens the registry's storage on data_dir for a bundle
// import while no server runs (under the registry's exclusive lock, so it
// fails while a server runs on the same data_dir). close releases it.
func OpenBundleImages(cfg *Config, log *slog.Logger) (mirror.ImageStore, func(), error) {
	if !cfg.Enabled("registry") {
		return nil, nil, errors.New("the registry section is absent or disabled in this config: enable it to import the bundle's images")
	}
	o, err := registry.OpenOffline(*cfg.Registry, registry.Deps{Logger: log, DataDir: cfg.DataDir})
	if err != nil {
		return nil, nil, err
	}
	return bundleImages{r: o.Registry}, func() { o.Close() }, nil
}
