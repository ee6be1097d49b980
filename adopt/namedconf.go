package adopt

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// namedImport carries what one named.conf import has seen so far.
type namedImport struct {
	doc       *Document
	rep       *Report
	acls      map[string]*Stmt
	directory string // options { directory }, for relative zone files
	options   *Stmt
	host      *HostNets // this host's interfaces, when importing from it
}

func (n *namedImport) scope() aclScope { return aclScope{acls: n.acls, host: n.host} }

// importNamed maps a named.conf (and what it includes) into the dns section.
func importNamed(path string, host *HostNets, doc *Document, rep *Report) error {
	stmts, err := loadNamed(path)
	if err != nil {
		return err
	}
	n := &namedImport{doc: doc, rep: rep, acls: map[string]*Stmt{}, directory: filepath.Dir(path), host: host}
	doc.setHead("dns", "dns: imported from "+path+" (named.conf)")
	doc.section("dns")
	// acls and options first: zones and lists anywhere may use them.
	for _, s := range stmts {
		switch s.Keyword() {
		case "acl":
			n.acls[strings.ToLower(s.Arg(1))] = s
			rep.add(s.Pos, s.Text(), Mapped, "acl %s: resolved into every list that names it", s.Arg(1))
		case "options":
			n.options = s
			if d := s.Find("directory"); d != nil {
				n.directory = d.Arg(1)
			}
		}
	}
	if n.options != nil {
		n.importOptions(n.options)
	} else {
		n.defaults(Pos{File: path})
	}
	for _, s := range stmts {
		n.topLevel(s)
	}
	return nil
}

func (n *namedImport) topLevel(s *Stmt) {
	switch kw := s.Keyword(); kw {
	case "acl", "options":
	case "zone":
		n.importZone(s)
	case "view":
		n.rep.add(s.Pos, s.Words[0]+" "+s.Arg(1)+" { … }", NoEquivalent,
			"views are not supported: airgapd answers every client from one set of zones; the view's %d statements are not imported", len(s.Block))
	case "logging":
		n.rep.add(s.Pos, "logging { … }", NoEquivalent, "airgapd logs to stderr/journald (log: level, format) and dns.query_log")
	case "controls":
		n.rep.add(s.Pos, s.Text(), NoEquivalent, "rndc's channel: airgapd's control socket is runtime_dir/api.sock (airgapd status)")
	case "key":
		n.rep.add(s.Pos, "key "+s.Arg(1)+" { … }", NoEquivalent, "TSIG keys are not supported")
	default:
		n.rep.add(s.Pos, s.Text(), NoEquivalent, "%s statements are not supported", kw)
	}
}

// defaults writes what BIND does with no options block at all.
func (n *namedImport) defaults(at Pos) {
	n.doc.set("dns", "allow_query", strs([]string{"0.0.0.0/0", "::/0"}), at)
	n.rep.add(at, "(no options block)", Approximate, "BIND's defaults: allow-query any, recursion for localhost and localnets (loopback here)")
	n.doc.set("dns", "allow_recursion", strs(loopback), at)
}

// ignoredOptions have no meaning for airgapd, which keeps its own state in
// data_dir; they are listed so the report says why.
var ignoredOptions = map[string]string{
	"pid-file": "airgapd runs under systemd; no pid file", "session-keyfile": "no TSIG session keys",
	"dump-file": "the cache is inspected through the UI and API", "statistics-file": "statistics are at /metrics",
	"memstatistics-file": "statistics are at /metrics", "managed-keys-directory": "no DNSSEC validation, no trust anchors",
	"bindkeys-file": "no DNSSEC validation, no trust anchors", "version": "airgapd does not answer version.bind",
	"auth-nxdomain": "airgapd sets AA on its own zones only", "empty-zones-enable": "airgapd has no built-in empty zones",
	"notify": "airgapd notifies dns.also_notify on zone changes",
}

