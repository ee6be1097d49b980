package adopt

import (
	"net/netip"
	"strings"
)

// addrList is an address match list resolved to networks, with what could
// not be carried over.
type addrList struct {
	cidrs  []string
	approx []string // notes on elements mapped approximately
	lost   []string // elements with no equivalent (negations, keys)
}

func (l addrList) outcome() Outcome {
	switch {
	case len(l.lost) > 0:
		return Approximate
	case len(l.approx) > 0:
		return Approximate
	}
	return Mapped
}

func (l addrList) note(key string) string {
	n := key + ": " + listText(l.cidrs)
	for _, a := range l.approx {
		n += "; " + a
	}
	for _, x := range l.lost {
		n += "; dropped " + x
	}
	return n
}

func listText(ss []string) string { return "[" + strings.Join(ss, ", ") + "]" }

// loopback is what BIND's localhost and localnets become when this host's
// interfaces are not known (a named.conf from another host).
var loopback = []string{"127.0.0.0/8", "::1"}

// HostNets is what BIND's localhost and localnets mean on the host the
// named.conf came from: its interfaces' addresses and their networks.
type HostNets struct {
	Addresses []string // 192.168.10.10, ::1 …
	Networks  []string // 192.168.10.0/24, ::1/128 …
}

// aclScope is what an address match list's names resolve against.
type aclScope struct {
	acls map[string]*Stmt
	host *HostNets // nil: not known
}

// resolveList turns an address match list into networks, following acl
// names and nested lists.
func resolveList(elems []*Stmt, scope aclScope) addrList {
	var out addrList
	resolveInto(&out, elems, scope, map[string]bool{})
	out.cidrs = dedupeStrings(out.cidrs)
	return out
}

// resolveBuiltin is BIND's localhost (the host's addresses) or localnets
// (its networks).
func resolveBuiltin(out *addrList, name string, host *HostNets) {
	if host == nil {
		out.cidrs = append(out.cidrs, loopback...)
		out.approx = append(out.approx, name+" became loopback only: add this host's networks by hand")
		return
	}
	nets := host.Networks
	if name == "localhost" {
		nets = host.Addresses
	}
	out.cidrs = append(out.cidrs, nets...)
	out.approx = append(out.approx, name+" is this host's interfaces now ("+strings.Join(nets, ", ")+"); airgapd does not follow them when they change")
}

func resolveInto(out *addrList, elems []*Stmt, scope aclScope, seen map[string]bool) {
	acls := scope.acls
	for _, e := range elems {
		if len(e.Words) == 0 && e.HasBlock {
			resolveInto(out, e.Block, scope, seen)
			continue
		}
		w := e.Arg(0)
		switch lw := strings.ToLower(w); {
		case strings.HasPrefix(w, "!") || w == "!":
			out.lost = append(out.lost, "negation "+strings.Join(e.Words, " ")+" (airgapd lists only allow)")
		case lw == "key":
			out.lost = append(out.lost, "key "+e.Arg(1)+" (TSIG keys are not supported)")
		case lw == "any":
			out.cidrs = append(out.cidrs, "0.0.0.0/0", "::/0")
		case lw == "none":
		case lw == "localhost" || lw == "localnets":
			resolveBuiltin(out, lw, scope.host)
		case acls[lw] != nil:
			if seen[lw] {
				out.lost = append(out.lost, "acl "+w+" (it names itself)")
				continue
			}
			seen[lw] = true
			resolveInto(out, acls[lw].Block, scope, seen)
			delete(seen, lw)
		default:
			cidr, note := normalizeCIDR(w)
			if cidr == "" {
				out.lost = append(out.lost, w+" (not an address or a known acl)")
				continue
			}
			if note != "" {
				out.approx = append(out.approx, note)
			}
			out.cidrs = append(out.cidrs, cidr)
		}
	}
}

// normalizeCIDR accepts an address or a network; BIND ignores host bits, so
// they are masked here and noted.
func normalizeCIDR(s string) (string, string) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return "", ""
		}
		return a.String(), ""
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return "", ""
	}
	if m := p.Masked(); m != p {
		return m.String(), s + " has host bits set; written as " + m.String()
	}
	return p.String(), ""
}

func dedupeStrings(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
