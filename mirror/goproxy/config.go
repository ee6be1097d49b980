package goproxy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"

	"github.com/airgapd/airgapd/internal/conf"
)

// Config is the `goproxy:` section: Go modules synced from an upstream
// GOPROXY for the listed modules and go.mod files, served at /goproxy/ on
// mirror.listen, with the checksum database proxied and cached beside them.
type Config struct {
	Enabled *bool `yaml:"enabled,omitempty"`
	// Upstream is a GOPROXY base URL (what GOPROXY= names), fetched from
	// when syncing.
	Upstream string `yaml:"upstream"`
	// Username and Password, when set, are sent to the upstream (basic
	// auth, as the go command does from .netrc).
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Proxy is an http:// proxy URL; "_none_" or "" means direct even when
	// the environment names one; absent means the environment's.
	Proxy *string `yaml:"proxy"`
	// SSLCACert, when set, is the only CA trusted for the upstream's and
	// the checksum database's certificates.
	SSLCACert string `yaml:"sslcacert"`
	// Modules are PATH@VERSION to mirror, each with its go.mod and zip.
	Modules []string `yaml:"modules"`
	// GoMod are go.mod files: every requirement they list, and every
	// module and go.mod line of the go.sum next to each (the complete
	// build list `go mod tidy` wrote), is mirrored and verified against it.
	GoMod []string `yaml:"go_mod"`
	// SumDB is the checksum database the nodes name in GOSUMDB: looked up
	// for every synced module (its answer verified with Key and compared
	// with go.sum), and proxied at /goproxy/sumdb/NAME/ with a cache, so
	// the nodes' GOSUMDB checks work offline.
	SumDB SumDB `yaml:"sumdb"`
	// Parallel is how many files a sync downloads at once.
	Parallel int `yaml:"parallel"`
}

// SumDB is one checksum database: Key is its verifier key as GOSUMDB
// writes it (NAME+HASH+KEY), Name its name (the key's when empty), URL
// where it answers (https://NAME when empty). Skip lists module path
// patterns it does not cover (GONOSUMDB's syntax), verified by go.sum only.
type SumDB struct {
	Name string   `yaml:"name"`
	URL  string   `yaml:"url"`
	Key  string   `yaml:"key"`
	Skip []string `yaml:"skip"`
}

// Enabled reports whether the checksum database is configured.
func (s SumDB) Enabled() bool { return s.Key != "" }

// name is the database's name: Name, or the key's.
func (s SumDB) name() string {
	if s.Name != "" {
		return s.Name
	}
	n, _, _ := strings.Cut(s.Key, "+")
	return n
}

// url is where the database answers, without a trailing slash.
func (s SumDB) url() string {
	if s.URL != "" {
		return strings.TrimSuffix(s.URL, "/")
	}
	return "https://" + s.name()
}

// skips reports whether path is one the database does not cover.
func (s SumDB) skips(path string) bool {
	return len(s.Skip) > 0 && module.MatchPrefixPatterns(strings.Join(s.Skip, ","), path)
}

// DefaultConfig is what an empty `goproxy: {}` section means.
func DefaultConfig() Config { return Config{Parallel: 4} }

const noProxy = "_none_"

// Validate reports every problem in the section. go.mod files must exist
// (a sync reads them); the upstream need not answer.
func (c Config) Validate() error {
	var ps conf.Problems
	if c.Upstream != "" {
		if u, err := url.Parse(c.Upstream); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			ps.Add("upstream", "write a GOPROXY base URL like https://proxy.example/ (http or https)", "%q is not an http(s) URL", c.Upstream)
		}
	} else if len(c.Modules) > 0 || len(c.GoMod) > 0 {
		ps.Add("upstream", "name the GOPROXY to sync from", "modules or go_mod are listed but no upstream is")
	}
	if c.Proxy != nil && *c.Proxy != "" && *c.Proxy != noProxy {
		if u, err := url.Parse(*c.Proxy); err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5") || u.Host == "" {
			ps.Add("proxy", "write http://host:port, or _none_ to go direct", "%q is not a proxy URL", *c.Proxy)
		}
	}
	conf.CheckFile(&ps, "sslcacert", c.SSLCACert)
	if c.Parallel < 1 || c.Parallel > 32 {
		ps.Add("parallel", "use 1 to 32; 4 is a good start", "parallel is %d", c.Parallel)
	}
	for i, m := range c.Modules {
		if _, err := parseModule(m); err != nil {
			ps.Add(conf.Index("modules", i), "write PATH@VERSION with a full semantic version, like lab.test/greet@v1.2.0", "%v", err)
		}
	}
	for i, f := range c.GoMod {
		conf.CheckFile(&ps, conf.Index("go_mod", i), f)
	}
	c.SumDB.check(&ps)
	return ps.Err()
}

func (s SumDB) check(ps *conf.Problems) {
	if !s.Enabled() {
		if s.Name != "" || s.URL != "" {
			ps.Add("sumdb.key", "give the database's verifier key as GOSUMDB writes it (NAME+HASH+KEY)", "sumdb has no key")
		}
		return
	}
	v, err := note.NewVerifier(s.Key)
	if err != nil {
		ps.Add("sumdb.key", "give the verifier key as GOSUMDB writes it (NAME+HASH+KEY)", "%q is not a verifier key: %v", s.Key, err)
		return
	}
	if s.Name != "" && s.Name != v.Name() {
		ps.Add("sumdb.name", "leave it out or make it the key's name", "the key is %q's, not %q's", v.Name(), s.Name)
	}
	if strings.ContainsAny(s.name(), "/\\") || s.name() == ".." || s.name() == "." {
		ps.Add("sumdb.name", "use a host name", "%q cannot name a folder", s.name())
	}
	if s.URL != "" {
		if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			ps.Add("sumdb.url", "write the database's base URL (http or https)", "%q is not an http(s) URL", s.URL)
		}
	}
}

// parseModule reads PATH@VERSION.
func parseModule(s string) (module.Version, error) {
	p, v, ok := strings.Cut(s, "@")
	if !ok {
		return module.Version{}, fmt.Errorf("%q has no @VERSION", s)
	}
	m := module.Version{Path: p, Version: v}
	if err := module.Check(p, v); err != nil {
		return m, err
	}
	return m, nil
}

// configure adapts a fetcher's transport to the config: its proxy and CA.
func (c Config) configure(tr *http.Transport) error {
	switch {
	case c.Proxy == nil:
	case *c.Proxy == "" || *c.Proxy == noProxy:
		tr.Proxy = nil
	default:
		u, err := url.Parse(*c.Proxy)
		if err != nil {
			return fmt.Errorf("proxy %q: %w", *c.Proxy, err)
		}
		tr.Proxy = http.ProxyURL(u)
	}
	if c.SSLCACert != "" {
		pem, err := os.ReadFile(c.SSLCACert)
		if err != nil {
			return fmt.Errorf("sslcacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("sslcacert %s holds no PEM certificate; give the CA in PEM", c.SSLCACert)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return nil
}
