package server

import (
	"context"
	"log/slog"
	"reflect"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/internal/conf"
	"github.com/airgapd/airgapd/mirror/apt"
)

type aptInputs struct {
	Apt        apt.Config
	Advertise  Advertise
	SigningKey string
	Listen     string
}

// aptSection is what the apt instance is built from: its section, how
// nodes reach this host (the .sources URIs) and the site key it signs
// local repos with.
func aptSection(c *Config) any {
	if !c.Enabled("apt") {
		return nil
	}
	in := aptInputs{Apt: *c.Apt, Advertise: c.Advertise}
	if c.Mirror != nil {
		in.SigningKey, in.Listen = c.Mirror.SigningKey, c.Mirror.Listen
	}
	return in
}

func aptDeps(c *Config, log *slog.Logger, listen string) apt.Deps {
	d := apt.Deps{Logger: log, DataDir: c.DataDir, AdvertiseName: c.Advertise.Name, AdvertiseAddresses: c.Advertise.Addresses, Listen: listen}
	if c.Mirror != nil {
		d.SigningKey = c.Mirror.SigningKey
	}
	return d
}

func (s *Server) buildApt(c *Config, in *instance) error {
	deps := aptDeps(c, in.log, s.mirrorListen(c))
	deps.Metrics = in.metrics
	a, err := apt.New(*c.Apt, deps)
	if err != nil {
		return err
	}
	in.service = a
	in.run = func(ctx context.Context) error {
		defer s.mountFor("apt").set(a.Handler())()
		return a.Run(ctx)
	}
	in.status = func() ServiceStatus {
		st := a.Status()
		return ServiceStatus{State: st.State, Summary: st.Summary, Apt: &st}
	}
	built := *c
	in.reload = func(next *Config) error {
		// The .sources URIs come from advertise and mirror.listen, the
		// local repos' signatures from mirror.signing_key.
		was, now := aptSection(&built).(aptInputs), aptSection(next).(aptInputs)
		if !reflect.DeepEqual(was.Advertise, now.Advertise) || was.SigningKey != now.SigningKey || was.Listen != now.Listen {
			return conf.ErrRestartNeeded
		}
		return a.Reload(*next.Apt)
	}
	return nil
}

// SyncApt implements web.AptSyncer on the running APT service.
func (s *Server) SyncApt(ctx context.Context, names []string, progress func(api.Progress)) ([]api.SyncResult, error) {
	a, err := capability[*apt.Apt](s, "apt") // the concrete type: the RPM mirror has a Sync of the same shape
	if err != nil {
		return nil, err
	}
	return a.Sync(ctx, names, progress)
}

// SyncAptHere syncs (or indexes) the named APT repos on data_dir itself,
// while no server runs (`airgapd apt sync|index`).
func SyncAptHere(ctx context.Context, cfg *Config, log *slog.Logger, names []string, progress func(api.Progress)) ([]api.SyncResult, error) {
	a, err := apt.New(*cfg.Apt, aptDeps(cfg, log, ""))
	if err != nil {
		return nil, err
	}
	return a.Sync(ctx, names, progress)
}
