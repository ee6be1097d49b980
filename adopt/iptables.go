package adopt

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// rule is one `-A CHAIN …` line of iptables-save, its options by flag.
type rule struct {
	pos   Pos
	text  string
	table string
	chain string
	opts  map[string]string
	bad   string // why the rule cannot be read as airgapd's; "" if it can
}

// ruleFlags are the options airgapd's gateway entries can express; any
// other option narrows a rule in a way airgapd would lose.
var ruleFlags = map[string]bool{
	"-s": true, "-d": true, "-i": true, "-o": true, "-p": true, "-j": true, "-m": true,
	"--dport": true, "--to-source": true, "--to-destination": true, "--comment": true,
	"--ctstate": true, "--state": true,
}

// iptablesFields splits a line as iptables-save quotes it.
func iptablesFields(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && inQuote && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == '"':
			inQuote, have = !inQuote, true
		case (c == ' ' || c == '\t') && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

func parseRule(at Pos, table, text string) rule {
	f := iptablesFields(text)
	r := rule{pos: at, text: text, table: table, opts: map[string]string{}}
	if len(f) < 2 {
		r.bad = "not a rule"
		return r
	}
	r.chain = f[1]
	for i := 2; i < len(f); i++ {
		flag := f[i]
		switch {
		case flag == "!":
			r.bad = "negated match (!) has no equivalent"
			return r
		case !ruleFlags[flag] || i+1 >= len(f):
			r.bad = "option " + flag + " has no equivalent"
			return r
		}
		v := f[i+1]
		i++
		if flag == "-m" {
			switch v {
			case "tcp", "udp", "comment", "conntrack", "state":
			default:
				r.bad = "match module " + v + " has no equivalent"
				return r
			}
			continue
		}
		r.opts[flag] = v
	}
	return r
}

type gatewayImport struct {
	doc     *Document
	rep     *Report
	forward []rule // FORWARD accepts, matched against the NAT rules at the end
	nat     []rule // the NAT rules that became entries
}

// importIptablesSave maps iptables-save output into the gateway section.
func importIptablesSave(source string, data []byte, doc *Document, rep *Report) error {
	g := &gatewayImport{doc: doc, rep: rep}
	table := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		at := Pos{File: source, Line: line}
		switch {
		case text == "" || text[0] == '#' || text == "COMMIT":
		case text[0] == '*':
			table = text[1:]
		case text[0] == ':':
			g.chainLine(at, text)
		case strings.HasPrefix(text, "-A "):
			g.ruleLine(parseRule(at, table, text))
		default:
			rep.add(at, text, NoEquivalent, "not understood; left alone")
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read iptables-save output: %w", err)
	}
	g.finish(source)
	return nil
}

// chainLine reports chains that are not the built-in ones with their default
// ACCEPT policy: airgapd manages only its own chains.
func (g *gatewayImport) chainLine(at Pos, text string) {
	f := strings.Fields(text[1:])
	if len(f) >= 2 && f[1] == "ACCEPT" {
		return
	}
	if len(f) >= 2 && f[1] != "-" {
		g.rep.add(at, text, NoEquivalent, "the %s policy of %s stays as it is: airgapd manages only its own chains (forward_policy decides inside AIRGAPD-FORWARD)", f[1], f[0])
		return
	}
	g.rep.add(at, text, NoEquivalent, "chain %s is left alone", f[0])
}

func (g *gatewayImport) ruleLine(r rule) {
	switch {
	case r.bad != "":
		g.rep.add(r.pos, r.text, NoEquivalent, "%s; left alone", r.bad)
	case r.table == "nat" && r.chain == "POSTROUTING" && (r.opts["-j"] == "MASQUERADE" || r.opts["-j"] == "SNAT"):
		g.postrouting(r)
	case r.table == "nat" && r.chain == "PREROUTING" && r.opts["-j"] == "DNAT":
		g.prerouting(r)
	case r.table == "filter" && r.chain == "FORWARD" && r.opts["-j"] == "ACCEPT":
		g.forward = append(g.forward, r)
	default:
		g.rep.add(r.pos, r.text, NoEquivalent, "only NAT (MASQUERADE, SNAT, DNAT) and FORWARD accepts are imported; left alone")
	}
}

func (g *gatewayImport) postrouting(r rule) {
	out, src := r.opts["-o"], r.opts["-s"]
	if out == "" {
		g.rep.add(r.pos, r.text, NoEquivalent, "airgapd needs the outgoing interface (-o); left alone")
		return
	}
	for _, k := range []string{"-d", "-p", "-i", "--dport"} {
		if r.opts[k] != "" {
			g.rep.add(r.pos, r.text, NoEquivalent, "airgapd's NAT has no %s match; left alone", k)
			return
		}
	}
	var notes []string
	if src == "" {
		src = "0.0.0.0/0"
		notes = append(notes, "no -s: source 0.0.0.0/0 masquerades every source, as the rule did; narrow it to the internal network")
	}
	cidr, note := normalizeCIDR(src)
	if cidr == "" {
		g.rep.add(r.pos, r.text, NoEquivalent, "-s %s is not a network; left alone", src)
		return
	}
	if note != "" {
		notes = append(notes, note)
	}
	if r.opts["-j"] == "MASQUERADE" {
		g.doc.add("gateway", "masquerade", mapping("source", str(cidr), "out_interface", str(out)), r.pos)
		g.rep.add(r.pos, r.text, outcomeOf(notes), "gateway.masquerade %s → %s%s", cidr, out, notesText(notes))
	} else {
		g.doc.add("gateway", "snat", mapping("source", str(cidr), "out_interface", str(out), "to_source", str(r.opts["--to-source"])), r.pos)
		g.rep.add(r.pos, r.text, outcomeOf(notes), "gateway.snat %s → %s as %s%s", cidr, out, r.opts["--to-source"], notesText(notes))
	}
	r.opts["-s"] = cidr
	g.nat = append(g.nat, r)
}

func (g *gatewayImport) prerouting(r rule) {
	port, err := strconv.Atoi(r.opts["--dport"])
	proto := r.opts["-p"]
	switch {
	case err != nil || (proto != "tcp" && proto != "udp"):
		g.rep.add(r.pos, r.text, NoEquivalent, "airgapd's port forwards need -p tcp|udp and one --dport; left alone")
		return
	case r.opts["-s"] != "" || r.opts["-d"] != "":
		g.rep.add(r.pos, r.text, NoEquivalent, "airgapd's port forwards have no -s/-d match; left alone")
		return
	}
	to := r.opts["--to-destination"]
	if _, err := netip.ParseAddrPort(to); err != nil {
		if _, err := netip.ParseAddr(to); err != nil {
			g.rep.add(r.pos, r.text, NoEquivalent, "--to-destination %q is not ADDR or ADDR:PORT; left alone", to)
			return
		}
	}
	g.doc.add("gateway", "dnat", mapping("in_interface", optStr(r.opts["-i"]), "proto", str(proto), "port", integer(port), "to", str(to)), r.pos)
	g.rep.add(r.pos, r.text, Mapped, "gateway.dnat %s/%d → %s (with its FORWARD accept)", proto, port, to)
	g.nat = append(g.nat, r)
}

func optStr(s string) any {
	if s == "" {
		return nil
	}
	return str(s)
}

// finish reports FORWARD accepts: those airgapd writes itself for the NAT
// entries are mapped, the others left alone; and turns on ip_forward.
func (g *gatewayImport) finish(source string) {
	for _, f := range g.forward {
		if g.coveredForward(f) {
			g.rep.add(f.pos, f.text, Mapped, "airgapd writes this accept itself in AIRGAPD-FORWARD for the NAT entries")
			continue
		}
		g.rep.add(f.pos, f.text, NoEquivalent, "a FORWARD accept not tied to a NAT entry; left alone (or see gateway.forward_policy)")
	}
	if len(g.nat) == 0 {
		return
	}
	at := Pos{File: source}
	g.doc.setHead("gateway", "gateway: imported from "+source+" (iptables-save)")
	g.doc.set("gateway", "mode", str("plan"), at)
	g.doc.get("gateway", "mode").LineComment = "review `airgapd gateway plan`, then switch to apply"
	g.doc.set("gateway", "ip_forward", boolean(true), at)
	g.doc.get("gateway", "ip_forward").LineComment = "NAT for the nodes needs forwarding on"
	g.rep.add(at, "(NAT rules found)", Approximate, "gateway.mode: plan, so serve touches nothing until you switch it to apply; ip_forward: true")
}

func (g *gatewayImport) coveredForward(f rule) bool {
	if st := f.opts["--ctstate"] + f.opts["--state"]; st == "RELATED,ESTABLISHED" || st == "ESTABLISHED,RELATED" {
		return len(g.nat) > 0
	}
	for _, n := range g.nat {
		if n.chain == "POSTROUTING" && f.opts["-o"] == n.opts["-o"] {
			if src, _ := normalizeCIDR(valueOr(f.opts["-s"], "0.0.0.0/0")); src == n.opts["-s"] {
				return true
			}
		}
		if n.chain == "PREROUTING" && f.opts["--dport"] != "" {
			if addr, _, _ := strings.Cut(n.opts["--to-destination"], ":"); f.opts["-d"] == addr || f.opts["-d"] == addr+"/32" {
				return true
			}
		}
	}
	return false
}

func valueOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
