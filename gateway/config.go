package gateway

import (
	"github.com/airgapd/airgapd/internal/conf"
)

// Config is the `gateway:` section: what the seeds' NAT script did by hand
// (sysctl ip_forward, iptables MASQUERADE), declared once.
type Config struct {
	Enabled        *bool         `yaml:"enabled,omitempty"`
	Mode           string        `yaml:"mode"`
	IPForward      bool          `yaml:"ip_forward"`
	Masquerade     []Masquerade  `yaml:"masquerade"`
	ReconcileEvery conf.Duration `yaml:"reconcile_every"`
	SysctlDropin   bool          `yaml:"sysctl_dropin"`
}

// Masquerade is `iptables -t nat -A POSTROUTING -s SOURCE -o IFACE -j MASQUERADE`.
type Masquerade struct {
	Source       string `yaml:"source"`
	OutInterface string `yaml:"out_interface"`
}

// Modes: apply changes the kernel; plan only shows what apply would do.
const (
	ModeApply = "apply"
	ModePlan  = "plan"
)

// DefaultConfig is what an empty `gateway: {}` section means.
func DefaultConfig() Config {
	return Config{Mode: ModeApply, IPForward: true, ReconcileEvery: conf.Duration(30e9)}
}

// Validate reports every problem in the section.
func (c Config) Validate() error {
	var ps conf.Problems
	if c.Mode != ModeApply && c.Mode != ModePlan {
		ps.Add("mode", "use apply, or plan to touch nothing", "mode is %q", c.Mode)
	}
	for i, m := range c.Masquerade {
		p := conf.Index("masquerade", i)
		if _, err := conf.ParsePrefix(m.Source); err != nil {
			ps.Add(conf.Join(p, "source"), "write a network like 192.168.10.0/24", "%q is not a network: %v", m.Source, err)
		}
		if !validInterfaceName(m.OutInterface) {
			ps.Add(conf.Join(p, "out_interface"), "name the external interface, e.g. enp0s8", "%q is not an interface name", m.OutInterface)
		}
	}
	if c.ReconcileEvery < 0 {
		ps.Add("reconcile_every", "", "reconcile_every is negative")
	}
	return ps.Err()
}

// validInterfaceName follows the kernel's rule (dev_valid_name): 1–15 bytes,
// no '/', no whitespace, not "." or "..".
func validInterfaceName(s string) bool {
	if s == "" || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		if r == '/' || r == ':' || r <= ' ' {
			return false
		}
	}
	return true
}
