package server

import (
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/dnsd"
	"github.com/airgapd/airgapd/gateway"
	"github.com/airgapd/airgapd/internal/conf"
	"github.com/airgapd/airgapd/mirror/apt"
	"github.com/airgapd/airgapd/mirror/charts"
	"github.com/airgapd/airgapd/mirror/goproxy"
	"github.com/airgapd/airgapd/mirror/pypi"
	"github.com/airgapd/airgapd/mirror/rpm"
	"github.com/airgapd/airgapd/ntpd"
	"github.com/airgapd/airgapd/registry"
	"github.com/airgapd/airgapd/web"
)

// Config is the whole airgapd.yaml. A service section that is absent (nil
// here) or says `enabled: false` does not run.
type Config struct {
	DataDir    string           `yaml:"data_dir"`
	RuntimeDir string           `yaml:"runtime_dir"`
	Log        LogConfig        `yaml:"log"`
	Advertise  Advertise        `yaml:"advertise"`
	Web        *web.Config      `yaml:"web"`
	DNS        *dnsd.Config     `yaml:"dns"`
	NTP        *ntpd.Config     `yaml:"ntp"`
	Gateway    *gateway.Config  `yaml:"gateway"`
	Mirror     *rpm.Config      `yaml:"mirror"`
	Registry   *registry.Config `yaml:"registry"`
	Apt        *apt.Config      `yaml:"apt"`
	PyPI       *pypi.Config     `yaml:"pypi"`
	GoProxy    *goproxy.Config  `yaml:"goproxy"`
	HA         *HAConfig        `yaml:"ha"`
	Charts     *charts.Config   `yaml:"charts"`

	// Source names where the config came from, for messages; not a key.
	Source string `yaml:"-"`
}

// LogConfig is the `log:` section.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // text | json
}

// Advertise is how nodes reach this host: the name and addresses that go into
// .repo baseurls, node.sh, containerd's hosts.toml and the certificates.
type Advertise struct {
	Name      string   `yaml:"name"`
	Addresses []string `yaml:"addresses"`
}

// devConfig is what `airgapd serve` runs with no --config; a test keeps it
// identical to examples/dev.yaml.
//
//go:embed dev.yaml
var devConfig []byte

// DevConfigSource names the built-in development config in messages.
const DevConfigSource = "built-in development defaults (examples/dev.yaml)"

// DevConfig returns the built-in development defaults.
func DevConfig() []byte { return slices.Clone(devConfig) }

// LoadFile reads, decodes and validates a config file. The error, when there
// is one, is a *CheckError listing every problem with its file:line:col.
func LoadFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// LoadDev returns the built-in development defaults.
func LoadDev() (*Config, error) {
	cfg, err := Parse(DevConfigSource, devConfig)
	if err != nil {
		return nil, fmt.Errorf("built-in defaults are broken (a bug): %w", err)
	}
	return cfg, nil
}

// Diagnostic is one problem with its place in the file: the api package's
// ConfigProblem, which web shows and the API returns too.
type Diagnostic = api.ConfigProblem

// CheckError is every problem found in one config file.
type CheckError struct {
	Diagnostics []Diagnostic
}

func (e *CheckError) Error() string {
	lines := make([]string, len(e.Diagnostics))
	for i, d := range e.Diagnostics {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// Parse decodes and validates a config. source names it in diagnostics.
//
// It does more than yaml.v3's strict mode: KnownFields stops at the first
// unknown key, while `airgapd check` must report every problem at once, each
// with its line, as named-checkconf does. So the document is walked against
// the Config type first, collecting unknown keys and malformed values; bad
// nodes are then neutralised so decoding can go on and validation can find
// the rest.
func Parse(source string, data []byte) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &CheckError{Diagnostics: []Diagnostic{yamlErrorDiagnostic(source, data, err)}}
	}
	cfg := &Config{Source: source}
	if len(doc.Content) == 0 { // empty file: all defaults, no services
		cfg.applyTopDefaults()
		return cfg, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &CheckError{Diagnostics: []Diagnostic{{File: source, Line: root.Line, Col: root.Column,
			Msg: "the config must be a mapping of keys like data_dir:, dns:, ntp:", Hint: "see examples/lab.yaml"}}}
	}
	w := walker{source: source}
	w.walk(root, reflect.TypeOf(Config{}), "")
	// An empty `dns:` means the section with its defaults, not "absent".
	for i := 0; i+1 < len(root.Content); i += 2 {
		if v := root.Content[i+1]; v.Tag == "!!null" && isServiceKey(root.Content[i].Value) {
			*v = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: v.Line, Column: v.Column}
		}
	}

	cfg.setSectionDefaults(root)
	if err := root.Decode(cfg); err != nil {
		w.diags = append(w.diags, typeErrorDiagnostics(source, err)...)
	}
	cfg.Source = source
	cfg.applyTopDefaults()

	if err := cfg.Validate(); err != nil {
		var ps conf.Problems
		if errors.As(err, &ps) {
			for _, p := range ps {
				if !w.alreadyReported(p.Path) {
					w.diags = append(w.diags, w.at(root, p))
				}
			}
		} else {
			w.diags = append(w.diags, Diagnostic{File: source, Msg: err.Error()})
		}
	}
	if len(w.diags) > 0 {
		sort.SliceStable(w.diags, func(i, j int) bool {
			a, b := w.diags[i], w.diags[j]
			if a.File != b.File { // the config's own problems first
				return a.File == source
			}
			return a.Line < b.Line || (a.Line == b.Line && a.Col < b.Col)
		})
		return nil, &CheckError{Diagnostics: w.diags}
	}
	return cfg, nil
}

