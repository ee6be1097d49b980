package gateway

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/airgapd/airgapd/internal/conf"
)

// Config is the `gateway:` section: what the seeds' NAT script did by hand
// (sysctl ip_forward, iptables MASQUERADE, SNAT, port forwards, static
// routes, rp_filter), declared once.
type Config struct {
	Enabled    *bool        `yaml:"enabled,omitempty"`
	Mode       string       `yaml:"mode"`
	IPForward  bool         `yaml:"ip_forward"`
	Masquerade []Masquerade `yaml:"masquerade"`
	SNAT       []SNAT       `yaml:"snat"`
	DNAT       []DNAT       `yaml:"dnat"`
	// ForwardPolicy decides what happens, in airgapd's FORWARD chain, to
	// forwarded traffic that is neither the nodes' way out, a reply to it,
	// nor a port forward: return (leave it to the rest of FORWARD),
	// accept, drop or reject.
	ForwardPolicy  string         `yaml:"forward_policy"`
	Routes         []Route        `yaml:"routes"`
	RPFilter       map[string]int `yaml:"rp_filter"`
	ReconcileEvery conf.Duration  `yaml:"reconcile_every"`
	SysctlDropin   bool           `yaml:"sysctl_dropin"`
}

// Masquerade is `iptables -t nat -A POSTROUTING -s SOURCE -o IFACE -j MASQUERADE`.
type Masquerade struct {
	Source       string `yaml:"source"`
	OutInterface string `yaml:"out_interface"`
}

// SNAT is `iptables -t nat -A POSTROUTING -s SOURCE -o IFACE -j SNAT --to-source ADDR`:
// a fixed external address instead of the interface's current one.
type SNAT struct {
	Source       string `yaml:"source"`
	OutInterface string `yaml:"out_interface"`
	ToSource     string `yaml:"to_source"`
}

// DNAT is a port forward: `iptables -t nat -A PREROUTING -i IFACE -p PROTO
// --dport PORT -j DNAT --to-destination ADDR:PORT`, with the matching
// FORWARD accept.
type DNAT struct {
	InInterface string `yaml:"in_interface"` // empty: any interface
	Proto       string `yaml:"proto"`        // tcp | udp
	Port        int    `yaml:"port"`
	To          string `yaml:"to"` // ADDR:PORT, or ADDR to keep the port
}

// Route is `ip route replace DESTINATION via VIA dev DEV`.
type Route struct {
	Destination string `yaml:"destination"`
	Via         string `yaml:"via"`
	Dev         string `yaml:"dev"`
}

// Modes: apply changes the kernel; plan only shows what apply would do.
const (
	ModeApply = "apply"
	ModePlan  = "plan"
)

// Forward policies.
const (
	PolicyReturn = "return"
	PolicyAccept = "accept"
	PolicyDrop   = "drop"
	PolicyReject = "reject"
)

// DefaultConfig is what an empty `gateway: {}` section means.
func DefaultConfig() Config {
	return Config{Mode: ModeApply, IPForward: true, ForwardPolicy: PolicyReturn, ReconcileEvery: conf.Duration(30e9)}
}

