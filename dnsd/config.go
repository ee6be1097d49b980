package dnsd

import (
	"errors"
	"io/fs"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/airgapd/airgapd/internal/conf"
)

// Config is the `dns:` section. Keys follow named.conf options: allow-query,
// allow-recursion, allow-transfer, forwarders, forward first|only, and zones.
type Config struct {
	Enabled        *bool           `yaml:"enabled,omitempty"`
	Listen         []string        `yaml:"listen"`
	AllowQuery     []string        `yaml:"allow_query"`
	AllowRecursion []string        `yaml:"allow_recursion"`
	AllowTransfer  []string        `yaml:"allow_transfer"`
	AlsoNotify     []string        `yaml:"also_notify"` // secondaries to NOTIFY on zone changes
	Forwarders     []string        `yaml:"forwarders"`
	Forward        string          `yaml:"forward"`
	ForwardZones   []ForwardZone   `yaml:"forward_zones"`
	RootHints      string          `yaml:"root_hints"`
	Cache          CacheConfig     `yaml:"cache"`
	QueryLog       bool            `yaml:"query_log"`
	RateLimit      RateLimitConfig `yaml:"rate_limit"`
	Zones          []Zone          `yaml:"zones"`
}

// ForwardZone is BIND's `zone "x" { type forward; forwarders { … }; }`.
type ForwardZone struct {
	Name       string   `yaml:"name"`
	Forwarders []string `yaml:"forwarders"`
}

// CacheConfig sizes the answer cache.
type CacheConfig struct {
	MaxEntries int           `yaml:"max_entries"`
	ServeStale conf.Duration `yaml:"serve_stale"`
	Prefetch   bool          `yaml:"prefetch"`
	// TTL clamps, as BIND's min-cache-ttl, max-cache-ttl and max-ncache-ttl.
	MinTTL         conf.Duration `yaml:"min_ttl"`
	MaxTTL         conf.Duration `yaml:"max_ttl"`
	MaxNegativeTTL conf.Duration `yaml:"max_negative_ttl"`
}

// Zone is a local authoritative zone: records written inline as RFC 1035
// lines, from a zone file, or both.
type Zone struct {
	Name    string   `yaml:"name"`
	Records []string `yaml:"records"`
	File    string   `yaml:"file"`
	// PTR answers reverse lookups for the zone's A and AAAA records.
	PTR bool `yaml:"ptr"`
}

// DefaultConfig is what an empty `dns: {}` section means. Both ACLs default
// to loopback only: airgapd is never an open resolver by accident.
func DefaultConfig() Config {
	return Config{
		Listen:         []string{"0.0.0.0:53"},
		AllowQuery:     []string{"127.0.0.0/8", "::1"},
		AllowRecursion: []string{"127.0.0.0/8", "::1"},
		Forward:        "first",
		Cache: CacheConfig{
			MaxEntries: 100000, ServeStale: conf.Duration(24 * time.Hour), Prefetch: true,
			MaxTTL: conf.Duration(7 * 24 * time.Hour), MaxNegativeTTL: conf.Duration(3 * time.Hour),
		},
		QueryLog: true,
	}
}

// Validate reports every problem in the section.
func (c Config) Validate() error {
	var ps conf.Problems
	if len(c.Listen) == 0 {
		ps.Add("listen", "add e.g. listen: [\"0.0.0.0:53\"]", "no listen address")
	}
	for i, l := range c.Listen {
		conf.CheckListen(&ps, conf.Index("listen", i), l)
	}
	conf.CheckCIDRs(&ps, "allow_query", c.AllowQuery)
	conf.CheckCIDRs(&ps, "allow_recursion", c.AllowRecursion)
	conf.CheckCIDRs(&ps, "allow_transfer", c.AllowTransfer)
	checkServers(&ps, "forwarders", c.Forwarders)
	checkServers(&ps, "also_notify", c.AlsoNotify)
	if c.Forward != "first" && c.Forward != "only" {
		ps.Add("forward", "use first or only, as in named.conf", "forward is %q", c.Forward)
	}
	for i, fz := range c.ForwardZones {
		p := conf.Index("forward_zones", i)
		checkDomain(&ps, conf.Join(p, "name"), fz.Name)
		if len(fz.Forwarders) == 0 {
			ps.Add(conf.Join(p, "forwarders"), "list at least one server", "forward zone %q has no forwarders", fz.Name)
		}
		checkServers(&ps, conf.Join(p, "forwarders"), fz.Forwarders)
	}
	conf.CheckFile(&ps, "root_hints", c.RootHints)
	if c.Cache.MaxEntries < 0 {
		ps.Add("cache.max_entries", "use 0 to turn the cache off", "max_entries is negative")
	}
	for _, d := range []struct {
		key string
		v   conf.Duration
	}{{"serve_stale", c.Cache.ServeStale}, {"min_ttl", c.Cache.MinTTL}, {"max_ttl", c.Cache.MaxTTL}, {"max_negative_ttl", c.Cache.MaxNegativeTTL}} {
		if d.v < 0 {
			ps.Add("cache."+d.key, "", "%s is negative", d.key)
		}
	}
	c.RateLimit.validate(&ps)
	seen := map[string]bool{}
	for i, z := range c.Zones {
		p := conf.Index("zones", i)
		checkDomain(&ps, conf.Join(p, "name"), z.Name)
		key := strings.ToLower(strings.TrimSuffix(z.Name, "."))
		if seen[key] {
			ps.Add(conf.Join(p, "name"), "merge the two entries", "zone %q is defined twice", z.Name)
		}
		seen[key] = true
		conf.CheckFile(&ps, conf.Join(p, "file"), z.File)
		if _, ok := dns.IsDomainName(z.Name); !ok || z.Name == "" {
			continue
		}
		checkZoneData(&ps, p, z)
	}
	return ps.Err()
}

