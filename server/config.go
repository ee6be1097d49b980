package server

import (
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/dnsd"
	"github.com/airgapd/airgapd/gateway"
	"github.com/airgapd/airgapd/internal/conf"
	"github.com/airgapd/airgapd/mirror"
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
	Mirror     *mirror.Config   `yaml:"mirror"`
	Registry   *registry.Config `yaml:"registry"`

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
		return nil, &CheckError{Diagnostics: []Diagnostic{yamlErrorDiagnostic(source, err)}}
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
		if v := root.Content[i+1]; v.Tag == "!!null" && sectionKeys[root.Content[i].Value] {
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
			return a.Line < b.Line || (a.Line == b.Line && a.Col < b.Col)
		})
		return nil, &CheckError{Diagnostics: w.diags}
	}
	return cfg, nil
}

// sectionKeys are the service sections; absent means "does not run".
var sectionKeys = map[string]bool{"web": true, "dns": true, "ntp": true, "gateway": true, "mirror": true, "registry": true}

// setSectionDefaults points each present section at its package's defaults
// before decoding, so keys the user left out keep their documented values.
// Absent sections stay nil.
func (c *Config) setSectionDefaults(root *yaml.Node) {
	present := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		present[root.Content[i].Value] = true
	}
	c.Web = defaulted(present["web"], web.DefaultConfig)
	c.DNS = defaulted(present["dns"], dnsd.DefaultConfig)
	c.NTP = defaulted(present["ntp"], ntpd.DefaultConfig)
	c.Gateway = defaulted(present["gateway"], gateway.DefaultConfig)
	c.Mirror = defaulted(present["mirror"], mirror.DefaultConfig)
	c.Registry = defaulted(present["registry"], registry.DefaultConfig)
}

// defaulted returns a fresh copy of a section's defaults, or nil when the
// section is absent.
func defaulted[T any](present bool, defaults func() T) *T {
	if !present {
		return nil
	}
	d := defaults()
	return &d
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
	return ps.Err()
}