// Validate reports every problem in the section.
func (c Config) Validate() error {
	var ps conf.Problems
	if c.Mode != ModeApply && c.Mode != ModePlan {
		ps.Add("mode", "use apply, or plan to touch nothing", "mode is %q", c.Mode)
	}
	for i, m := range c.Masquerade {
		p := conf.Index("masquerade", i)
		checkSource(&ps, conf.Join(p, "source"), m.Source)
		checkInterface(&ps, conf.Join(p, "out_interface"), m.OutInterface, "name the external interface, e.g. enp0s8")
	}
	for i, s := range c.SNAT {
		p := conf.Index("snat", i)
		checkSource(&ps, conf.Join(p, "source"), s.Source)
		checkInterface(&ps, conf.Join(p, "out_interface"), s.OutInterface, "name the external interface, e.g. enp0s8")
		if a, err := netip.ParseAddr(s.ToSource); err != nil || !a.Is4() {
			ps.Add(conf.Join(p, "to_source"), "the external IPv4 address to use, e.g. 203.0.113.10", "%q is not an IPv4 address", s.ToSource)
		}
	}
	for i, d := range c.DNAT {
		p := conf.Index("dnat", i)
		if d.InInterface != "" {
			checkInterface(&ps, conf.Join(p, "in_interface"), d.InInterface, "name the interface the connections arrive on, or leave it out for any")
		}
		if d.Proto != "tcp" && d.Proto != "udp" {
			ps.Add(conf.Join(p, "proto"), "tcp or udp", "proto is %q", d.Proto)
		}
		if d.Port < 1 || d.Port > 65535 {
			ps.Add(conf.Join(p, "port"), "a port from 1 to 65535", "port %d is out of range", d.Port)
		}
		if _, _, err := parseTo(d.To); err != nil {
			ps.Add(conf.Join(p, "to"), "write ADDR:PORT, e.g. 192.168.10.20:443, or ADDR to keep the port", "%v", err)
		}
	}
	switch c.ForwardPolicy {
	case PolicyReturn, PolicyAccept, PolicyDrop, PolicyReject:
	default:
		ps.Add("forward_policy", "return (leave it to the rest of FORWARD), accept, drop or reject", "forward_policy is %q", c.ForwardPolicy)
	}
	for i, r := range c.Routes {
		p := conf.Index("routes", i)
		if pf, err := conf.ParsePrefix(r.Destination); err != nil || !pf.Addr().Is4() {
			msg := "not an IPv4 network"
			if err != nil {
				msg = err.Error()
			}
			ps.Add(conf.Join(p, "destination"), "write a network like 10.20.0.0/16", "%q: %s", r.Destination, msg)
		}
		if r.Via == "" && r.Dev == "" {
			ps.Add(p, "give via:, dev: or both", "a route needs a gateway or a device")
		}
		if r.Via != "" {
			if a, err := netip.ParseAddr(r.Via); err != nil || !a.Is4() {
				ps.Add(conf.Join(p, "via"), "the next hop's IPv4 address", "%q is not an IPv4 address", r.Via)
			}
		}
		if r.Dev != "" {
			checkInterface(&ps, conf.Join(p, "dev"), r.Dev, "name the interface, e.g. enp0s9")
		}
	}
	for _, name := range sortedKeys(c.RPFilter) {
		p := conf.Join("rp_filter", name)
		checkInterface(&ps, p, name, "an interface name, all or default")
		if v := c.RPFilter[name]; v < 0 || v > 2 {
			ps.Add(p, "0 off, 1 strict, 2 loose", "rp_filter %d is not 0, 1 or 2", v)
		}
	}
	if c.ReconcileEvery < 0 {
		ps.Add("reconcile_every", "", "reconcile_every is negative")
	}
	return ps.Err()
}

func checkSource(ps *conf.Problems, path, s string) {
	p, err := conf.ParsePrefix(s)
	if err != nil {
		ps.Add(path, "write a network like 192.168.10.0/24", "%q is not a network: %v", s, err)
		return
	}
	if !p.Addr().Is4() {
		ps.Add(path, "write an IPv4 network like 192.168.10.0/24", "%q: only IPv4 is supported", s)
	}
}

func checkInterface(ps *conf.Problems, path, name, hint string) {
	if !validInterfaceName(name) {
		ps.Add(path, hint, "%q is not an interface name", name)
	}
}

// parseTo reads a DNAT target: "ADDR:PORT" or "ADDR". port is 0 when absent.
func parseTo(s string) (netip.Addr, int, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if !a.Is4() {
			return netip.Addr{}, 0, fmt.Errorf("%q: only IPv4 is supported", s)
		}
		return a, 0, nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("%q is not ADDR:PORT", s)
	}
	if !ap.Addr().Is4() {
		return netip.Addr{}, 0, fmt.Errorf("%q: only IPv4 is supported", s)
	}
	if ap.Port() == 0 {
		return netip.Addr{}, 0, fmt.Errorf("%q: port 0", s)
	}
	return ap.Addr(), int(ap.Port()), nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
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

// itoa is strconv.Itoa, short for rule building.
func itoa(i int) string { return strconv.Itoa(i) }

// sysctlName turns a path under /proc/sys into the dotted name sysctl(8)
// prints; a dot inside a component (a VLAN interface such as enp0s8.100)
// becomes a slash, as sysctl writes it.
func sysctlName(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(p, ".", "/")
	}
	return strings.Join(parts, ".")
}
