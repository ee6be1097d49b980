package apt

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/airgapd/airgapd/internal/conf"
	"github.com/airgapd/airgapd/mirror"
)

// Config is the `apt:` section: APT repositories mirrored from an upstream
// (url, suites, components, architectures, verified against keyring) or
// built from a local folder of .deb files (path), served under /apt/NAME/
// on mirror.listen.
type Config struct {
	Enabled *bool  `yaml:"enabled,omitempty"`
	Repos   []Repo `yaml:"repos"`
	// Parallel is how many .deb files one sync downloads at once.
	Parallel int `yaml:"parallel"`
}

// Repo is one APT repository: URL (mirrored) or Path (a local folder of
// .deb files airgapd indexes and signs with the site key).
type Repo struct {
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
	Path string `yaml:"path"`
	// Suites are the dists/ a mirror syncs (jammy, jammy-updates …); a
	// local folder is published as its first (default "stable").
	Suites []string `yaml:"suites"`
	// Components and Architectures filter what a mirror fetches (default
	// main and amd64); a local folder lists its packages under the first
	// component and each architecture (its arch: all packages in each).
	Components    []string `yaml:"components"`
	Architectures []string `yaml:"architectures"`
	// Keyring is the upstream's public key file (armored or binary, as
	// /usr/share/keyrings has them): InRelease or Release.gpg must verify
	// against it before anything the Release names is used.
	Keyring string `yaml:"keyring"`
	// Keep, above 0, downloads only the Keep newest versions of each
	// package and architecture; the indexes stay the upstream's (they are
	// signed), so older versions are listed but not served.
	Keep int `yaml:"keep"`
	// Username and Password are HTTP basic credentials for the upstream.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Proxy is an http:// proxy URL; "" means direct even when the
	// environment names a proxy; absent means the environment's.
	Proxy *string `yaml:"proxy"`
	// SSLCACert, when set, is the only CA trusted for the upstream.
	SSLCACert string `yaml:"sslcacert"`
}

// Mirrored reports whether the repo is synced from an upstream.
func (r Repo) Mirrored() bool { return r.URL != "" }

// DefaultConfig is what an empty `apt: {}` section means.
func DefaultConfig() Config { return Config{Parallel: 4} }

// suitesOf, componentsOf and archesOf are the repo's lists with their
// defaults.
func (r Repo) suitesOf() []string {
	if len(r.Suites) == 0 {
		return []string{"stable"}
	}
	return r.Suites
}

func (r Repo) componentsOf() []string {
	if len(r.Components) == 0 {
		return []string{"main"}
	}
	return r.Components
}

func (r Repo) archesOf() []string {
	if len(r.Architectures) == 0 {
		return []string{"amd64"}
	}
	return r.Architectures
}

// word is a suite, component or architecture name as dists/ has them
// (suites and components may have a slash: jammy/updates, non-free/x11).
var word = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+~-]*(/[A-Za-z0-9][A-Za-z0-9._+~-]*)*$`)

// Validate reports every problem in the section.
func (c Config) Validate() error {
	var ps conf.Problems
	if c.Parallel < 1 || c.Parallel > 32 {
		ps.Add("parallel", "use 1 to 32; 4 is a good start", "parallel is %d", c.Parallel)
	}
	seen := map[string]bool{}
	for i, r := range c.Repos {
		p := conf.Index("repos", i)
		switch {
		case !mirror.ValidName(r.Name):
			ps.Add(conf.Join(p, "name"), "use letters, digits, '.', '_', ':' or '-'", "%q is not a usable repo name", r.Name)
		case seen[r.Name]:
			ps.Add(conf.Join(p, "name"), "give each repo its own name", "repo %q is defined twice", r.Name)
		}
		seen[r.Name] = true
		switch {
		case r.URL == "" && r.Path == "":
			ps.Add(p, "give url: (with suites: and keyring:) to mirror a repo, or path: to index a local folder of .deb files", "repo %q has no url or path", r.Name)
		case r.URL != "" && r.Path != "":
			ps.Add(p, "keep one of them", "repo %q has url and path", r.Name)
		case r.Mirrored():
			checkMirror(&ps, p, r)
		default:
			if r.Keyring != "" || r.Username != "" || r.Proxy != nil || r.SSLCACert != "" || r.Keep != 0 {
				ps.Add(p, "keyring, keep, credentials, proxy and sslcacert apply to mirrored repos (url:) only; a local folder is signed with the site key", "repo %q is a local folder", r.Name)
			}
		}
		for _, l := range []struct {
			key  string
			list []string
		}{{"suites", r.Suites}, {"components", r.Components}, {"architectures", r.Architectures}} {
			for j, w := range l.list {
				if !word.MatchString(w) || strings.Contains(w, "..") {
					ps.Add(conf.Index(conf.Join(p, l.key), j), "write a name as dists/ has it: jammy, main, amd64", "%q is not a usable name", w)
				}
			}
		}
	}
	return ps.Err()
}

func checkMirror(ps *conf.Problems, p string, r Repo) {
	if u, err := url.Parse(r.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		ps.Add(conf.Join(p, "url"), "give the repo's http:// or https:// root, the folder that holds dists/", "%q is not an http(s) URL", r.URL)
	}
	if len(r.Suites) == 0 {
		ps.Add(conf.Join(p, "suites"), "list the dists/ to mirror, e.g. [jammy, jammy-updates]", "repo %q has no suites", r.Name)
	}
	if r.Keyring == "" {
		ps.Add(conf.Join(p, "keyring"), "give the upstream's public key file (as in /usr/share/keyrings): nothing is mirrored unverified", "repo %q has no keyring", r.Name)
	} else {
		conf.CheckFile(ps, conf.Join(p, "keyring"), r.Keyring)
	}
	if r.SSLCACert != "" {
		conf.CheckFile(ps, conf.Join(p, "sslcacert"), r.SSLCACert)
	}
	if r.Proxy != nil && *r.Proxy != "" {
		if u, err := url.Parse(*r.Proxy); err != nil || u.Host == "" {
			ps.Add(conf.Join(p, "proxy"), "give an http://HOST:PORT proxy, or \"\" for direct", "%q is not a proxy URL", *r.Proxy)
		}
	}
	if r.Keep < 0 {
		ps.Add(conf.Join(p, "keep"), "use 0 (all versions) or the number of newest versions to keep", "keep is %d", r.Keep)
	}
}

// Lookup returns the repo named name.
func (c Config) Lookup(name string) (Repo, bool) {
	for _, r := range c.Repos {
		if r.Name == name {
			return r, true
		}
	}
	return Repo{}, false
}
