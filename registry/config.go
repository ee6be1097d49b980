package registry

import (
	"fmt"
	"net/url"
	"slices"
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
	// Storage passes through to distribution's `storage:` section: one
	// driver (filesystem or s3) with its parameters, plus `redirect`.
	// Empty means the filesystem under data_dir/registry.
	Storage map[string]map[string]any `yaml:"storage,omitempty"`
	// GC says whether `airgapd registry gc` may run on this host. Storage
	// shared by several hosts (s3) must say it on each: distribution's
	// mark and sweep is safe from one host only.
	GC GC `yaml:"gc,omitempty"`
}

// GC is the `registry.gc:` section.
type GC struct {
	// Enabled: nil means true on storage of this host's own (filesystem);
	// with s3 it must be given.
	Enabled *bool `yaml:"enabled,omitempty"`
}

// gcAllowed reports whether this host may collect garbage.
func (c Config) gcAllowed() bool { return conf.Enabled(c.GC.Enabled) }

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
	checkStorage(&ps, c.Storage, c.GC)
	seen := map[string]bool{}
	for i, m := range c.Mirrors {
		p := conf.Index("mirrors", i)
		if m.Name == "" || strings.ContainsAny(m.Name, "/ ?#@") {
			ps.Add(p, "use the upstream's host name, e.g. docker.io", "%q is not a registry name", m.Name)
		} else if seen[m.Name] {
			ps.Add(p, "list each upstream once", "%s is listed twice", m.Name)
		}
		seen[m.Name] = true
		if m.Name != "" && registryHost(m.Name+"/x") == "" {
			ps.Add(p, "use the upstream's host name, e.g. docker.io or registry.k8s.io", "%q is not a registry host name (it needs a dot, a port or to be localhost)", m.Name)
		}
		if (m.Username == "") != (m.Password == "") {
			ps.Add(p, "give both username and password, or neither", "%s: username and password go together", m.Name)
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

// storageDrivers are the distribution storage drivers compiled into airgapd.
var storageDrivers = []string{"filesystem", "s3"}

// checkStorage checks the storage passthrough as far as airgapd can before
// distribution sees it: one known driver, and only the sections airgapd does
// not manage itself; on s3, which several hosts may share, gc.enabled said
// outright.
func checkStorage(ps *conf.Problems, st map[string]map[string]any, gc GC) {
	var drivers []string
	for k := range st {
		switch k {
		case "redirect":
			if v, ok := st[k]["disable"]; ok {
				if _, isBool := v.(bool); !isBool {
					ps.Add("storage.redirect.disable", "write true or false", "%v is not a boolean", v)
				}
			}
		case "delete":
			ps.Add("storage.delete", "remove it: deletion is always on, and only registry.users may delete", "airgapd manages storage.delete")
		case "maintenance":
			ps.Add("storage.maintenance", "remove it: airgapd purges stale uploads itself, and `airgapd registry gc` collects garbage", "airgapd manages storage.maintenance")
		case "cache":
			ps.Add("storage.cache", "remove it: a blob descriptor cache would outlive garbage collection", "storage.cache is not supported")
		case "tag":
			ps.Add("storage.tag", "remove it", "storage.tag is not supported")
		default:
			if !slices.Contains(storageDrivers, k) {
				ps.Add(conf.Join("storage", k), "use one of "+strings.Join(storageDrivers, ", "), "unknown storage driver %q", k)
				continue
			}
			drivers = append(drivers, k)
		}
	}
	if len(drivers) > 1 {
		slices.Sort(drivers)
		ps.Add("storage", "keep one", "more than one storage driver: %s", strings.Join(drivers, ", "))
	}
	if p, ok := st["filesystem"]; ok {
		if v, ok := p["rootdirectory"]; ok {
			if s, isStr := v.(string); !isStr || !strings.HasPrefix(s, "/") {
				ps.Add("storage.filesystem.rootdirectory", "write an absolute path, or leave it out for data_dir/registry", "%v is not an absolute path", v)
			}
		}
	}
	if p, ok := st["s3"]; ok {
		if gc.Enabled == nil {
			ps.Add("storage.s3", "add gc: {enabled: true} on the one host that collects garbage and gc: {enabled: false} on every other host sharing the bucket (one host alone on it: true)",
				"registry.gc.enabled is not set: s3 storage may be shared by several airgapd hosts, and distribution's garbage collection is safe from one host only")
		}
		for _, k := range []string{"region", "bucket"} {
			if v, _ := p[k].(string); v == "" {
				ps.Add(conf.Join("storage.s3", k), "distribution's s3 driver needs it (for Ceph RGW or MinIO any region name works, with regionendpoint)", "missing %s", k)
			}
		}
	}
}
