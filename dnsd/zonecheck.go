package dnsd

// The checks named-checkzone makes on a zone's data, so that `airgapd
// check`, the UI and a reload refuse a zone that a BIND secondary would
// refuse after AXFR, each problem placed at the record that causes it.
//
// named-checkzone itself loads exact duplicates as one record and drops
// names outside the zone with a warning; airgapd refuses both, since the
// operator's list should say what is served, and "Delete" on one of two
// copies would leave the other.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/miekg/dns"
)

// placedRR is a record with where it was written.
type placedRR struct {
	rr dns.RR
	at recordPlace
}

// recordPlace is records[Index] of the zone's inline list, or line Line
// of the zone file File.
type recordPlace struct {
	Index int    // -1 for a record from the file
	Text  string // the inline record as written
	File  string
	Line  int
}

// ref names the place in a message about another record: an inline one
// with its text, since the DNS page shows records, not their indexes.
func (p recordPlace) ref() string {
	if p.File == "" && p.Text != "" {
		return fmt.Sprintf("%s (%q)", p, p.Text)
	}
	return p.String()
}

func (p recordPlace) String() string {
	if p.File != "" {
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("records[%d]", p.Index)
}

// recordProblem is one record a zone cannot hold.
type recordProblem struct {
	at   recordPlace
	msg  string
	hint string
}

func (p recordProblem) Error() string { return p.at.String() + ": " + p.msg }

// readZoneRecords parses a zone's inline records and its file, if any,
// placing each record. A record that does not parse is an error.
func readZoneRecords(z Zone) ([]placedRR, error) {
	origin := dns.CanonicalName(z.Name)
	var out []placedRR
	for i, line := range z.Records {
		rr, err := parseRecord(origin, line)
		if err != nil {
			return nil, fmt.Errorf("records[%d]: %w", i, err)
		}
		out = append(out, placedRR{rr: rr, at: recordPlace{Index: i, Text: line}})
	}
	if z.File != "" {
		data, err := os.ReadFile(z.File)
		if err != nil {
			return nil, fmt.Errorf("zone file: %w", err)
		}
		fileRRs, err := parseZoneFile(data, origin, z.File)
		if err != nil {
			return nil, err
		}
		out = append(out, fileRRs...)
	}
	return out, nil
}

// parseZoneFile parses a zone file's text, giving each record the line its
// entry starts on (an SOA in parentheses: the line with its owner).
func parseZoneFile(data []byte, origin, file string) ([]placedRR, error) {
	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data[:len(data):len(data)], '\n') // so each entry ends with a newline read
	}
	lr := &lineCountingReader{r: bufio.NewReader(bytes.NewReader(data))}
	zp := dns.NewZoneParser(lr, origin, file)
	zp.SetDefaultTTL(defaultZoneTTL)
	zp.SetIncludeAllowed(false)
	lines := strings.Split(string(data), "\n")
	var out []placedRR
	prevEnd, line := 0, 0 // lines consumed when the previous record was returned, and its line
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		// The entry's closing newline has been read. More records with no
		// new line read come from one $GENERATE line.
		if len(out) == 0 || lr.newlines > prevEnd {
			line = entryStart(lines, prevEnd, max(lr.newlines, prevEnd+1))
		}
		out = append(out, placedRR{rr: rr, at: recordPlace{Index: -1, File: file, Line: line}})
		prevEnd = lr.newlines
	}
	if err := zp.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// entryStart is the first line after line after (1-based, up to end) with
// a record on it: not blank, not only a comment, not a $ directive.
func entryStart(lines []string, after, end int) int {
	for l := after + 1; l <= end && l <= len(lines); l++ {
		s := strings.TrimSpace(lines[l-1])
		if s != "" && !strings.HasPrefix(s, ";") && !strings.HasPrefix(s, "$") {
			return l
		}
	}
	return end
}

// lineCountingReader counts the newlines the zone parser has read; it is
// an io.ByteReader, so the parser reads through it byte by byte with no
// buffer of its own in between.
type lineCountingReader struct {
	r        *bufio.Reader
	newlines int
}

func (l *lineCountingReader) ReadByte() (byte, error) {
	c, err := l.r.ReadByte()
	if err == nil && c == '\n' {
		l.newlines++
	}
	return c, err
}

func (l *lineCountingReader) Read(p []byte) (int, error) {
	for i := range p {
		c, err := l.ReadByte()
		if err != nil {
			if i > 0 && err == io.EOF {
				return i, nil
			}
			return i, err
		}
		p[i] = c
	}
	return len(p), nil
}

// atCNAME is what may share a name with a CNAME, as BIND allows: the
// DNSSEC records that sign and deny it (RFC 2535 KEY, RRSIG, NSEC).
var atCNAME = map[uint16]bool{dns.TypeCNAME: true, dns.TypeRRSIG: true, dns.TypeNSEC: true, dns.TypeKEY: true}

