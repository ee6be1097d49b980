// Package apt is the APT format on the content store (package mirror):
// Debian and Ubuntu repositories mirrored byte for byte from an upstream,
// verified against its keyring, and local folders of .deb files indexed
// and signed with the site key, served under /apt/NAME/ on mirror.listen.
//
// A sync (Sync, `airgapd apt sync`) fetches each suite's InRelease (or
// Release and Release.gpg) and verifies it against the repo's keyring
// before anything it names is used; then every Packages, Sources,
// Contents and i18n index it lists for the configured components and
// architectures, each checked by size and SHA256; then every .deb those
// Packages name that the pool lacks, in parallel and resumable with
// Range, each checked against its entry. The tree (the upstream's files
// byte for byte, by-hash paths too) is published with one
// Store.PublishTree; a failure names the file and publishes nothing.
//
// Index (`airgapd apt index`) builds a local folder's Packages and Release
// like apt-ftparchive does, reading only new or changed .deb files, and
// signs the Release with the site key (InRelease and Release.gpg).
package apt

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/mirror"
)

// Deps is what server hands the APT service.
type Deps struct {
	Logger  *slog.Logger
	Metrics prometheus.Registerer // nil: no metrics (one-shot commands)
	DataDir string
	// SigningKey is mirror.signing_key ("": the key generated under
	// data_dir), the site key local repos are signed with.
	SigningKey string
	// AdvertiseName, AdvertiseAddresses and Listen (mirror.listen's bound
	// address) make the URIs of the .sources files.
	AdvertiseName      string
	AdvertiseAddresses []string
	Listen             string
	Now                func() time.Time
}

// Status is the service's state and RepoStatus one repo in it: the api
// package's types.
type (
	Status     = api.AptStatus
	RepoStatus = api.RepoStatus
	Result     = api.SyncResult
)

// Apt is the APT repository service.
type Apt struct {
	deps Deps
	log  *slog.Logger
	m    *metrics

	book *mirror.Book[Config, repoState] // config, state.json records, syncs under way
}

// New validates cfg and returns the service. It opens nothing.
func New(cfg Config, deps Deps) (*Apt, error) {
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
		return nil, fmt.Errorf("apt: no data_dir")
	}
	a := &Apt{deps: deps, log: deps.Logger}
	a.book = mirror.NewBook[Config, repoState](cfg, a.Store)
	a.m = newMetrics(a)
	if deps.Metrics != nil {
		if err := a.m.register(deps.Metrics); err != nil {
			return nil, fmt.Errorf("apt metrics: %w", err)
		}
	}
	return a, nil
}

// Run indexes the local repos once, then marks the service up until ctx
// ends. Syncs run when asked (Sync).
func (a *Apt) Run(ctx context.Context) error {
	a.book.SetRunning(true)
	a.log.Info("apt ready", "repos", len(a.book.Config().Repos))
	for _, r := range a.book.Config().Repos {
		if !r.Mirrored() {
			if _, err := a.indexRepo(ctx, r, nil); err != nil && ctx.Err() == nil {
				a.log.Warn("index failed", "repo", r.Name, "err", err)
			}
		}
	}
	<-ctx.Done()
	a.book.SetRunning(false)
	return nil
}

// Reload applies a new config for the next request and the next sync.
func (a *Apt) Reload(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	a.book.SetConfig(cfg)
	return nil
}

func (a *Apt) now() time.Time { return a.deps.Now() }

// Status reports every repo: what is published, the last run and any run
// under way.
func (a *Apt) Status() Status {
	cfg := a.book.Config()
	st := Status{State: a.book.ServiceState()}
	var pkgs, failed, syncing int
	for _, r := range cfg.Repos {
		rs := RepoStatus{Name: r.Name, Kind: "mirror", BaseURL: r.URL, Path: r.Path}
		if !r.Mirrored() {
			rs.Kind = "local"
		}
		s := a.book.State(r.Name)
		rs.Revision, rs.Packages, rs.Bytes = s.Revision, s.Packages, s.Bytes
		rs.LastSync, rs.LastResult, rs.LastError, rs.Published = s.LastSync, s.LastResult, s.LastError, s.Published
		rs.Upstream = s.Upstream
		if s.LastResult == "failed" {
			failed++
		}
		if rs.Progress = a.book.Progress(r.Name); rs.Progress != nil {
			syncing++
		}
		pkgs += rs.Packages
		st.Repos = append(st.Repos, rs)
	}
	st.Summary = fmt.Sprintf("%d apt repos, %d packages", len(st.Repos), pkgs)
	st.Summary += mirror.RunSummary(syncing, failed)
	return st
}

// Store is repo name's folder in the content store.
func (a *Apt) Store(name string) mirror.Store { return mirror.FormatStore(a.deps.DataDir, "apt", name) }

// baseURL is how nodes reach the mirror listener (mirror.Advertised.BaseURL).
func (a *Apt) baseURL(r *http.Request) string {
	return mirror.Advertised{Name: a.deps.AdvertiseName, Addresses: a.deps.AdvertiseAddresses, Listen: a.deps.Listen}.BaseURL(r)
}