func (n *namedImport) importOptions(opts *Stmt) {
	var v4, v6 *Stmt
	for _, s := range opts.Block {
		switch kw := s.Keyword(); kw {
		case "listen-on":
			v4 = s
		case "listen-on-v6":
			v6 = s
		case "allow-query", "allow-recursion", "allow-transfer", "allow-query-cache":
			n.importList(s)
		case "forwarders":
			n.importForwarders(s)
		case "forward":
			n.setWord(s, "forward", []string{"first", "only"})
		case "recursion":
			n.importRecursion(s)
		case "directory":
			n.rep.add(s.Pos, s.Text(), Mapped, "used to find the zone files named relative to it")
		case "dnssec-validation", "dnssec-enable":
			n.importDNSSEC(s)
		case "querylog":
			n.doc.set("dns", "query_log", boolean(yes(s.Arg(1))), s.Pos)
			n.rep.add(s.Pos, s.Text(), Mapped, "query_log: %v", yes(s.Arg(1)))
		case "max-cache-size":
			n.rep.add(s.Pos, s.Text(), Approximate, "airgapd sizes its cache in entries (dns.cache.max_entries, default 100000), not bytes; the default is kept")
		case "max-cache-ttl", "min-cache-ttl", "max-ncache-ttl":
			n.importTTL(s)
		case "rate-limit":
			n.importRateLimit(s)
		case "also-notify":
			n.importAlsoNotify(s)
		default:
			if why, ok := ignoredOptions[kw]; ok {
				n.rep.add(s.Pos, s.Text(), NoEquivalent, "%s", why)
				continue
			}
			n.rep.add(s.Pos, s.Text(), NoEquivalent, "option %s is not supported", kw)
		}
	}
	n.importListen(opts.Pos, v4, v6)
	n.recursionDefault(opts)
	if opts.Find("allow-query") == nil {
		n.doc.set("dns", "allow_query", strs([]string{"0.0.0.0/0", "::/0"}), opts.Pos)
		n.rep.add(opts.Pos, "options { (no allow-query) }", Mapped, "BIND's default allow-query any: allow_query: [0.0.0.0/0, ::/0]")
	}
	if opts.Find("allow-transfer") == nil {
		n.rep.add(opts.Pos, "options { (no allow-transfer) }", Approximate, "BIND's default lets anyone transfer zones; airgapd lets nobody: list secondaries in dns.allow_transfer")
	}
}

func yes(s string) bool {
	switch strings.ToLower(s) {
	case "yes", "true", "1":
		return true
	}
	return false
}

func (n *namedImport) setWord(s *Stmt, key string, allowed []string) {
	v := strings.ToLower(s.Arg(1))
	for _, a := range allowed {
		if v == a {
			n.doc.set("dns", key, str(v), s.Pos)
			n.rep.add(s.Pos, s.Text(), Mapped, "%s: %s", key, v)
			return
		}
	}
	n.rep.add(s.Pos, s.Text(), NoEquivalent, "%s %q is not one of %v", key, v, allowed)
}

func (n *namedImport) importList(s *Stmt) {
	l := resolveList(s.Block, n.scope())
	key := map[string]string{"allow-query": "allow_query", "allow-recursion": "allow_recursion",
		"allow-transfer": "allow_transfer", "allow-query-cache": "allow_recursion"}[s.Keyword()]
	if s.Keyword() == "allow-query-cache" {
		if n.options.Find("allow-recursion") != nil {
			n.rep.add(s.Pos, s.Text(), Approximate, "allow-recursion decides who gets answers from the cache in airgapd")
			return
		}
		l.approx = append(l.approx, "airgapd's allow_recursion covers answers from the cache too")
	}
	if l.cidrs == nil {
		l.cidrs = []string{}
	}
	n.doc.set("dns", key, strs(l.cidrs), s.Pos)
	n.rep.add(s.Pos, s.Text(), l.outcome(), "%s", l.note(key))
}

