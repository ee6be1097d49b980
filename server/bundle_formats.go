package server

import (
	"log/slog"

	"github.com/airgapd/airgapd/mirror/apt"
	"github.com/airgapd/airgapd/mirror/bundle"
	"github.com/airgapd/airgapd/mirror/goproxy"
	"github.com/airgapd/airgapd/mirror/pypi"
)

// offlineFormats are the formats beside RPM a one-shot `airgapd bundle`
// command carries: each built from its config section on data_dir (its
// trees are read and published under their own locks, as a running
// service's are).
func offlineFormats(cfg *Config, log *slog.Logger) (map[string]bundle.TreeFormat, error) {
	out := map[string]bundle.TreeFormat{}
	if cfg.Enabled("apt") {
		a, err := apt.New(*cfg.Apt, aptDeps(cfg, log, mirrorListenOf(cfg)))
		if err != nil {
			return nil, err
		}
		out["apt"] = a
	}
	if cfg.Enabled("pypi") {
		x, err := pypi.New(*cfg.PyPI, pypi.Deps{Logger: log, DataDir: cfg.DataDir})
		if err != nil {
			return nil, err
		}
		out["pypi"] = x
	}
	if cfg.Enabled("goproxy") {
		p, err := goproxy.New(*cfg.GoProxy, goproxy.Deps{Logger: log, DataDir: cfg.DataDir})
		if err != nil {
			return nil, err
		}
		out["goproxy"] = p
	}
	return out, nil
}

// mirrorListenOf is mirror.listen as the config gives it (for the .sources
// URLs apt writes; a bundle command opens no socket).
func mirrorListenOf(cfg *Config) string {
	for _, l := range cfg.listens() {
		if l.path == "mirror.listen" {
			return l.addr
		}
	}
	return ""
}

// runningFormats are the running format services, for a bundle import
// through the control socket: what they publish is served at once.
func (s *Server) runningFormats() map[string]bundle.TreeFormat {
	out := map[string]bundle.TreeFormat{}
	if a, err := capability[*apt.Apt](s, "apt"); err == nil {
		out["apt"] = a
	}
	if x, err := capability[*pypi.Index](s, "pypi"); err == nil {
		out["pypi"] = x
	}
	if p, err := capability[*goproxy.Proxy](s, "goproxy"); err == nil {
		out["goproxy"] = p
	}
	return out
}
