package gateway

import (
	"net/netip"
	"strings"
)

// Tables is the seam to the kernel's iptables rules. The real one
// (NewTables) runs the iptables binary through github.com/coreos/go-iptables,
// so it works with either backend; tests hand in fakes. Rule specs are
// argument lists as `iptables -S` prints them, without "-A CHAIN".
type Tables interface {
	// Backend is "nf_tables" or "legacy", as `iptables --version` says.
	Backend() (string, error)
	ListChains(table string) ([]string, error)
	// List returns `iptables -t TABLE -v -S CHAIN`: the policy line for a
	// built-in chain, "-N CHAIN" for a user chain, then each rule as
	// "-A CHAIN … -c PACKETS BYTES …".
	List(table, chain string) ([]string, error)
	NewChain(table, chain string) error
	ClearChain(table, chain string) error
	DeleteChain(table, chain string) error
	Insert(table, chain string, pos int, spec []string) error
	Append(table, chain string, spec []string) error
	// Delete removes the first rule equal to spec.
	Delete(table, chain string, spec []string) error
	// DeleteAt removes rule number pos (1-based). Only used in airgapd's
	// own chains: in a shared chain another tool may have moved the rules.
	DeleteAt(table, chain string, pos int) error
}

// Kernel is the seam to everything else the gateway changes on the host:
// sysctls under /proc/sys, the routes airgapd owns, the sysctl.d drop-in,
// and what it reads about firewalld.
type Kernel interface {
	// ReadSysctl and WriteSysctl take a path under /proc/sys, e.g.
	// "net/ipv4/ip_forward".
	ReadSysctl(path string) (string, error)
	WriteSysctl(path, value string) error
	// Routes lists the IPv4 routes in the main table that carry airgapd's
	// protocol number (RouteProto).
	Routes() ([]KernelRoute, error)
	ReplaceRoute(KernelRoute) error
	DeleteRoute(KernelRoute) error
	// ReadDropin returns the drop-in's content, or nil when it is absent.
	ReadDropin() ([]byte, error)
	WriteDropin([]byte) error
	RemoveDropin() error
	DropinPath() string
	Firewalld() Firewalld
}

// RouteProto marks the routes airgapd adds (`ip route … proto 147`), so it
// can tell them from everyone else's and remove exactly its own.
const RouteProto = 147

// KernelRoute is one route as the kernel holds it. Via is invalid and Dev
// empty when not given.
type KernelRoute struct {
	Dst netip.Prefix
	Via netip.Addr
	Dev string
}

// Args is the route as `ip route` arguments, with airgapd's protocol.
func (r KernelRoute) Args() []string {
	a := []string{r.Dst.String()}
	if r.Via.IsValid() {
		a = append(a, "via", r.Via.String())
	}
	if r.Dev != "" {
		a = append(a, "dev", r.Dev)
	}
	return append(a, "proto", itoa(RouteProto))
}

func (r KernelRoute) String() string { return strings.Join(r.Args(), " ") }

// satisfies reports whether the kernel's route k is what want asks for; a
// want without via or dev accepts any.
func (want KernelRoute) satisfiedBy(k KernelRoute) bool {
	return want.Dst == k.Dst && (!want.Via.IsValid() || want.Via == k.Via) && (want.Dev == "" || want.Dev == k.Dev)
}

// Firewalld is what the gateway can tell about firewalld in its network
// namespace.
type Firewalld struct {
	Running bool // a firewalld process exists
	// NFTables is true when firewalld's own nftables table (inet firewalld)
	// is loaded here: its drops then win over any iptables ACCEPT.
	NFTables bool
}

func (f Firewalld) String() string {
	switch {
	case f.NFTables:
		return "active (nftables backend: its drops win over iptables rules)"
	case f.Running:
		return "running (iptables backend)"
	}
	return "not running"
}
