package web

import (
	"strings"

	"github.com/airgapd/airgapd/internal/conf"
)

// Config is the `web:` section: the admin UI, JSON API and /metrics.
// With `enabled: false` the UI listener is not opened; the control socket,
// the mirror's and the registry's listeners are still served.
type Config struct {
	Enabled *bool       `yaml:"enabled,omitempty"`
	Listen  string      `yaml:"listen"`
	TLS     conf.TLS    `yaml:"tls"`
	Admin   AdminConfig `yaml:"admin"`
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
	return ps.Err()
}
