package adopt

import (
	"strings"
)

// importZone maps one zone statement: primaries by their file (reused in
// place), forward zones, the root hints; secondaries from their last
// transferred copy; the rest reported.
func (n *namedImport) importZone(s *Stmt) {
	name := strings.TrimSuffix(s.Arg(1), ".")
	if name == "" {
		name = "."
	}
	if class := strings.ToUpper(s.Arg(2)); class != "" && class != "IN" {
		n.rep.add(s.Pos, zoneText(s), NoEquivalent, "class %s zones are not supported", class)
		return
	}
	typ := ""
	if t := s.Find("type"); t != nil {
		typ = strings.ToLower(t.Arg(1))
	}
	file := ""
	if f := s.Find("file"); f != nil {
		file = n.zoneFile(f.Arg(1))
	}
	switch typ {
	case "master", "primary":
		n.primaryZone(s, name, file, "")
	case "slave", "secondary", "mirror":
		if file == "" || !fileExists(file) {
			n.rep.add(s.Pos, zoneText(s), NoEquivalent, "secondary zone %s has no transferred copy on disk; airgapd serves zones as a primary only: copy the zone's file and list it under dns.zones", name)
			return
		}
		n.primaryZone(s, name, file, "served as a primary from the last transferred copy; airgapd does not transfer it again from its primaries")
	case "forward":
		n.forwardZone(s, name)
	case "hint":
		n.hintZone(s, file)
	default:
		n.rep.add(s.Pos, zoneText(s), NoEquivalent, "zone type %q is not supported", typ)
	}
	n.zoneOptions(s, typ)
}

func zoneText(s *Stmt) string {
	return strings.Join(s.Words, " ") + " { type " + typeOf(s) + "; … }"
}

func typeOf(s *Stmt) string {
	if t := s.Find("type"); t != nil {
		return t.Arg(1)
	}
	return "?"
}

func (n *namedImport) primaryZone(s *Stmt, name, file, approx string) {
	if file == "" {
		n.rep.add(s.Pos, zoneText(s), NoEquivalent, "zone %s has no file", name)
		return
	}
	n.doc.add("dns", "zones", mapping("name", str(name), "file", str(file)), s.Pos)
	switch {
	case approx != "":
		n.rep.add(s.Pos, zoneText(s), Approximate, "dns.zones %s: %s", name, approx)
	case !fileExists(file):
		n.rep.add(s.Pos, zoneText(s), Approximate, "dns.zones %s, file %s (not found on this host: copy it there before `airgapd check`)", name, file)
	default:
		n.rep.add(s.Pos, zoneText(s), Mapped, "dns.zones %s, file %s reused in place", name, file)
	}
}

func (n *namedImport) forwardZone(s *Stmt, name string) {
	f := s.Find("forwarders")
	if f == nil {
		n.rep.add(s.Pos, zoneText(s), NoEquivalent, "forward zone %s has no forwarders (BIND's way of turning forwarding off for it); airgapd has no equivalent", name)
		return
	}
	servers, notes := serverList(f)
	if len(servers) == 0 {
		n.rep.add(s.Pos, zoneText(s), NoEquivalent, "forward zone %s lists no usable forwarders", name)
		return
	}
	if fw := s.Find("forward"); fw != nil && strings.EqualFold(fw.Arg(1), "first") {
		notes = append(notes, "forward first: airgapd's forward zones are always forward only")
	}
	n.doc.add("dns", "forward_zones", mapping("name", str(name), "forwarders", strs(servers)), s.Pos)
	n.rep.add(s.Pos, zoneText(s), outcomeOf(notes), "dns.forward_zones %s: %s%s", name, listText(servers), notesText(notes))
}

func (n *namedImport) hintZone(s *Stmt, file string) {
	if file != "" && fileExists(file) {
		n.doc.set("dns", "root_hints", str(file), s.Pos)
		n.rep.add(s.Pos, zoneText(s), Mapped, "root_hints: %s", file)
		return
	}
	n.rep.add(s.Pos, zoneText(s), Approximate, "root hints file %q is not on this host: airgapd's built-in IANA root hints are used (root_hints left empty)", file)
}

// zoneOptions reports a zone's statements other than those mapped above.
func (n *namedImport) zoneOptions(s *Stmt, typ string) {
	for _, o := range s.Block {
		switch o.Keyword() {
		case "type", "file":
			continue
		case "forwarders", "forward":
			if typ == "forward" {
				continue
			}
		case "masters", "primaries":
			if typ != "master" && typ != "primary" {
				n.rep.add(o.Pos, o.Text(), NoEquivalent, "airgapd does not transfer zones in")
				continue
			}
		}
		n.rep.add(o.Pos, o.Text(), NoEquivalent, "zone option %s is not supported; the zone follows dns.allow_* and dns.also_notify", o.Keyword())
	}
}
