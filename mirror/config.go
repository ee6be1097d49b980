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
}

// Repo is one repository: exactly one of BaseURL (mirrored) or Path (a local
// folder airgapd indexes).
type Repo struct {
	Name    string `yaml:"name"`
	BaseURL string `yaml:"baseurl"`
	Path    string `yaml:"path"`
}

// DefaultConfig is what an empty `mirror: {}` section means.
func DefaultConfig() Config { return Config{Listen: ":80"} }

// repoName is what dnf accepts as a repo id, and what is safe as a folder name.
var repoName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)

// Validate reports every problem in the section. Local repo folders and the
// files folder are not required to exist: airgapd creates and fills them.
func (c Config) Validate() error {
	var ps conf.Problems
	conf.CheckListen(&ps, "listen", c.Listen)
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
	}
	return ps.Err()
}
