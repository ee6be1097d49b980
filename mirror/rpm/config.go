package rpm

import (
	"regexp"
	"strings"
	"time"

	"github.com/airgapd/airgapd/internal/conf"
	"github.com/airgapd/airgapd/mirror"
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
	// IndexEvery is how often the server scans local repo folders and
	// re-indexes those that changed; 0 turns the scan off (index with
	// `airgapd mirror index`).
	IndexEvery conf.Duration `yaml:"index_every"`
	// SyncEvery and SyncAt schedule syncs of every mirrored repo
	// (schedule.go): SyncEvery after the last sync began, or daily at
	// SyncAt ("HH:MM", local time); one or the other. Neither: syncs run
	// only when asked. A repo's own sync_every or sync_at replaces these.
	SyncEvery conf.Duration `yaml:"sync_every"`
	SyncAt    string        `yaml:"sync_at"`
	// IndexWorkers is how many RPM headers an index reads at once; 0 means
	// one per CPU.
	IndexWorkers int `yaml:"index_workers"`
	// SigningKey is an armored OpenPGP private key (no passphrase) that
	// signs repomd.xml of repos with sign: true; empty means a key airgapd
	// generates once under data_dir/mirror/signing-key.asc.
	SigningKey string `yaml:"signing_key"`
	// Vars are the values of $releasever, $basearch and any other
	// variable repo URLs use, as dnf's --releasever and /etc/dnf/vars
	// give them; a repo's own vars override these.
	Vars map[string]string `yaml:"vars"`
}

// Repo is one repository: exactly one of BaseURL, Mirrorlist or Metalink
// (mirrored) or Path (a local folder airgapd indexes).
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
	// Keep, when above 0, downloads only the Keep newest versions of each
	// name and arch (reposync --newest-only is keep: 1); the metadata is
	// the upstream's all the same (newest.go).
	Keep int `yaml:"keep"`
	// GPGCheck verifies every package's signature against GPGKey before a
	// sync publishes anything, and gives the nodes gpgcheck=1 and the key
	// in the .repo file (pkgsig.go). GPGKey is one or more armored public
	// keys, space-separated as in dnf: a file (/path or file:///path) or a
	// URL, absolute or relative to baseurl.
	GPGCheck bool   `yaml:"gpgcheck"`
	GPGKey   string `yaml:"gpgkey"`
	// SyncEvery and SyncAt replace the mirror's schedule for this repo;
	// sync_every: 0 means it syncs only when asked.
	SyncEvery *conf.Duration `yaml:"sync_every"`
	SyncAt    string         `yaml:"sync_at"`
	// Compress is a local repo's metadata compression: gz (the default,
	// readable by every dnf and yum) or zstd (createrepo_c 1.x's default;
	// RHEL and its rebuilds before 8.4 cannot read it).
	Compress string `yaml:"compress"`
	// Sign writes repodata/repomd.xml.asc for a local repo and puts the
	// key and repo_gpgcheck=1 in its .repo file.
	Sign bool `yaml:"sign"`

	// How a mirrored repo reaches its upstream, with dnf.conf(5)'s names
	// (upstream.go). Mirrorlist is a URL of a list of baseurls, one a line;
	// Metalink a URL of a metalink 3.0 file giving repomd.xml's hashes
	// and mirrors. $releasever, $basearch and other vars are substituted
	// in all three URLs.
	Mirrorlist string            `yaml:"mirrorlist"`
	Metalink   string            `yaml:"metalink"`
	Vars       map[string]string `yaml:"vars"`
	// Proxy is an http:// proxy URL; "_none_" or "" means direct even when
	// the environment names a proxy; absent means the environment's
	// (HTTPS_PROXY, HTTP_PROXY, NO_PROXY).
	Proxy         *string `yaml:"proxy"`
	ProxyUsername string  `yaml:"proxy_username"`
	ProxyPassword string  `yaml:"proxy_password"`
	// SSLCACert, when set, is the only CA trusted for the upstream's
	// certificate; SSLClientCert and SSLClientKey are a client certificate
	// for upstreams that ask for one (RHEL CDN, Satellite). SSLVerify false
	// skips the check of the upstream's certificate (logged as a warning).
	SSLCACert     string `yaml:"sslcacert"`
	SSLClientCert string `yaml:"sslclientcert"`
	SSLClientKey  string `yaml:"sslclientkey"`
	SSLVerify     *bool  `yaml:"sslverify"`
}

// Mirrored reports whether the repo is synced from an upstream.
func (r Repo) Mirrored() bool { return r.BaseURL != "" || r.Mirrorlist != "" || r.Metalink != "" }

// DefaultConfig is what an empty `mirror: {}` section means.
func DefaultConfig() Config {
	return Config{Listen: ":80", Parallel: 4, IndexEvery: conf.Duration(time.Minute)}
}

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
	if c.IndexEvery < 0 {
		ps.Add("index_every", "use a duration like 1m, or 0 to scan never", "index_every is negative")
	}
	if c.IndexWorkers < 0 || c.IndexWorkers > 256 {
		ps.Add("index_workers", "use 0 (one per CPU) to 256", "index_workers is %d", c.IndexWorkers)
	}
	c.checkSchedule(&ps)
	if c.SigningKey != "" {
		conf.CheckFile(&ps, "signing_key", c.SigningKey)
	}
	checkVars(&ps, "vars", c.Vars)
	seen := map[string]bool{}
	for i, r := range c.Repos {
		p := conf.Index("repos", i)
		switch {
		case !mirror.ValidName(r.Name):
			ps.Add(conf.Join(p, "name"), "use letters, digits, '.', '_', ':' or '-', as dnf repo ids do", "%q is not a usable repo name", r.Name)
		case seen[r.Name]:
			ps.Add(conf.Join(p, "name"), "give each repo its own name", "repo %q is defined twice", r.Name)
		}
		seen[r.Name] = true
		switch sources := r.sources(); len(sources) {
		case 0:
			ps.Add(p, "give baseurl:, mirrorlist: or metalink: to mirror a repo, or path: to index a local folder", "repo %q has no baseurl, mirrorlist, metalink or path", r.Name)
		case 1:
		default:
			ps.Add(p, "keep one of them", "repo %q has %s", r.Name, strings.Join(sources, " and "))
		}
		r.checkUpstream(&ps, p, c.Vars)
		if r.Path != "" && (len(r.Arch) > 0 || r.Delete) {
			ps.Add(p, "arch and delete apply to mirrored repos (baseurl:) only", "repo %q is a local folder", r.Name)
		}
		if r.Mirrored() && (r.Compress != "" || r.Sign) {
			ps.Add(p, "a mirror publishes its upstream's repodata (and signature) as they are; compress and sign apply to local repos (path:)", "repo %q is a mirror", r.Name)
		}
		if r.Compress != "" && r.Compress != "gz" && r.Compress != "zstd" {
			ps.Add(conf.Join(p, "compress"), "use gz (any dnf or yum) or zstd (EL 8.4 and later only)", "%q is not a metadata compression", r.Compress)
		}
		for j, a := range r.Arch {
			if !archName.MatchString(a) {
				ps.Add(conf.Index(conf.Join(p, "arch"), j), "write an RPM arch like x86_64, aarch64 or noarch", "%q is not an architecture", a)
			}
		}
		c.checkRepoPolicy(&ps, p, r)
	}
	return ps.Err()
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