// checkZoneRecords finds what named-checkzone refuses in a zone's records
// (CNAME and other data, more than one CNAME, DNAME or SOA at a name, an
// apex NS that is a CNAME or has no address), and what it would silently
// drop (exact duplicates, names outside the zone). Each problem is placed
// at the record that makes it, the later one of a clashing pair.
func checkZoneRecords(origin string, recs []placedRR) []recordProblem {
	var ps []recordProblem
	byName := map[string][]placedRR{}
	for _, p := range recs {
		h := p.rr.Header()
		name := dns.CanonicalName(h.Name)
		if !dns.IsSubDomain(origin, name) {
			ps = append(ps, recordProblem{at: p.at, msg: fmt.Sprintf("%s is outside the zone %s", name, origin),
				hint: "write names relative to the zone (\"node1\"), or absolute ones ending in ." + origin})
			continue
		}
		if _, isSOA := p.rr.(*dns.SOA); isSOA && name != origin {
			ps = append(ps, recordProblem{at: p.at, msg: fmt.Sprintf("SOA for %s is not at the zone apex %s", name, origin), hint: "write the SOA with the owner @"})
			continue
		}
		if prob, ok := clash(origin, name, p, byName[name]); ok {
			ps = append(ps, prob)
			continue
		}
		byName[name] = append(byName[name], p)
	}
	for _, p := range byName[origin] {
		ns, ok := p.rr.(*dns.NS)
		if !ok {
			continue
		}
		target := dns.CanonicalName(ns.Ns)
		if !dns.IsSubDomain(origin, target) {
			continue
		}
		at := byName[target]
		if len(at) == 0 {
			at = wildcardRecords(origin, target, byName)
		}
		if prob, bad := checkNSTarget(target, p, at); bad {
			ps = append(ps, prob)
		}
	}
	return ps
}

// clash reports what is wrong with adding p to the records already at name.
func clash(origin, name string, p placedRR, have []placedRR) (recordProblem, bool) {
	t := p.rr.Header().Rrtype
	typ := dns.TypeToString[t]
	if t == dns.TypeCNAME && name == origin {
		return recordProblem{at: p.at, msg: fmt.Sprintf("CNAME and other data: a CNAME at the zone apex %s, which holds the zone's SOA and NS", origin),
			hint: "the apex cannot be an alias; give its addresses as A/AAAA records"}, true
	}
	for _, q := range have {
		qt := q.rr.Header().Rrtype
		switch {
		case dns.IsDuplicate(p.rr, q.rr):
			return recordProblem{at: p.at, msg: fmt.Sprintf("duplicate record: %s %s is already in the zone at %s", name, typ, q.at.ref()),
				hint: "a zone holds each record once; remove one of them"}, true
		case qt == t && t == dns.TypeSOA:
			return recordProblem{at: p.at, msg: fmt.Sprintf("more than one SOA (multiple RRs of singleton type): the other is at %s", q.at.ref()),
				hint: "a zone has one SOA; remove one"}, true
		case qt == t && (t == dns.TypeCNAME || t == dns.TypeDNAME):
			return recordProblem{at: p.at, msg: fmt.Sprintf("multiple RRs of singleton type: %s has a %s already at %s", name, typ, q.at.ref()),
				hint: "a name has at most one " + typ}, true
		case (t == dns.TypeCNAME && !atCNAME[qt]) || (qt == dns.TypeCNAME && !atCNAME[t]):
			other := dns.TypeToString[qt]
			if t != dns.TypeCNAME {
				other = typ
			}
			return recordProblem{at: p.at, msg: fmt.Sprintf("CNAME and other data: %s has both a CNAME and a record of type %s (the other is at %s)", name, other, q.at.ref()),
				hint: "a name with a CNAME has no other records; a BIND secondary refuses the zone. Remove one, or alias another name"}, true
		}
	}
	return recordProblem{}, false
}

// wildcardRecords are the records of the wildcard that covers name, a
// name with none of its own (RFC 4592: "*." plus the closest existing
// ancestor), as named-checkzone finds an NS's address through one.
func wildcardRecords(origin, name string, byName map[string][]placedRR) []placedRR {
	exists := func(n string) bool {
		for k := range byName {
			if dns.IsSubDomain(n, k) {
				return true
			}
		}
		return false
	}
	for n := parent(name); n != "" && dns.IsSubDomain(origin, n); n = parent(n) {
		if n == origin || exists(n) {
			return byName["*."+n]
		}
	}
	return nil
}

// checkNSTarget refuses an apex NS naming a host of the zone that is a
// CNAME or has no address, as named-checkzone does; the zone's own
// nameserver must be reachable without leaving it.
func checkNSTarget(target string, ns placedRR, at []placedRR) (recordProblem, bool) {
	hasAddr := false
	for _, q := range at {
		switch q.rr.Header().Rrtype {
		case dns.TypeCNAME:
			return recordProblem{at: ns.at, msg: fmt.Sprintf("NS %s is a CNAME (illegal; the CNAME is at %s)", target, q.at.ref()),
				hint: "name the host itself in NS, not an alias"}, true
		case dns.TypeA, dns.TypeAAAA:
			hasAddr = true
		}
	}
	if !hasAddr {
		return recordProblem{at: ns.at, msg: fmt.Sprintf("NS %s has no address records (A or AAAA)", target),
			hint: "add an A or AAAA record for it"}, true
	}
	return recordProblem{}, false
}
