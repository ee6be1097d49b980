package registry

import (
	"fmt"
	"net/url"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/airgapd/airgapd/internal/conf"
)

// Config is the `registry:` section: an OCI registry on Listen that nodes'
// containerd uses as a mirror for the upstreams in Mirrors.
type Config struct {
	Enabled  *bool    `yaml:"enabled,omitempty"`
	Listen   string   `yaml:"listen"`
	TLS      conf.TLS `yaml:"tls"`
	Users    []User   `yaml:"users"`
	PullFrom []string `yaml:"pull_from"`
	Mirrors  []Mirror `yaml:"mirrors"`
}

// User may push and delete.
type User struct {
	Name         string `yaml:"name"`
	PasswordHash string `yaml:"password_hash"`
}

// Mirror is one upstream registry served under its own name (containerd's
// ns=). Written either as a bare name ("docker.io") or as a mapping.
type Mirror struct {
	Name     string `yaml:"name"`
	URL      string `yaml:"url"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// UnmarshalYAML accepts "docker.io" as well as {name: docker.io, url: …}.
func (m *Mirror) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*m = Mirror{Name: n.Value}
		return nil
	}
	type plain Mirror
	return n.Decode((*plain)(m))
}

// DefaultConfig is what an empty `registry: {}` section means.
func DefaultConfig() Config {
	return Config{
		Listen:   ":5000",
		TLS:      conf.TLS{Mode: conf.TLSAuto},
		PullFrom: []string{"127.0.0.0/8", "::1"},
	}
}

// Validate reports every problem in the section.
func (c Config) Validate() error {
	var ps conf.Problems
	conf.CheckListen(&ps, "listen", c.Listen)
	c.TLS.Check(&ps, "tls")
	for i, u := range c.Users {
		p := conf.Index("users", i)
		if u.Name == "" || strings.ContainsAny(u.Name, ": ") {
			ps.Add(conf.Join(p, "name"), "", "%q is not a usable user name", u.Name)
		}
		if !strings.HasPrefix(u.PasswordHash, "$2") {
			ps.Add(conf.Join(p, "password_hash"), "store a bcrypt hash ($2a$…), never the password", "password_hash is not a bcrypt hash")
		}
	}
	conf.CheckCIDRs(&ps, "pull_from", c.PullFrom)
	for i, m := range c.Mirrors {
		p := conf.Index("mirrors", i)
		if m.Name == "" || strings.ContainsAny(m.Name, "/ ") {
			ps.Add(p, "use the upstream's host name, e.g. docker.io", "%q is not a registry name", m.Name)
		}
		if m.URL != "" {
			if err := checkURL(m.URL); err != nil {
				ps.Add(conf.Join(p, "url"), "write https://host[:port]", "%v", err)
			}
		}
	}
	return ps.Err()
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not a registry URL", s)
	}
	return nil
}
