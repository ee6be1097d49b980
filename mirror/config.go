package mirror

import (
	"net/url"
	"regexp"

	"github.com/airgapd/airgapd/internal/conf"
)

// Config is the `mirror:` section: RPM repositories mirrored from a baseurl
// or indexed from a local folder, and a folder of plain files, all served
// on Listen (plain HTTP, like the seeds' nginx).
type Config struct {
	Enabled *bool  `yaml:"enabled,omitempty"`
	Listen  string `yaml:"listen"`
	Repos   []Repo `yaml:"repos"`
	Files   string `yaml:"files"`
	// Parallel is how many packages one sync downloads at once (dnf's
	// max_parallel_downloads).
	Parallel int `yaml:"parallel"`
}

// Repo is one repository: exactly one of BaseURL (mirrored) or Path (a local
// folder airgapd indexes).
type Repo struct {
	Name    string `yaml:"name"`
	BaseURL string `yaml:"baseurl"`
	Path    string `yaml:"path"`
	// Arch, when set, downloads only packages of these architectures
	// (reposync --arch). The upstream metadata is published unchanged, so
	// it still names the others; dnf on a node of a listed arch never asks
	// for them.
	Arch []string `yaml:"arch"`
	// Delete removes packages the upstream dropped (reposync --delete);
	// otherwise they stay downloadable by URL, unlisted.
	Delete bool `yaml:"delete"`
}

// Mirrored reports whether the repo is synced from an upstream.
func (r Repo) Mirrored() bool { return r.BaseURL != "" }

// DefaultConfig is what an empty `mirror: {}` section means.
func DefaultConfig() Config { return Config{Listen: ":80", Parallel: 4} }

// maxParallel bounds downloads per sync: enough to fill a link, few enough
// not to look like an attack to a public mirror.
const maxParallel = 32

// repoName is what dnf accepts as a repo id, and what is safe as a folder name.
var repoName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)

// archName is an RPM architecture as primary.xml writes it.
var archName = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// Validate reports every problem in the section. Local repo folders and the
// files folder are not required to exist: airgapd creates and fills them.
func (c Config) Validate() error {
	var ps conf.Problems
	conf.CheckListen(&ps, "listen", c.Listen)
	if c.Parallel < 1 || c.Parallel > maxParallel {
		ps.Add("parallel", "use 1 to 32; 4 is a good start", "parallel is %d", c.Parallel)
	}
	seen := map[string]bool{}
	for i, r := range c.Repos {
		p := conf.Index("repos", i)
		switch {
		case !repoName.MatchString(r.Name):
			ps.Add(conf.Join(p, "name"), "use letters, digits, '.', '_', ':' or '-', as dnf repo ids do", "%q is not a usable repo name", r.Name)
		case seen[r.Name]:
			ps.Add(conf.Join(p, "name"), "give each repo its own name", "repo %q is defined twice", r.Name)
		}
		seen[r.Name] = true
		switch {
		case r.BaseURL == "" && r.Path == "":
			ps.Add(p, "give baseurl: to mirror a repo or path: to index a local folder", "repo %q has neither baseurl nor path", r.Name)
		case r.BaseURL != "" && r.Path != "":
			ps.Add(p, "keep one of them", "repo %q has both baseurl and path", r.Name)
		case r.BaseURL != "":
			if u, err := url.Parse(r.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				ps.Add(conf.Join(p, "baseurl"), "write an http:// or https:// URL", "%q is not a repo URL", r.BaseURL)
			}
		}
		if r.Path != "" && (len(r.Arch) > 0 || r.Delete) {
			ps.Add(p, "arch and delete apply to mirrored repos (baseurl:) only", "repo %q is a local folder", r.Name)
		}
		for j, a := range r.Arch {
			if !archName.MatchString(a) {
				ps.Add(conf.Index(conf.Join(p, "arch"), j), "write an RPM arch like x86_64, aarch64 or noarch", "%q is not an architecture", a)
			}
		}
	}
	return ps.Err()
}

// repo returns the repo named name.
func (c Config) repo(name string) (Repo, bool) {
	for _, r := range c.Repos {
		if r.Name == name {
			return r, true
		}
	}
	return Repo{}, false
}
