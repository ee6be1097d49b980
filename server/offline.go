package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/gateway"
	"github.com/airgapd/airgapd/ntpd"
	"github.com/airgapd/airgapd/registry"
)

// The one-shot commands (airgapd gateway, ntp settime, registry gc and
// import without a server) work through these entry points, so that the
// command line reaches the services only through server, as the running
// server does.

// GatewayChange is what a gateway command did or would do.
type GatewayChange struct {
	// Text is the plan in iptables-save syntax plus sysctl and route lines.
	Text string
	// Changes counts the steps; Notes are what the operator should know.
	Changes int
	Notes   []string
}

// RunGateway runs `airgapd gateway plan|apply|down` on this host with the
// config's gateway section (its defaults for down when the section is
// absent or disabled, so that down removes what an earlier config left).
// The change is nil when nothing ran (no section, a bad config).
func RunGateway(cfg *Config, verb string, log *slog.Logger) (*GatewayChange, error) {
	gc := gateway.DefaultConfig()
	switch {
	case cfg.Gateway != nil && cfg.Enabled("gateway"):
		gc = *cfg.Gateway
	case verb != "down":
		return nil, fmt.Errorf("%s has no enabled gateway section; nothing to %s (`airgapd gateway down` removes airgapd's rules)", cfg.Source, verb)
	}
	g, err := gateway.New(gc, gateway.Deps{Logger: log})
	if err != nil {
		return nil, err
	}
	var p gateway.Plan
	switch verb {
	case "plan":
		p, err = g.Plan()
	case "apply":
		p, err = g.Apply()
	case "down":
		p, err = g.Down()
	default:
		return nil, fmt.Errorf("unknown gateway command %q", verb)
	}
	return &GatewayChange{Text: p.String(), Changes: len(p.Steps), Notes: p.Notes}, err
}

// ParseNTPTime reads `airgapd ntp settime`'s TIME (RFC 3339, "2006-01-02
// 15:04:05" or 15:04:05 today, the last two in loc).
func ParseNTPTime(s string, now time.Time, loc *time.Location) (time.Time, error) {
	return ntpd.ParseTime(s, now, loc)
}

// QueueNTPSetTime writes `airgapd ntp settime`'s request into data_dir,
// stamped with now, for the running server (or the next start) to apply;
// it returns the file's path.
func QueueNTPSetTime(cfg *Config, to, now time.Time, force bool) (string, error) {
	if cfg.NTP == nil || !cfg.Enabled("ntp") {
		return "", errors.New("the ntp section is absent or disabled in this config")
	}
	if err := ntpd.WriteSetTime(cfg.DataDir, to, now, force); err != nil {
		return "", fmt.Errorf("settime: %w", err)
	}
	return filepath.Join(ntpd.Dir(cfg.DataDir), "settime"), nil
}

// NTPSetTimePending reports whether a queued settime waits to be applied.
func NTPSetTimePending(cfg *Config) bool { return ntpd.SetTimePending(cfg.DataDir) }

// OfflineRegistry is the registry's storage opened by a one-shot command
// while no server runs, under the lock that keeps a server from starting
// on it meanwhile. Close releases it.
type OfflineRegistry struct {
	o *registry.Offline
}

// OpenRegistry opens the config's registry on data_dir for `airgapd
// registry gc|import` without a server; it fails while a server runs on
// the same data_dir.
func OpenRegistry(cfg *Config, log *slog.Logger) (*OfflineRegistry, error) {
	if !cfg.Enabled("registry") {
		return nil, errors.New("the registry section is absent or disabled in this config")
	}
	o, err := registry.OpenOffline(*cfg.Registry, registry.Deps{Logger: log, DataDir: cfg.DataDir})
	if err != nil {
		return nil, err
	}
	return &OfflineRegistry{o: o}, nil
}

// GC collects (or, dry, lists) unreferenced blobs.
func (r *OfflineRegistry) GC(ctx context.Context, dryRun bool) (api.GCResult, error) {
	return r.o.GC(ctx, dryRun)
}

// Import stores the images in the file at path, under repo when given.
func (r *OfflineRegistry) Import(ctx context.Context, path, repo string, progress func(complete, total int64)) (api.RegistryImportResult, error) {
	return r.o.Import(ctx, path, registry.ImportOptions{Repo: repo, Progress: progress})
}

// Close releases the storage lock.
func (r *OfflineRegistry) Close() error { return r.o.Close() }