// setSectionDefaults points each present section at its package's defaults
// before decoding, so keys the user left out keep their documented values.
// Absent sections stay nil.
func (c *Config) setSectionDefaults(root *yaml.Node) {
	present := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		present[root.Content[i].Value] = true
	}
	for _, sv := range services() {
		if present[sv.key] {
			f := c.sectionField(sv.key)
			d := reflect.New(f.Type().Elem())
			d.Elem().Set(reflect.ValueOf(sv.defaults()))
			f.Set(d)
		}
	}
}

func (c *Config) applyTopDefaults() {
	if c.DataDir == "" {
		c.DataDir = "/var/lib/airgapd"
	}
	if c.RuntimeDir == "" {
		c.RuntimeDir = "/run/airgapd"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
}

// Validate checks every section, then what only the whole file can tell:
// two services on one address.
func (c *Config) Validate() error {
	var ps conf.Problems
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		ps.Add("log.level", "use debug, info, warn or error", "log level is %q", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		ps.Add("log.format", "use text or json", "log format is %q", c.Log.Format)
	}
	for _, d := range []struct{ key, dir string }{{"data_dir", c.DataDir}, {"runtime_dir", c.RuntimeDir}} {
		if systemFolder(d.dir) {
			ps.Add(d.key, "give airgapd a folder of its own, e.g. /var/lib/airgapd (data_dir) or /run/airgapd (runtime_dir)",
				"%s is %s: airgapd creates, locks and cleans files there", d.key, d.dir)
		}
	}
	if c.Advertise.Name != "" {
		if !validHostname(c.Advertise.Name) {
			ps.Add("advertise.name", "nodes use this name in .repo files and certificates", "%q is not a host name", c.Advertise.Name)
		}
	}
	for i, a := range c.Advertise.Addresses {
		if _, err := netip.ParseAddr(a); err != nil {
			ps.Add(conf.Index("advertise.addresses", i), "write the address nodes use to reach this host, e.g. 192.168.10.10", "%q is not an IP address", a)
		}
	}
	// Disabled sections are checked too, as named-checkconf checks every
	// zone: turning one on later should not reveal old mistakes.
	for _, s := range c.sections() {
		if s.present {
			ps.Nest(s.key, s.validate())
		}
	}
	c.checkListenClashes(&ps)
	c.checkMounts(&ps)
	c.checkCharts(&ps)
	return ps.Err()
}

var hostnameRE = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$`)

func validHostname(s string) bool { return len(s) <= 253 && hostnameRE.MatchString(s) }

func isServiceKey(key string) bool {
	for _, sv := range services() {
		if sv.key == key {
			return true
		}
	}
	return false
}

// section is one service section, seen generically.
type section struct {
	key      string
	present  bool // the section is in the file
	enabled  bool // present and not enabled: false
	validate func() error
}

// sections are the service sections in the order of Config's fields (the
// order of the documented file), which is the order they are checked and
// their sockets opened.
func (c *Config) sections() []section {
	var ss []section
	for _, sv := range configOrder() {
		ss = append(ss, c.section(sv.key))
	}
	return ss
}

// section reads one service section; key must be a service's.
func (c *Config) section(key string) section {
	f := c.sectionField(key)
	s := section{key: key, present: !f.IsNil()}
	if s.present {
		s.enabled = conf.Enabled(f.Elem().FieldByName("Enabled").Interface().(*bool))
		s.validate = f.Interface().(interface{ Validate() error }).Validate
	}
	return s
}

// sectionField is the Config field (a pointer to the package's Config)
// whose yaml key is key. A key that is not one is a bug in the table; a
// test checks every key.
func (c *Config) sectionField(key string) reflect.Value {
	v := reflect.ValueOf(c).Elem()
	return v.Field(sectionIndex(key))
}

// sectionIndex is the index of the Config field with yaml key key, or -1.
func sectionIndex(key string) int {
	t := reflect.TypeOf(Config{})
	for i := 0; i < t.NumField(); i++ {
		if strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0] == key {
			return i
		}
	}
	return -1
}

// configOrder is the service table in the order of Config's fields.
func configOrder() []service {
	ss := services()
	slices.SortStableFunc(ss, func(a, b service) int { return sectionIndex(a.key) - sectionIndex(b.key) })
	return ss
}

// Enabled reports whether the named section runs.
func (c *Config) Enabled(key string) bool {
	return isServiceKey(key) && c.section(key).enabled
}

// listenAddr is one socket the config asks for.
type listenAddr struct {
	network string // "tcp" or "udp"
	addr    string
	path    string // config path that asked for it
	http    bool   // web serves it
	// v6only: an IPv6 wildcard ("[::]:53") listed beside the IPv4 one
	// ("0.0.0.0:53") on the same port, as in nginx and named, so it takes
	// IPv6 only and the IPv4 socket takes the rest. A lone [::] stays
	// dual-stack.
	v6only bool
}

// listens returns every socket the enabled services need, in a stable order.
func (c *Config) listens() []listenAddr {
	var ls []listenAddr
	for _, sv := range configOrder() {
		ls = append(ls, c.listensOf(sv)...)
	}
	return ls
}

// markV6Only sets v6only on each [::] listener that has a 0.0.0.0 one on
// the same network and port (in one service's list: across services that
// would be a clash).
func markV6Only(ls []listenAddr) {
	for i := range ls {
		host, port, err := net.SplitHostPort(ls[i].addr)
		if err != nil || host != "::" || port == "0" {
			continue
		}
		for _, o := range ls {
			if h, p, err := net.SplitHostPort(o.addr); err == nil && o.network == ls[i].network && h == "0.0.0.0" && p == port {
				ls[i].v6only = true
				break
			}
		}
	}
}

// listensOf is what sv's `listen:` asks for when sv is enabled: one
// address or a list, each on every network of sv's (dns: TCP, then UDP on
// the same address).
func (c *Config) listensOf(sv service) []listenAddr {
	if len(sv.listen) == 0 || !c.Enabled(sv.key) {
		return nil
	}
	path := sv.key + ".listen"
	var addrs, paths []string
	switch l := c.sectionField(sv.key).Elem().FieldByName("Listen").Interface().(type) {
	case string:
		addrs, paths = []string{l}, []string{path}
	case []string:
		for i, a := range l {
			addrs, paths = append(addrs, a), append(paths, conf.Index(path, i))
		}
	}
	var ls []listenAddr
	for i, a := range addrs {
		for _, network := range sv.listen {
			ls = append(ls, listenAddr{network: network, addr: a, path: paths[i], http: sv.http})
		}
	}
	if sv.moreListens != nil {
		ls = append(ls, sv.moreListens(c)...)
	}
	markV6Only(ls)
	return ls
}

// systemFolder reports whether dir is the root or a folder the system
// itself lives in, where airgapd must never create, lock or clean files
// (a bundle import or a cleanup would touch what is not its own).
func systemFolder(dir string) bool {
	if dir == "" || !filepath.IsAbs(dir) {
		return false
	}
	switch filepath.Clean(dir) {
	case "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/opt", "/proc", "/root",
		"/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var", "/var/lib", "/var/tmp":
		return true
	}
	return false
}

// checkListenClashes finds two services (or two entries) on one address.
// ":53" and "0.0.0.0:53" clash with "127.0.0.1:53" too: the wildcard holds
// the port on every address. Port 0 (any free port, used by tests) never
// clashes.
func (c *Config) checkListenClashes(ps *conf.Problems) {
	ls := c.listens()
	for i, a := range ls {
		for _, b := range ls[:i] {
			if a.network != b.network || a.path == b.path {
				continue
			}
			if clash(a, b) {
				ps.Add(a.path, "give each service its own port", "%s %s is already used by %s (%s)", a.network, a.addr, b.path, b.addr)
				break
			}
		}
	}
}

func clash(a, b listenAddr) bool {
	ha, pa, err1 := net.SplitHostPort(a.addr)
	hb, pb, err2 := net.SplitHostPort(b.addr)
	if err1 != nil || err2 != nil || pa != pb || pa == "0" {
		return false
	}
	if ha == hb {
		return true
	}
	return holds(ha, a.v6only, hb) || holds(hb, b.v6only, ha)
}

// holds reports whether a socket bound to host wild takes the port on host
// too: "" and a dual-stack "::" hold every address, "0.0.0.0" (IPv4 only,
// see socketNetwork) every IPv4 one, a v6only "::" every IPv6 one. Two
// specific addresses never do.
func holds(wild string, v6only bool, host string) bool {
	ip, err := netip.ParseAddr(host)
	is4 := err == nil && ip.Unmap().Is4()
	switch wild {
	case "":
		return true
	case "::":
		if v6only {
			return host != "0.0.0.0" && !is4
		}
		return true
	case "0.0.0.0":
		return host != "::" && (host == "" || is4)
	}
	return false
}