// recursionDefault writes BIND's allow-recursion default when the options
// block does not set it: allow-query-cache, else allow-query, else
// localhost and localnets.
func (n *namedImport) recursionDefault(opts *Stmt) {
	if r := opts.Find("recursion"); r != nil && !yes(r.Arg(1)) {
		return
	}
	if opts.Find("allow-recursion") != nil || opts.Find("allow-query-cache") != nil {
		return
	}
	if q := opts.Find("allow-query"); q != nil {
		l := resolveList(q.Block, n.scope())
		n.doc.set("dns", "allow_recursion", strs(l.cidrs), q.Pos)
		n.rep.add(q.Pos, "(no allow-recursion)", Mapped, "BIND lets allow-query recurse when allow-recursion is unset: allow_recursion: %s", listText(l.cidrs))
		return
	}
	n.doc.set("dns", "allow_recursion", strs(loopback), opts.Pos)
	n.rep.add(opts.Pos, "(no allow-recursion)", Approximate, "BIND's default localhost; localnets became loopback only: add this host's networks by hand")
}

func (n *namedImport) importRecursion(s *Stmt) {
	if yes(s.Arg(1)) {
		n.rep.add(s.Pos, s.Text(), Mapped, "airgapd recurses for allow_recursion")
		return
	}
	n.doc.set("dns", "allow_recursion", strs([]string{}), s.Pos)
	n.rep.add(s.Pos, s.Text(), Mapped, "allow_recursion: [] (nobody)")
}

func (n *namedImport) importDNSSEC(s *Stmt) {
	if strings.EqualFold(s.Arg(1), "no") || strings.EqualFold(s.Arg(1), "false") {
		n.rep.add(s.Pos, s.Text(), Mapped, "airgapd does not validate either")
		return
	}
	n.rep.add(s.Pos, s.Text(), Approximate, "airgapd passes DNSSEC records through to clients that ask (DO) but does not validate")
}

// listenAddrs maps listen-on [port N] { … } to host:port listen addresses.
func listenAddrs(s *Stmt, defaultHost string) (addrs []string, notes []string) {
	port := "53"
	if strings.EqualFold(s.Arg(1), "port") {
		port = s.Arg(2)
	}
	for _, e := range s.Block {
		switch w := strings.ToLower(e.Arg(0)); {
		case w == "any":
			addrs = append(addrs, net.JoinHostPort(defaultHost, port))
		case w == "none":
		case net.ParseIP(w) != nil:
			addrs = append(addrs, net.JoinHostPort(w, port))
		default:
			notes = append(notes, "dropped "+e.Text()+" (airgapd listens on addresses, not lists)")
		}
	}
	return addrs, notes
}

func (n *namedImport) importListen(at Pos, v4, v6 *Stmt) {
	var addrs, notes []string
	from := at
	if v4 != nil {
		addrs, notes = listenAddrs(v4, "0.0.0.0")
		from = v4.Pos
	} else {
		addrs = []string{"0.0.0.0:53"}
	}
	if v6 != nil {
		a6, n6 := listenAddrs(v6, "::")
		notes = append(notes, n6...)
		switch {
		case len(a6) == 1 && a6[0] == "[::]:53" && len(addrs) == 1 && addrs[0] == "0.0.0.0:53":
			addrs = []string{":53"} // one dual-stack socket, as Go opens ":53"
		case len(a6) > 0 && strings.HasPrefix(a6[0], "[::]:"):
			notes = append(notes, "listen-on-v6 any beside IPv4 addresses: not imported (a wildcard IPv6 socket would take the IPv4 port too); list IPv6 addresses")
		default:
			addrs = append(addrs, a6...)
		}
	}
	if len(addrs) == 0 {
		n.doc.set("dns", "enabled", boolean(false), from)
		notes = append(notes, "named listens nowhere: dns.enabled: false")
	} else {
		n.doc.set("dns", "listen", strs(addrs), from)
	}
	for _, s := range []*Stmt{v4, v6} {
		if s != nil {
			n.rep.add(s.Pos, s.Text(), outcomeOf(notes), "dns.listen: %s%s", listText(addrs), notesText(notes))
		}
	}
}

// notesText appends notes to a report line.
func notesText(notes []string) string {
	if len(notes) == 0 {
		return ""
	}
	return "; " + strings.Join(notes, "; ")
}

func outcomeOf(notes []string) Outcome {
	if len(notes) > 0 {
		return Approximate
	}
	return Mapped
}

