package charts

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/airgapd/airgapd/internal/conf"
	"github.com/airgapd/airgapd/mirror"
)

// Config is the `charts:` section: Helm charts kept in the registry's
// charts/ namespace as OCI artifacts, served also as a classic chart
// repository (/charts/index.yaml) on mirror.listen, and the upstream
// classic repositories `airgapd charts sync` copies charts from.
type Config struct {
	Enabled *bool  `yaml:"enabled,omitempty"`
	Repos   []Repo `yaml:"repos"`
	// Parallel is how many .tgz one sync downloads at once.
	Parallel int `yaml:"parallel"`
}

// Repo is one upstream chart repository: a classic one (an index.yaml and
// the .tgz it lists, url http(s)://) or an OCI registry (url
// oci://HOST[:PORT]/PATH, chart NAME at PATH/NAME, each version a tag).
type Repo struct {
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
	// PlainHTTP speaks plain HTTP to an oci:// upstream (helm's
	// --plain-http); without it the registry is asked over TLS.
	PlainHTTP bool `yaml:"plain_http"`
	// Username and Password, when set, are sent (HTTP Basic) to the
	// repository's own host only, as helm does without
	// --pass-credentials.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// SSLCACert, when set, is the only CA trusted for the repository.
	SSLCACert string `yaml:"sslcacert"`
	// Charts are the charts to copy: NAME (its newest version that is no
	// pre-release) or NAME@RANGE (every version in the semver range, as
	// helm's --version reads it: "@1.2.3", "@^1.2", "@>=1.0 <2.0").
	Charts []string `yaml:"charts"`
	// Images, when true, also copies the images the synced charts
	// reference (what `airgapd charts images` lists) into the registry,
	// from their registry.mirrors upstreams, under their upstream names.
	Images bool `yaml:"images"`
}

// DefaultConfig is what an empty `charts: {}` section means.
func DefaultConfig() Config { return Config{Parallel: 4} }

// Validate reports every problem in the section.
func (c Config) Validate() error {
	var ps conf.Problems
	if c.Parallel < 1 || c.Parallel > 64 {
		ps.Add("parallel", "use 1 to 64", "parallel is %d", c.Parallel)
	}
	seen := map[string]bool{}
	for i, r := range c.Repos {
		p := conf.Index("repos", i)
		switch {
		case !mirror.ValidName(r.Name):
			ps.Add(conf.Join(p, "name"), "use letters, digits, '.', '_' and '-'", "repo name %q cannot name a folder", r.Name)
		case seen[r.Name]:
			ps.Add(conf.Join(p, "name"), "give each repo its own name", "repo %q is listed twice", r.Name)
		}
		seen[r.Name] = true
		u, err := url.Parse(r.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "oci") || u.Host == "" || u.RawQuery != "" {
			ps.Add(conf.Join(p, "url"), "write the repository's http:// or https:// URL (where its index.yaml is), or oci://HOST[:PORT]/PATH for an OCI registry", "url %q is not an http(s) or oci URL", r.URL)
		} else if r.PlainHTTP && u.Scheme != "oci" {
			ps.Add(conf.Join(p, "plain_http"), "leave plain_http out: an http:// url says it already", "plain_http is for oci:// urls")
		}
		if (r.Username == "") != (r.Password == "") {
			ps.Add(conf.Join(p, "password"), "set both username and password, or neither", "repo %q has only one of username and password", r.Name)
		}
		conf.CheckFile(&ps, conf.Join(p, "sslcacert"), r.SSLCACert)
		if len(r.Charts) == 0 {
			ps.Add(conf.Join(p, "charts"), "list the charts to copy: NAME or NAME@RANGE", "repo %q lists no charts", r.Name)
		}
		for j, s := range r.Charts {
			if _, err := ParseWanted(s); err != nil {
				ps.Add(conf.Index(conf.Join(p, "charts"), j), "write NAME or NAME@RANGE, e.g. nginx@^15.0", "%v", err)
			}
		}
	}
	return ps.Err()
}

// Wanted is one entry of a repo's charts: a name and, when given, a range.
type Wanted struct {
	Name  string
	Range *semver.Constraints // nil: the newest version that is no pre-release
	Text  string              // as written
}

// ParseWanted reads NAME or NAME@RANGE.
func ParseWanted(s string) (Wanted, error) {
	name, rng, hasRange := strings.Cut(strings.TrimSpace(s), "@")
	w := Wanted{Name: name, Text: s}
	if !validChartName(name) {
		return w, fmt.Errorf("%q is not a chart name", name)
	}
	if hasRange {
		c, err := semver.NewConstraint(rng)
		if err != nil {
			return w, fmt.Errorf("%q: the range %q: %w", s, rng, err)
		}
		w.Range = c
	}
	return w, nil
}

// validChartName is what helm accepts as a chart name and what names a
// repository charts/NAME in the registry.
func validChartName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case (r == '-' || r == '_' || r == '.') && i > 0 && i < len(s)-1:
		default:
			return false
		}
	}
	return true
}
