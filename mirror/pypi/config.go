package pypi

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/airgapd/airgapd/internal/conf"
)

// Config is the `pypi:` section: a simple index synced from upstream
// simple indexes for the projects requirements files and package specs
// name, plus in-house packages uploaded with twine, served at /pypi/ on
// mirror.listen.
type Config struct {
	Enabled   *bool      `yaml:"enabled,omitempty"`
	Upstreams []Upstream `yaml:"upstreams"`
	// Requirements are pinned requirements files (name==version, with
	// --hash=sha256:… when present), as pip-compile --generate-hashes or
	// pip freeze write them; every line is mirrored, nothing is resolved.
	Requirements []string `yaml:"requirements"`
	// Packages are requirement specs ("name", "name==1.2", "name>=1,<2"):
	// every file of every matching version is mirrored.
	Packages []string `yaml:"packages"`
	// Platforms are wheel platform tags (manylinux_2_17_x86_64,
	// manylinux2014_x86_64, linux_x86_64, any …; "any" always matches);
	// empty means every platform.
	Platforms []string `yaml:"platforms"`
	// PythonVersions are the interpreters wheels are taken for ("3.11",
	// "3.12"); empty means every one.
	PythonVersions []string `yaml:"python_versions"`
	// SDists mirrors source distributions too (.tar.gz, .zip).
	SDists bool `yaml:"sdists"`
	// Users may upload in-house packages (twine upload); their passwords
	// are bcrypt hashes.
	Users []User `yaml:"users"`
	// Parallel is how many files one sync downloads at once.
	Parallel int `yaml:"parallel"`
}

// Upstream is one simple index (the folder that holds /NAME/ pages).
type Upstream struct {
	Name     string `yaml:"name"`
	URL      string `yaml:"url"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Proxy is an http:// proxy URL; empty means the environment's.
	Proxy string `yaml:"proxy"`
	// SSLCACert, when set, is the only CA trusted for the upstream.
	SSLCACert string `yaml:"sslcacert"`
}

// User may upload with twine.
type User struct {
	Name         string `yaml:"name"`
	PasswordHash string `yaml:"password_hash"`
}

// DefaultConfig is what an empty `pypi: {}` section means.
func DefaultConfig() Config { return Config{Parallel: 4} }

var (
	platformTag = regexp.MustCompile(`^[a-z0-9_.]+$`)
	pyVersion   = regexp.MustCompile(`^3\.[0-9]{1,2}$`)
	upstreamRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
)

// Validate reports every problem in the section. Requirements files must
// exist: a sync reads them.
func (c Config) Validate() error {
	var ps conf.Problems
	if c.Parallel < 1 || c.Parallel > 32 {
		ps.Add("parallel", "use 1 to 32; 4 is a good start", "parallel is %d", c.Parallel)
	}
	seen := map[string]bool{}
	for i, u := range c.Upstreams {
		p := conf.Index("upstreams", i)
		if !upstreamRE.MatchString(u.Name) || seen[u.Name] {
			ps.Add(conf.Join(p, "name"), "give each upstream a name of its own (letters, digits, '.', '_', '-')", "%q is not a usable upstream name", u.Name)
		}
		seen[u.Name] = true
		if err := checkURL(u.URL); err != nil {
			ps.Add(conf.Join(p, "url"), "write the simple index's URL, e.g. https://pypi.example.internal/simple/", "%v", err)
		}
		if u.Proxy != "" {
			if pu, err := url.Parse(u.Proxy); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
				ps.Add(conf.Join(p, "proxy"), "write an http:// proxy URL", "%q is not a proxy URL", u.Proxy)
			}
		}
		if u.SSLCACert != "" {
			conf.CheckFile(&ps, conf.Join(p, "sslcacert"), u.SSLCACert)
		}
		if (u.Username == "") != (u.Password == "") {
			ps.Add(p, "give both username and password, or neither", "upstream %q has only one of username and password", u.Name)
		}
	}
	if (len(c.Requirements) > 0 || len(c.Packages) > 0) && len(c.Upstreams) == 0 {
		ps.Add("upstreams", "name the simple index to sync from", "requirements or packages are listed but no upstream")
	}
	for i, f := range c.Requirements {
		conf.CheckFile(&ps, conf.Index("requirements", i), f)
	}
	for i, s := range c.Packages {
		if _, err := ParseSpec(s); err != nil {
			ps.Add(conf.Index("packages", i), `write a name and optional version specifiers, e.g. "requests>=2.31,<3"`, "%v", err)
		}
	}
	for i, t := range c.Platforms {
		if !platformTag.MatchString(t) {
			ps.Add(conf.Index("platforms", i), "write a wheel platform tag, e.g. manylinux_2_17_x86_64 or any", "%q is not a platform tag", t)
		}
	}
	for i, v := range c.PythonVersions {
		if !pyVersion.MatchString(v) {
			ps.Add(conf.Index("python_versions", i), `write a Python 3 version, e.g. "3.11"`, "%q is not a Python version", v)
		}
	}
	users := map[string]bool{}
	for i, u := range c.Users {
		p := conf.Index("users", i)
		if u.Name == "" || strings.ContainsAny(u.Name, ": ") || users[u.Name] {
			ps.Add(conf.Join(p, "name"), "give each user a name of its own, with no ':' or space", "%q is not a usable user name", u.Name)
		}
		users[u.Name] = true
		if !strings.HasPrefix(u.PasswordHash, "$2") {
			ps.Add(conf.Join(p, "password_hash"), "store a bcrypt hash ($2a$…, htpasswd -nbB), never the password", "password_hash is not a bcrypt hash")
		}
	}
	return ps.Err()
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	return nil
}
