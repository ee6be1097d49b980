package gateway

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/airgapd/airgapd/internal/conf"
)

// Chain names: every rule airgapd makes lives in one of these, reached by a
// single jump from the built-in chain of the same name.
const (
	ChainPrerouting  = "AIRGAPD-PREROUTING"
	ChainPostrouting = "AIRGAPD-POSTROUTING"
	ChainForward     = "AIRGAPD-FORWARD"
	chainPrefix      = "AIRGAPD-"
)

// ownedChain is one of airgapd's chains and the built-in chain that jumps
// to it.
type ownedChain struct {
	Table, Chain, Hook string
}

// ownedChains lists airgapd's chains in the order they are applied.
func ownedChains() []ownedChain {
	return []ownedChain{
		{"nat", ChainPrerouting, "PREROUTING"},
		{"nat", ChainPostrouting, "POSTROUTING"},
		{"filter", ChainForward, "FORWARD"},
	}
}

// jumpSpec is the one rule airgapd puts into a built-in chain.
func jumpSpec(chain string) string { return "-j " + chain }

// sysctl is one /proc/sys setting.
type sysctl struct {
	Path, Value string
}

// desired is the state the config asks for.
type desired struct {
	Rules   map[string][]string // owned chain → rule specs, in order
	Sysctls []sysctl
	Routes  []KernelRoute
	Dropin  []byte // nil: no drop-in
}

const (
	ipForwardPath = "net/ipv4/ip_forward"
	dropinHeader  = "# Written by airgapd (gateway.sysctl_dropin: true) so these survive a reboot.\n# `airgapd gateway down` or sysctl_dropin: false removes this file.\n"
)

// desiredState turns a validated config into rules, sysctls and routes.
// Rule specs are written exactly as `iptables -S` prints them, so that what
// is in the kernel compares equal to what is wanted.
func desiredState(c Config) desired {
	d := desired{Rules: map[string][]string{}}
	var pre, post []string
	fwd := []string{"-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"}
	for _, m := range c.Masquerade {
		src := prefixString(m.Source)
		post = append(post, fmt.Sprintf("-s %s -o %s -j MASQUERADE", src, m.OutInterface))
		fwd = append(fwd, fmt.Sprintf("-s %s -o %s -j ACCEPT", src, m.OutInterface))
	}
	for _, s := range c.SNAT {
		src := prefixString(s.Source)
		post = append(post, fmt.Sprintf("-s %s -o %s -j SNAT --to-source %s", src, s.OutInterface, s.ToSource))
		fwd = append(fwd, fmt.Sprintf("-s %s -o %s -j ACCEPT", src, s.OutInterface))
	}
	for _, n := range c.DNAT {
		addr, port, _ := parseTo(n.To)
		in := ""
		if n.InInterface != "" {
			in = "-i " + n.InInterface + " "
		}
		to, toPort := addr.String(), n.Port
		if port != 0 {
			to, toPort = fmt.Sprintf("%s:%d", addr, port), port
		}
		pre = append(pre, fmt.Sprintf("%s-p %s -m %s --dport %d -j DNAT --to-destination %s", in, n.Proto, n.Proto, n.Port, to))
		fwd = append(fwd, fmt.Sprintf("-d %s/32 %s-p %s -m %s --dport %d -m conntrack --ctstate DNAT -j ACCEPT", addr, in, n.Proto, n.Proto, toPort))
	}
	switch c.ForwardPolicy {
	case PolicyAccept:
		fwd = append(fwd, "-j ACCEPT")
	case PolicyDrop:
		fwd = append(fwd, "-j DROP")
	case PolicyReject:
		fwd = append(fwd, "-j REJECT --reject-with icmp-port-unreachable")
	}
	d.Rules[ChainPrerouting] = dedupe(pre)
	d.Rules[ChainPostrouting] = dedupe(post)
	d.Rules[ChainForward] = dedupe(fwd)

	if c.IPForward {
		d.Sysctls = append(d.Sysctls, sysctl{ipForwardPath, "1"})
	}
	for _, iface := range sortedKeys(c.RPFilter) {
		d.Sysctls = append(d.Sysctls, sysctl{"net/ipv4/conf/" + iface + "/rp_filter", itoa(c.RPFilter[iface])})
	}
	for _, r := range c.Routes {
		kr := KernelRoute{Dev: r.Dev}
		kr.Dst, _ = conf.ParsePrefix(r.Destination)
		if r.Via != "" {
			kr.Via, _ = netip.ParseAddr(r.Via)
		}
		d.Routes = append(d.Routes, kr)
	}
	if c.SysctlDropin && len(d.Sysctls) > 0 {
		var b bytes.Buffer
		b.WriteString(dropinHeader)
		for _, s := range d.Sysctls {
			fmt.Fprintf(&b, "%s = %s\n", sysctlName(s.Path), s.Value)
		}
		d.Dropin = b.Bytes()
	}
	return d
}

// prefixString writes a network as iptables prints it: always with a
// length, "10.0.0.1" as "10.0.0.1/32".
func prefixString(s string) string {
	p, err := conf.ParsePrefix(s)
	if err != nil {
		return s
	}
	return p.String()
}

func dedupe(rules []string) []string {
	var out []string
	for _, r := range rules {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// splitSpec splits a rule as iptables -S prints it into arguments: on
// spaces, except inside double quotes (comments), where \" and \\ are
// escapes.
func splitSpec(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '\\' && inQuote && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case ch == '"':
			inQuote = !inQuote
			have = true
		case ch == ' ' && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(ch)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}
