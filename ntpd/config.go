package ntpd

import (
	"net"
	"strconv"

	"github.com/airgapd/airgapd/internal/conf"
)

// Config is the `ntp:` section. Keys follow chrony.conf directives: server,
// allow, minpoll/maxpoll and `local stratum N`.
type Config struct {
	Enabled       *bool         `yaml:"enabled,omitempty"`
	Listen        []string      `yaml:"listen"`
	Allow         []string      `yaml:"allow"`
	Servers       []string      `yaml:"servers"`
	MinPoll       int           `yaml:"minpoll"`
	MaxPoll       int           `yaml:"maxpoll"`
	LocalStratum  int           `yaml:"local_stratum"`
	FallbackAfter conf.Duration `yaml:"fallback_after"`
	Discipline    bool          `yaml:"discipline"`
}

// DefaultConfig is what an empty `ntp: {}` section means: like chrony, serve
// nobody until `allow` says who.
func DefaultConfig() Config {
	return Config{
		Listen:        []string{":123"},
		MinPoll:       6,
		MaxPoll:       10,
		LocalStratum:  10,
		FallbackAfter: conf.Duration(15 * 60e9),
	}
}

// Validate reports every problem in the section.
func (c Config) Validate() error {
	var ps conf.Problems
	if len(c.Listen) == 0 {
		ps.Add("listen", "add e.g. listen: [\":123\"]", "no listen address")
	}
	for i, l := range c.Listen {
		conf.CheckListen(&ps, conf.Index("listen", i), l)
	}
	conf.CheckCIDRs(&ps, "allow", c.Allow)
	for i, s := range c.Servers {
		if err := validServer(s); err != nil {
			ps.Add(conf.Index("servers", i), "write a host name or address, optionally with :port", "%q: %v", s, err)
		}
	}
	// chrony accepts polls from -6 to 24; the same range here.
	if c.MinPoll < -6 || c.MinPoll > 24 {
		ps.Add("minpoll", "chrony's range is -6 to 24 (6 = 64 s)", "minpoll %d is out of range", c.MinPoll)
	}
	if c.MaxPoll < -6 || c.MaxPoll > 24 {
		ps.Add("maxpoll", "chrony's range is -6 to 24 (10 = 1024 s)", "maxpoll %d is out of range", c.MaxPoll)
	}
	if c.MinPoll > c.MaxPoll {
		ps.Add("maxpoll", "make maxpoll at least minpoll", "maxpoll %d is below minpoll %d", c.MaxPoll, c.MinPoll)
	}
	if c.LocalStratum < 0 || c.LocalStratum > 15 {
		ps.Add("local_stratum", "use 1 to 15, or 0 for no local fallback", "local_stratum %d is out of range", c.LocalStratum)
	}
	if c.FallbackAfter < 0 {
		ps.Add("fallback_after", "", "fallback_after is negative")
	}
	return ps.Err()
}

func validServer(s string) error {
	host := s
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return strconv.ErrRange
		}
		host = h
	}
	if host == "" {
		return net.InvalidAddrError("empty host")
	}
	return nil
}