// serverList maps forwarders-style lists, `[port N] { ADDR [port N]; … }`.
func serverList(s *Stmt) (servers []string, notes []string) {
	port := ""
	if strings.EqualFold(s.Arg(1), "port") {
		port = s.Arg(2)
	}
	for _, e := range s.Block {
		addr := e.Arg(0)
		if net.ParseIP(addr) == nil {
			notes = append(notes, "dropped "+e.Text())
			continue
		}
		p := port
		if strings.EqualFold(e.Arg(1), "port") {
			p = e.Arg(2)
		}
		if len(e.Words) > 3 || (len(e.Words) > 1 && !strings.EqualFold(e.Arg(1), "port")) {
			notes = append(notes, "ignored the options of "+e.Text())
		}
		if p == "" || p == "53" {
			servers = append(servers, addr)
		} else {
			servers = append(servers, net.JoinHostPort(addr, p))
		}
	}
	return servers, notes
}

func (n *namedImport) importForwarders(s *Stmt) {
	servers, notes := serverList(s)
	if servers == nil {
		servers = []string{}
	}
	n.doc.set("dns", "forwarders", strs(servers), s.Pos)
	n.rep.add(s.Pos, s.Text(), outcomeOf(notes), "forwarders: %s%s", listText(servers), notesText(notes))
}

func (n *namedImport) importAlsoNotify(s *Stmt) {
	servers, notes := serverList(s)
	n.doc.set("dns", "also_notify", strs(servers), s.Pos)
	n.rep.add(s.Pos, s.Text(), outcomeOf(notes), "also_notify: %s%s", listText(servers), notesText(notes))
}

// bindDuration reads BIND's TTL values: seconds, or a number with a unit
// (1w2d3h4m5s); written as seconds for airgapd.
func bindDuration(s string) (string, error) {
	total, num := 0, ""
	units := map[byte]int{'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if s[i] >= '0' && s[i] <= '9' {
			num += string(s[i])
			continue
		}
		mult, ok := units[c]
		if !ok || num == "" {
			return "", fmt.Errorf("%q is not a duration", s)
		}
		v, _ := strconv.Atoi(num)
		total, num = total+v*mult, ""
	}
	if num != "" {
		v, err := strconv.Atoi(num)
		if err != nil {
			return "", fmt.Errorf("%q is not a duration", s)
		}
		total += v
	}
	return strconv.Itoa(total) + "s", nil
}

func (n *namedImport) importTTL(s *Stmt) {
	key := map[string]string{"max-cache-ttl": "max_ttl", "min-cache-ttl": "min_ttl", "max-ncache-ttl": "max_negative_ttl"}[s.Keyword()]
	d, err := bindDuration(s.Arg(1))
	if err != nil {
		n.rep.add(s.Pos, s.Text(), NoEquivalent, "%v", err)
		return
	}
	n.doc.set("dns", "cache."+key, str(d), s.Pos)
	n.rep.add(s.Pos, s.Text(), Mapped, "cache.%s: %s", key, d)
}

func (n *namedImport) importRateLimit(s *Stmt) {
	keys := map[string]string{"responses-per-second": "responses_per_second", "slip": "slip",
		"ipv4-prefix-length": "ipv4_prefix_length", "ipv6-prefix-length": "ipv6_prefix_length"}
	for _, e := range s.Block {
		if e.Keyword() == "exempt-clients" {
			l := resolveList(e.Block, n.scope())
			n.doc.set("dns", "rate_limit.exempt", strs(l.cidrs), e.Pos)
			n.rep.add(e.Pos, e.Text(), l.outcome(), "%s", l.note("rate_limit.exempt"))
			continue
		}
		key, ok := keys[e.Keyword()]
		v, err := strconv.Atoi(e.Arg(1))
		if !ok || err != nil {
			n.rep.add(e.Pos, e.Text(), NoEquivalent, "rate-limit option %s is not supported", e.Keyword())
			continue
		}
		n.doc.set("dns", "rate_limit."+key, integer(v), e.Pos)
		n.rep.add(e.Pos, e.Text(), Mapped, "rate_limit.%s: %d", key, v)
	}
}

// zoneFile resolves a zone's file against options { directory }.
func (n *namedImport) zoneFile(f string) string {
	if f == "" || filepath.IsAbs(f) {
		return f
	}
	return filepath.Join(n.directory, f)
}

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}