var hostnameRE = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$`)

func validHostname(s string) bool { return len(s) <= 253 && hostnameRE.MatchString(s) }

// section is one service section, seen generically.
type section struct {
	key      string
	present  bool // the section is in the file
	enabled  bool // present and not enabled: false
	validate func() error
}

func (c *Config) sections() []section {
	var ss []section
	add := func(key string, present bool, flag *bool, v func() error) {
		ss = append(ss, section{key, present, present && conf.Enabled(flag), v})
	}
	add("web", c.Web != nil, enabledFlag(c.Web), func() error { return c.Web.Validate() })
	add("dns", c.DNS != nil, enabledFlag(c.DNS), func() error { return c.DNS.Validate() })
	add("ntp", c.NTP != nil, enabledFlag(c.NTP), func() error { return c.NTP.Validate() })
	add("gateway", c.Gateway != nil, enabledFlag(c.Gateway), func() error { return c.Gateway.Validate() })
	add("mirror", c.Mirror != nil, enabledFlag(c.Mirror), func() error { return c.Mirror.Validate() })
	add("registry", c.Registry != nil, enabledFlag(c.Registry), func() error { return c.Registry.Validate() })
	return ss
}

// enabledFlag reads the `enabled:` key every section has, nil-safe.
func enabledFlag(section any) *bool {
	v := reflect.ValueOf(section)
	if v.IsNil() {
		return nil
	}
	return v.Elem().FieldByName("Enabled").Interface().(*bool)
}

// Enabled reports whether the named section runs.
func (c *Config) Enabled(key string) bool {
	for _, s := range c.sections() {
		if s.key == key {
			return s.enabled
		}
	}
	return false
}

// listenAddr is one socket the config asks for.
type listenAddr struct {
	network string // "tcp" or "udp"
	addr    string
	path    string // config path that asked for it
}

// listens returns every socket the enabled services need, in a stable order.
func (c *Config) listens() []listenAddr {
	var ls []listenAddr
	if c.Enabled("web") {
		ls = append(ls, listenAddr{"tcp", c.Web.Listen, "web.listen"})
	}
	if c.Enabled("dns") {
		for i, a := range c.DNS.Listen {
			p := conf.Index("dns.listen", i)
			ls = append(ls, listenAddr{"tcp", a, p}, listenAddr{"udp", a, p})
		}
	}
	if c.Enabled("ntp") {
		for i, a := range c.NTP.Listen {
			ls = append(ls, listenAddr{"udp", a, conf.Index("ntp.listen", i)})
		}
	}
	if c.Enabled("mirror") {
		ls = append(ls, listenAddr{"tcp", c.Mirror.Listen, "mirror.listen"})
	}
	if c.Enabled("registry") {
		ls = append(ls, listenAddr{"tcp", c.Registry.Listen, "registry.listen"})
	}
	return ls
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
			if clash(a.addr, b.addr) {
				ps.Add(a.path, "give each service its own port", "%s %s is already used by %s (%s)", a.network, a.addr, b.path, b.addr)
				break
			}
		}
	}
}

func clash(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb || pa == "0" {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wild(ha) || wild(hb)
}

// walker checks a YAML node tree against a Go type, collecting unknown keys
// and malformed values with their positions.
type walker struct {
	source   string
	diags    []Diagnostic
	reported []string // paths already reported, so validation does not pile on
}

// alreadyReported reports whether path, or a parent or child of it, has a
// diagnostic: a value the walker threw out would otherwise come back from
// Validate as "missing".
func (w *walker) alreadyReported(path string) bool {
	for _, r := range w.reported {
		if r == path || strings.HasPrefix(path, r+".") || strings.HasPrefix(path, r+"[") ||
			strings.HasPrefix(r, path+".") || strings.HasPrefix(r, path+"[") {
			return true
		}
	}
	return false
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

func (w *walker) add(n *yaml.Node, path, hint, format string, args ...any) {
	w.reported = append(w.reported, path)
	w.diags = append(w.diags, Diagnostic{File: w.source, Line: n.Line, Col: n.Column, Path: path, Msg: fmt.Sprintf(format, args...), Hint: hint})
}

// nullify replaces a bad node so the decode that follows leaves the default.
func nullify(n *yaml.Node) {
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
}

// hide renames a reported key so the decode that follows ignores it; the
// name is unique so yaml.v3 does not see duplicates either.
func hide(k *yaml.Node) {
	k.Value = fmt.Sprintf("\x00reported-%d-%d", k.Line, k.Column)
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return
	}
	// Types with their own YAML syntax (durations, tls, registry mirrors)
	// are tried on their own, so a bad one is reported where it is.
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			w.add(n, path, "", "%s", cleanYAMLError(err))
			nullify(n)
			return
		}
		if n.Kind != yaml.MappingNode || t.Kind() != reflect.Struct {
			return
		}
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.add(n, path, "", "expected a mapping of keys, found %s", describe(n))
			nullify(n)
			return
		}
		fields := yamlFields(t)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := conf.Join(path, k.Value)
			if seen[k.Value] {
				w.add(k, p, "remove one of them", "key %q appears twice", k.Value)
				hide(k)
				continue
			}
			seen[k.Value] = true
			f, ok := fields[k.Value]
			if !ok {
				w.add(k, p, suggest(k.Value, fields), "unknown key %q", k.Value)
				hide(k)
				continue
			}
			w.walk(v, f, p)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.add(n, path, "write a list: [a, b] or one '- item' per line", "expected a list, found %s", describe(n))
			nullify(n)
			return
		}
		for i, item := range n.Content {
			w.walk(item, t.Elem(), conf.Index(path, i))
		}
	case reflect.String, reflect.Int, reflect.Bool:
		if n.Kind != yaml.ScalarNode {
			w.add(n, path, "", "expected a single value, found %s", describe(n))
			nullify(n)
			return
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			w.add(n, path, "", "%q is not a %s", n.Value, kindWord(t.Kind()))
			nullify(n)
		}
	}
}

func kindWord(k reflect.Kind) string {
	switch k {
	case reflect.Int:
		return "whole number"
	case reflect.Bool:
		return "boolean (true or false)"
	}
	return k.String()
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

// yamlFields maps each YAML key of a struct to its field type.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "-" || !f.IsExported() {
			continue
		}
		if tag == "" {
			tag = strings.ToLower(f.Name)
		}
		m[tag] = f.Type
	}
	return m
}

// suggest names the closest known key, for misspellings.
func suggest(key string, fields map[string]reflect.Type) string {
	best, bestDist := "", 3
	for k := range fields {
		if d := editDistance(key, k); d < bestDist || (d == bestDist && best != "" && k < best) {
			best, bestDist = k, d
		}
	}
	if best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return "known keys here: " + strings.Join(keys, ", ")
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// at places a validation problem at the node its path names, or the nearest
// ancestor that exists (a missing key is reported at its section).
func (w *walker) at(root *yaml.Node, p conf.Problem) Diagnostic {
	d := Diagnostic{File: w.source, Path: p.Path, Msg: p.Msg, Hint: p.Hint}
	if n := lookup(root, p.Path); n != nil {
		d.Line, d.Col = n.Line, n.Column
	}
	return d
}

// lookup finds the node at a path like "dns.zones[0].file", returning the
// deepest node found along the way.
func lookup(root *yaml.Node, path string) *yaml.Node {
	n := root
	for _, part := range splitPath(path) {
		next := child(n, part)
		if next == nil {
			return n
		}
		n = next
	}
	return n
}

func splitPath(path string) []string {
	var parts []string
	for _, dotted := range strings.Split(path, ".") {
		for dotted != "" {
			i := strings.IndexByte(dotted, '[')
			if i < 0 {
				parts = append(parts, dotted)
				break
			}
			if i > 0 {
				parts = append(parts, dotted[:i])
			}
			j := strings.IndexByte(dotted, ']')
			if j < i {
				break
			}
			parts = append(parts, dotted[i:j+1])
			dotted = dotted[j+1:]
		}
	}
	return parts
}

func child(n *yaml.Node, part string) *yaml.Node {
	if strings.HasPrefix(part, "[") {
		i, err := strconv.Atoi(strings.Trim(part, "[]"))
		if err != nil || n.Kind != yaml.SequenceNode || i >= len(n.Content) {
			return nil
		}
		return n.Content[i]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == part {
			// Point at the value for scalars, the key for blocks.
			if v := n.Content[i+1]; v.Kind == yaml.ScalarNode {
				return v
			}
			return n.Content[i+1]
		}
	}
	return nil
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func yamlErrorDiagnostic(source string, err error) Diagnostic {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	d := Diagnostic{File: source, Msg: msg, Hint: "this is a YAML syntax error; check indentation and quoting"}
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		d.Line, _ = strconv.Atoi(m[1])
		d.Col = 1
		d.Msg = m[2]
	}
	return d
}

func typeErrorDiagnostics(source string, err error) []Diagnostic {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return []Diagnostic{{File: source, Msg: cleanYAMLError(err)}}
	}
	var ds []Diagnostic
	for _, e := range te.Errors {
		d := Diagnostic{File: source, Msg: e}
		if m := yamlLineRE.FindStringSubmatch(e); m != nil {
			d.Line, _ = strconv.Atoi(m[1])
			d.Col = 1
			d.Msg = m[2]
		}
		ds = append(ds, d)
	}
	return ds
}

func cleanYAMLError(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "yaml: unmarshal errors:\n")
	return strings.TrimSpace(strings.TrimPrefix(s, "yaml: "))
}