// checkZoneData reports each record of z that does not parse, then, when
// all do, what named-checkzone would refuse in them, each at its list item
// or at its line of the zone file.
func checkZoneData(ps *conf.Problems, path string, z Zone) {
	origin := dns.CanonicalName(z.Name)
	parsed := true
	for j, line := range z.Records {
		if _, err := parseRecord(origin, line); err != nil {
			ps.Add(conf.Index(conf.Join(path, "records"), j), "write an RFC 1035 line: NAME [TTL] TYPE DATA, e.g. \"admin 300 A 192.168.10.10\"", "%v", err)
			parsed = false
		}
	}
	var recs []placedRR
	if z.File != "" {
		fileRecs, err := readZoneRecords(Zone{Name: z.Name, File: z.File})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			*ps = append(*ps, zoneFileProblem(conf.Join(path, "file"), z.File, err))
		}
		if err != nil {
			return
		}
		recs = fileRecs
	}
	if !parsed {
		return
	}
	inline, err := readZoneRecords(Zone{Name: z.Name, Records: z.Records})
	if err != nil {
		return
	}
	for _, p := range checkZoneRecords(origin, append(inline, recs...)) {
		if p.at.File == "" {
			ps.Add(conf.Index(conf.Join(path, "records"), p.at.Index), p.hint, "%s", p.msg)
			continue
		}
		*ps = append(*ps, conf.Problem{Path: conf.Join(path, "file"), File: p.at.File, Line: p.at.Line, Msg: p.msg, Hint: p.hint})
	}
}

// parseErrorRE takes apart miekg/dns's ParseError text: FILE: dns: WHAT at line: L:C.
var parseErrorRE = regexp.MustCompile(`^(.*): dns: (.*) at line: (\d+):\d+$`)

// zoneFileProblem reports a zone file that does not parse at its line in
// that file, as named-checkzone would, or at the file: key when the error
// names no line.
func zoneFileProblem(path, file string, err error) conf.Problem {
	const hint = "check it with named-checkzone"
	var pe *dns.ParseError
	if errors.As(err, &pe) {
		if m := parseErrorRE.FindStringSubmatch(pe.Error()); m != nil && m[1] == file {
			line, _ := strconv.Atoi(m[3])
			return conf.Problem{Path: path, File: file, Line: line, Msg: m[2], Hint: hint}
		}
	}
	return conf.Problem{Path: path, Msg: err.Error(), Hint: hint}
}

// checkServers checks upstream DNS servers written as IP or IP:port.
func checkServers(ps *conf.Problems, path string, list []string) {
	for i, s := range list {
		if _, err := netip.ParseAddr(s); err == nil {
			continue
		}
		if ap, err := netip.ParseAddrPort(s); err == nil && ap.Port() != 0 {
			continue
		}
		ps.Add(conf.Index(path, i), "write an IP address, or IP:port for a non-standard port", "%q is not a server address", s)
	}
}

func checkDomain(ps *conf.Problems, path, name string) {
	if name == "" {
		ps.Add(path, "", "name is empty")
		return
	}
	if _, ok := dns.IsDomainName(name); !ok {
		ps.Add(path, "", "%q is not a domain name", name)
	}
}
