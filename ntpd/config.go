package ntpd

import (
	"net"
	"strconv"
	"time"

	"github.com/airgapd/airgapd/internal/conf"
)

// Config is the `ntp:` section. Keys follow chrony.conf directives: server,
// allow, minpoll/maxpoll, `local stratum N`, ratelimit and makestep.
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
	RateLimit     RateLimit     `yaml:"ratelimit"`
	MakeStep      MakeStep      `yaml:"makestep"`
	CmdMon        CmdMon        `yaml:"cmdmon"`
	NTS           NTS           `yaml:"nts"`
}

// RateLimit is chrony's `ratelimit interval I burst B`, on by default here:
// each client earns one response every 2^Interval seconds and may save up
// Burst of them. A client over its limit gets a KoD RATE at most once per
// interval; its other requests are dropped.
type RateLimit struct {
	Enabled  bool `yaml:"enabled"`
	Interval int  `yaml:"interval"` // log2 seconds, -19 to 12; 3 = 8 s
	Burst    int  `yaml:"burst"`    // 1 to 255
}

// MakeStep is chrony's `makestep THRESHOLD LIMIT`: with discipline: true,
// an offset above Threshold during the first Limit clock updates steps the
// host clock instead of slewing it.
type MakeStep struct {
	Threshold conf.Duration `yaml:"threshold"`
	Limit     int           `yaml:"limit"`
}

// DefaultConfig is what an empty `ntp: {}` section means: like chrony, serve
// nobody until `allow` says who.
func DefaultConfig() Config {
	return Config{
		Listen:        []string{":123"},
		MinPoll:       6,
		MaxPoll:       10,
		LocalStratum:  10,
		FallbackAfter: conf.Duration(15 * time.Minute),
		RateLimit:     RateLimit{Enabled: true, Interval: 3, Burst: 8},
		MakeStep:      MakeStep{Threshold: conf.Duration(time.Second), Limit: 3},
		CmdMon:        DefaultCmdMon(),
		NTS:           DefaultNTS(),
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
	c.CmdMon.validate(&ps)
	c.NTS.validate(&ps)
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
	if c.RateLimit.Interval < -19 || c.RateLimit.Interval > 12 {
		ps.Add("ratelimit.interval", "chrony's range is -19 to 12 (3 = one response per 8 s)", "interval %d is out of range", c.RateLimit.Interval)
	}
	if c.RateLimit.Burst < 1 || c.RateLimit.Burst > 255 {
		ps.Add("ratelimit.burst", "use 1 to 255 (chrony's default is 8)", "burst %d is out of range", c.RateLimit.Burst)
	}
	if c.MakeStep.Threshold < 0 {
		ps.Add("makestep.threshold", "", "threshold is negative")
	}
	if c.MakeStep.Limit < 0 {
		ps.Add("makestep.limit", "use 0 for never, or the number of first updates that may step", "limit is negative")
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
