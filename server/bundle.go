package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/mirror"
	"github.com/airgapd/airgapd/mirror/bundle"
	"github.com/airgapd/airgapd/mirror/rpm"
	"github.com/airgapd/airgapd/registry"
	"github.com/airgapd/airgapd/web"
)

// bundleImages puts a bundle's images into the registry: mirror/bundle declares
// the interface, registry does the work, server joins the two.
type bundleImages struct{ r *registry.Registry }

var _ bundle.ImageStore = bundleImages{}

// ImportLayout implements bundle.ImageStore with the registry's import,
// which stores an OCI layout byte for byte under the names index.json
// gives (upstream-qualified names stay upstream-qualified, so ns= pulls
// find them).
func (b bundleImages) ImportLayout(ctx context.Context, dir string) error {
	_, err := b.r.Import(ctx, dir, registry.ImportOptions{})
	return err
}

var _ bundle.ImageBlobChecker = bundleImages{}

// MissingBlobs implements bundle.ImageBlobChecker: an incremental bundle's
// images may leave out the blobs the registry holds.
func (b bundleImages) MissingBlobs(ctx context.Context, digests []string) ([]string, error) {
	return b.r.MissingBlobs(ctx, digests)
}

// BundleCarrier is what a one-shot `airgapd bundle` command works with on
// data_dir: the config's mirror section, or its defaults when the section
// is absent (a bundle of files and images needs none to be made).
func BundleCarrier(cfg *Config, log *slog.Logger) (*bundle.Carrier, error) {
	mc := rpm.DefaultConfig()
	if cfg.Enabled("mirror") {
		mc = *cfg.Mirror
	}
	m, err := rpm.New(mc, rpm.Deps{Logger: log, DataDir: cfg.DataDir})
	if err != nil {
		return nil, err
	}
	formats, err := offlineFormats(cfg, log)
	if err != nil {
		return nil, err
	}
	return bundle.New(m, bundle.Deps{Logger: log, DataDir: cfg.DataDir, Formats: formats}), nil
}

// BundleUpstreams is registry.mirrors as bundle create uses it: where each
// upstream registry is really reached from this host, with credentials.
func BundleUpstreams(cfg *Config) map[string]bundle.Upstream {
	ups := map[string]bundle.Upstream{}
	if cfg.Registry == nil {
		return ups
	}
	for _, m := range cfg.Registry.Mirrors {
		if m.URL != "" {
			ups[m.Name] = bundle.Upstream{URL: m.URL, Username: m.Username, Password: m.Password}
		}
	}
	return ups
}

// OpenBundleImages opens the registry's storage on data_dir for a bundle
// import while no server runs (under the registry's exclusive lock, so it
// fails while a server runs on the same data_dir). close releases it.
func OpenBundleImages(cfg *Config, log *slog.Logger) (bundle.ImageStore, func(), error) {
	if !cfg.Enabled("registry") {
		return nil, nil, errors.New("the registry section is absent or disabled in this config: enable it to import the bundle's images")
	}
	o, err := registry.OpenOffline(*cfg.Registry, registry.Deps{Logger: log, DataDir: cfg.DataDir})
	if err != nil {
		return nil, nil, err
	}
	return bundleImages{r: o.Registry}, func() { o.Close() }, nil
}

var _ web.BundleImporter = (*Server)(nil)

// ImportBundle implements web.BundleImporter: the control socket's
// POST /api/v1/bundle/import, which `airgapd bundle import` uses while a
// server runs. The running mirror publishes (its repos are served at once,
// its status shows the progress) and the running registry stores the
// images, so nothing needs a restart. Without a running mirror (a bundle
// of images only) a mirror with the default settings does the reading.
func (s *Server) ImportBundle(ctx context.Context, path string, progress func(any)) (any, error) {
	if err := s.standbyError(); err != nil {
		return nil, err
	}
	m, _ := capability[*rpm.Mirror](s, "mirror")
	reg, _ := capability[*registry.Registry](s, "registry")
	s.mu.Lock()
	dataDir := s.cfg.DataDir
	s.mu.Unlock()
	if m == nil {
		var err error
		if m, err = rpm.New(rpm.DefaultConfig(), rpm.Deps{Logger: s.log, DataDir: dataDir}); err != nil {
			return nil, err
		}
	}
	var opts bundle.ImportOptions
	if reg != nil {
		opts.Images = bundleImages{r: reg}
	}
	opts.Progress = func(p mirror.ImportProgress) { progress(p) }
	res, err := bundle.New(m, bundle.Deps{Logger: s.log, DataDir: dataDir, Formats: s.runningFormats()}).Import(ctx, path, opts)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// LocalRegistry is this instance's registry as `bundle create
// --from-registry` reads it: the running server's registry listener, found
// in its status over the control socket, and the appliance CA.
func LocalRegistry(ctx context.Context, cfg *Config, socket string) (*bundle.LocalRegistry, error) {
	if !cfg.Enabled("registry") {
		return nil, errors.New("the registry section is absent or disabled in this config: --from-registry reads images from it")
	}
	rep, err := api.NewControlClient(socket).Status(ctx)
	if err != nil {
		if errors.Is(err, api.ErrNotRunning) {
			return nil, errors.New("--from-registry reads images from the running server's registry and none answers on " + socket + ": start airgapd, or leave --from-registry out to fetch from the upstreams")
		}
		return nil, err
	}
	regURL := registryListener(rep)
	if regURL == "" {
		return nil, errors.New("the running server reports no registry listener: is the registry section enabled in the config it runs?")
	}
	ca, err := os.ReadFile(filepath.Join(cfg.DataDir, "pki", "ca.crt"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("the appliance CA: %w", err)
	}
	return &bundle.LocalRegistry{URL: regURL, CAPEM: ca}, nil
}

// registryListener finds "registry URL" among web's listeners in a status
// report.
func registryListener(rep api.StatusReport) string {
	if w := rep.Service(api.ServiceWeb).Web; w != nil {
		return w.Listener("registry")
	}
	return ""
}
