package web

import (
	"strings"

	"github.com/airgapd/airgapd/internal/conf"
)

// Config is the `web:` section: the admin UI, JSON API and /metrics.
// With `enabled: false` the UI listener is not opened; the control socket,
// the mirror's and the registry's listeners are still served.
type Config struct {
	Enabled *bool         `yaml:"enabled,omitempty"`
	Listen  string        `yaml:"listen"`
	TLS     conf.TLS      `yaml:"tls"`
	Admin   AdminConfig   `yaml:"admin"`
	Metrics MetricsConfig `yaml:"metrics"`
}

// MetricsConfig restricts /metrics on web.listen. Both empty (the
// default) leave it open, as node_exporter is; the control socket's
// /metrics is never restricted.
type MetricsConfig struct {
	// Allow lists the networks that may scrape; empty: any address.
	Allow []string `yaml:"allow"`
	// Token, when set, must come as `Authorization: Bearer TOKEN`.
	Token string `yaml:"token"`
}

// AdminConfig is the one local administrator.
type AdminConfig struct {
	PasswordHash string `yaml:"password_hash"` // bcrypt, set by `airgapd passwd`
}

// DefaultConfig is what an empty `web: {}` section means.
func DefaultConfig() Config {
	return Config{Listen: ":8443", TLS: conf.TLS{Mode: conf.TLSAuto}}
}

// Validate reports every problem in the section.
func (c Config) Validate() error {
	var ps conf.Problems
	conf.CheckListen(&ps, "listen", c.Listen)
	c.TLS.Check(&ps, "tls")
	if h := c.Admin.PasswordHash; h != "" && !strings.HasPrefix(h, "$2") {
		ps.Add("admin.password_hash", "set it with `airgapd passwd`, which stores a bcrypt hash", "password_hash is not a bcrypt hash")
	}
	conf.CheckCIDRs(&ps, "metrics.allow", c.Metrics.Allow)
	if t := c.Metrics.Token; t != "" && (len(t) < 16 || strings.ContainsAny(t, " \t\r\n")) {
		ps.Add("metrics.token", "use 16 or more characters without spaces, e.g. the output of `openssl rand -hex 24`", "metrics.token is too short or has spaces")
	}
	return ps.Err()
}
