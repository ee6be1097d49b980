package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Edits to airgapd.yaml are made as text splices at positions that
// yaml.v3's Node tree gives: the node tells where a value is, and only
// those bytes change. Re-encoding the document would reflow indentation,
// quoting and comments (STYLE.md point 4; AdGuard Home issue #6232), so
// every other byte of the file stays as the user wrote it.

// errHandEdit says an edit needs a shape of YAML the splicer does not
// handle; the message tells the user what to write by hand.
var errHandEdit = errors.New("this part of the config is written in a form the UI does not edit; change it on the Settings page")

// yamlDoc is a parsed config with its source bytes.
type yamlDoc struct {
	src  []byte
	root *yaml.Node // the top-level mapping
}

func parseYAMLDoc(src []byte) (*yamlDoc, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("the config is not valid YAML: %w", err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("the config is not a mapping of keys")
	}
	return &yamlDoc{src: src, root: doc.Content[0]}, nil
}

// mapGet returns the key and value nodes of key in a mapping node.
func mapGet(m *yaml.Node, key string) (k, v *yaml.Node) {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i], m.Content[i+1]
		}
	}
	return nil, nil
}

// offset turns a node's 1-based line and column (in characters) into a
// byte offset in src. Lines are counted as yaml.v3 counts them: a line ends
// at LF, CR, CRLF, and also NEL, LS and PS (it follows YAML 1.1 there), so a
// hand-written NEL inside a value cannot shift an edit onto another line.
func (d *yamlDoc) offset(line, col int) int {
	off := 0
	for l := 1; l < line; l++ {
		_, end := nextBreak(d.src, off)
		if end < 0 {
			return len(d.src)
		}
		off = end
	}
	for c := 1; c < col && off < len(d.src); c++ {
		if n := breakLen(d.src[off:]); n > 0 {
			break
		}
		_, size := utf8.DecodeRune(d.src[off:])
		off += size
	}
	return off
}

// breakLen is the length of the line break b starts with, as yaml.v3 sees
// line breaks, or 0.
func breakLen(b []byte) int {
	switch {
	case len(b) == 0:
		return 0
	case b[0] == '\r' && len(b) > 1 && b[1] == '\n':
		return 2
	case b[0] == '\r' || b[0] == '\n':
		return 1
	case bytes.HasPrefix(b, []byte("\u0085")), bytes.HasPrefix(b, []byte("\u2028")), bytes.HasPrefix(b, []byte("\u2029")):
		_, size := utf8.DecodeRune(b)
		return size
	}
	return 0
}

// nextBreak finds the first line break at or after off: where it starts
// and where the next line starts; -1, -1 when there is none.
func nextBreak(src []byte, off int) (start, end int) {
	for i := off; i < len(src); {
		if n := breakLen(src[i:]); n > 0 {
			return i, i + n
		}
		_, size := utf8.DecodeRune(src[i:])
		i += size
	}
	return -1, -1
}

func (d *yamlDoc) start(n *yaml.Node) int { return d.offset(n.Line, n.Column) }

// scalarSpan is where a one-line scalar's text (quotes included) sits.
func (d *yamlDoc) scalarSpan(n *yaml.Node) (int, int, error) {
	if n.Kind != yaml.ScalarNode {
		return 0, 0, errHandEdit
	}
	s := d.start(n)
	switch {
	case n.Style&yaml.DoubleQuotedStyle != 0:
		for i := s + 1; i < len(d.src); i++ {
			if breakLen(d.src[i:]) > 0 {
				return 0, 0, errHandEdit
			}
			switch d.src[i] {
			case '\\':
				i++
			case '"':
				return s, i + 1, nil
			}
		}
	case n.Style&yaml.SingleQuotedStyle != 0:
		for i := s + 1; i < len(d.src); i++ {
			if breakLen(d.src[i:]) > 0 {
				return 0, 0, errHandEdit
			}
			if d.src[i] == '\'' {
				if i+1 < len(d.src) && d.src[i+1] == '\'' {
					i++
					continue
				}
				return s, i + 1, nil
			}
		}
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) == 0:
		if strings.Contains(n.Value, "\n") || !bytes.HasPrefix(d.src[s:], []byte(n.Value)) {
			return 0, 0, errHandEdit
		}
		return s, s + len(n.Value), nil
	}
	return 0, 0, errHandEdit
}

// lineStart is the offset of the start of the line holding off.
func (d *yamlDoc) lineStart(off int) int {
	start := 0
	for {
		_, end := nextBreak(d.src, start)
		if end < 0 || end > off {
			return start
		}
		start = end
	}
}

// lineEnd is the offset just past the line break ending the line holding
// off.
func (d *yamlDoc) lineEnd(off int) int {
	_, end := nextBreak(d.src, off)
	if end < 0 {
		return len(d.src)
	}
	return end
}

// checkRecordText refuses what cannot be one record on one line of the
// config: line breaks of any kind yaml.v3 knows, C0 and C1 control
// characters (NEL among them) and bytes that are not UTF-8.
func checkRecordText(record string) error {
	const oneLine = "a record is one RFC 1035 line, e.g. `node1 300 A 192.168.10.21`"
	if record == "" {
		return errors.New(oneLine)
	}
	if !utf8.ValidString(record) {
		return errors.New("the record is not valid UTF-8; " + oneLine)
	}
	for _, r := range record {
		switch {
		case r == '\t':
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			return fmt.Errorf("the record holds the control character U+%04X; %s", r, oneLine)
		case r == 0x2028 || r == 0x2029:
			return fmt.Errorf("the record holds the line separator U+%04X; %s", r, oneLine)
		}
	}
	return nil
}

func splice(src []byte, from, to int, text string) []byte {
	out := make([]byte, 0, len(src)+len(text))
	out = append(out, src[:from]...)
	out = append(out, text...)
	return append(out, src[to:]...)
}

// yamlQuote writes s as a YAML double-quoted scalar (JSON strings are).
func yamlQuote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// SetPasswordHash returns src with web.admin.password_hash set to hash.
// Only the value changes (or, when the key is missing from a block
// mapping, one line is added); every other byte stays.
func SetPasswordHash(src []byte, hash string) ([]byte, error) {
	d, err := parseYAMLDoc(src)
	if err != nil {
		return nil, err
	}
	_, webNode := mapGet(d.root, "web")
	if webNode == nil {
		return nil, errors.New("the config has no web: section, so the admin UI is off; add `web: { listen: \":8443\" }` first")
	}
	if webNode.Kind != yaml.MappingNode {
		return nil, errors.New("web: is not a mapping; write `web: { listen: \":8443\" }` first")
	}
	_, admin := mapGet(webNode, "admin")
	if admin == nil {
		return d.insertKey(webNode, "admin: { password_hash: "+yamlQuote(hash)+" }")
	}
	if admin.Kind != yaml.MappingNode {
		return nil, errors.New("web.admin is not a mapping; write `admin: { password_hash: \"\" }` under web:")
	}
	k, v := mapGet(admin, "password_hash")
	if k == nil {
		return d.insertKey(admin, "password_hash: "+yamlQuote(hash))
	}
	if v.Tag == "!!null" && v.Value == "" {
		// `password_hash:` with nothing after it.
		ks, ke, err := d.scalarSpan(k)
		if err != nil {
			return nil, err
		}
		_ = ks
		colon := bytes.IndexByte(d.src[ke:], ':')
		if colon < 0 {
			return nil, errHandEdit
		}
		at := ke + colon + 1
		return splice(d.src, at, at, " "+yamlQuote(hash)), nil
	}
	s, e, err := d.scalarSpan(v)
	if err != nil {
		return nil, err
	}
	return splice(d.src, s, e, yamlQuote(hash)), nil
}

// insertKey adds "key: value" text to mapping m: in a block mapping, as a
// line of its own before the first key, indented like it; in a flow
// mapping ({…}), right after the opening brace.
func (d *yamlDoc) insertKey(m *yaml.Node, text string) ([]byte, error) {
	if m.Style&yaml.FlowStyle != 0 {
		s := d.start(m)
		if s >= len(d.src) || d.src[s] != '{' {
			return nil, errHandEdit
		}
		sep := ", "
		if len(m.Content) == 0 {
			sep = " "
		}
		return splice(d.src, s+1, s+1, " "+text+sep), nil
	}
	if len(m.Content) == 0 {
		return nil, errHandEdit
	}
	first := d.start(m.Content[0])
	ls := d.lineStart(first)
	indent := d.src[ls:first]
	if len(bytes.TrimLeft(indent, " ")) != 0 { // e.g. "- key:" on a list item's line
		return nil, errHandEdit
	}
	return splice(d.src, ls, ls, string(indent)+text+"\n"), nil
}

// zoneRecords finds dns.zones[i].records for the zone named zone.
func (d *yamlDoc) zoneRecords(zone string) (*yaml.Node, error) {
	_, dns := mapGet(d.root, "dns")
	_, zones := mapGet(dns, "zones")
	if zones == nil || zones.Kind != yaml.SequenceNode {
		return nil, errors.New("the config has no dns.zones")
	}
	for _, z := range zones.Content {
		_, name := mapGet(z, "name")
		if name == nil || !sameZone(name.Value, zone) {
			continue
		}
		_, recs := mapGet(z, "records")
		if recs == nil || recs.Kind != yaml.SequenceNode {
			return nil, fmt.Errorf("zone %s has no records: list; add `records: []` to it on the Settings page", zone)
		}
		return recs, nil
	}
	return nil, fmt.Errorf("no zone %q in dns.zones", zone)
}

func sameZone(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "."), strings.TrimSuffix(b, "."))
}

// AddZoneRecord returns src with record appended to the records of zone.
func AddZoneRecord(src []byte, zone, record string) ([]byte, error) {
	record = strings.TrimSpace(record)
	if err := checkRecordText(record); err != nil {
		return nil, err
	}
	d, err := parseYAMLDoc(src)
	if err != nil {
		return nil, err
	}
	recs, err := d.zoneRecords(zone)
	if err != nil {
		return nil, err
	}
	q := yamlQuote(record)
	if recs.Style&yaml.FlowStyle != 0 {
		if len(recs.Content) == 0 {
			s := d.start(recs)
			if s >= len(d.src) || d.src[s] != '[' {
				return nil, errHandEdit
			}
			return splice(d.src, s+1, s+1, q), nil
		}
		_, e, err := d.scalarSpan(recs.Content[len(recs.Content)-1])
		if err != nil {
			return nil, err
		}
		return splice(d.src, e, e, ", "+q), nil
	}
	last := recs.Content[len(recs.Content)-1]
	s, e, err := d.scalarSpan(last)
	if err != nil {
		return nil, err
	}
	ls := d.lineStart(s)
	prefix := d.src[ls:s] // "    - "
	if strings.TrimSpace(string(prefix)) != "-" {
		return nil, errHandEdit
	}
	at := d.lineEnd(e)
	text := string(prefix) + q + "\n"
	if at == len(d.src) && (len(d.src) == 0 || d.src[len(d.src)-1] != '\n') {
		text = "\n" + string(prefix) + q
	}
	return splice(d.src, at, at, text), nil
}

// findZoneRecord parses src and finds the record of zone whose text is
// record: the document, the zone's records list and the record's index.
func findZoneRecord(src []byte, zone, record string) (*yamlDoc, *yaml.Node, int, error) {
	d, err := parseYAMLDoc(src)
	if err != nil {
		return nil, nil, 0, err
	}
	recs, err := d.zoneRecords(zone)
	if err != nil {
		return nil, nil, 0, err
	}
	for i, n := range recs.Content {
		if n.Kind == yaml.ScalarNode && n.Value == record {
			return d, recs, i, nil
		}
	}
	return nil, nil, 0, fmt.Errorf("zone %s has no record %q in the config", zone, record)
}

// DeleteZoneRecord returns src without the record of zone whose text is
// record (as written in the config).
func DeleteZoneRecord(src []byte, zone, record string) ([]byte, error) {
	d, recs, idx, err := findZoneRecord(src, zone, record)
	if err != nil {
		return nil, err
	}
	s, e, err := d.scalarSpan(recs.Content[idx])
	if err != nil {
		return nil, err
	}
	if recs.Style&yaml.FlowStyle != 0 {
		switch {
		case idx+1 < len(recs.Content): // up to the next item: takes ", "
			e = d.start(recs.Content[idx+1])
		case idx > 0: // the last: from the end of the one before
			_, pe, err := d.scalarSpan(recs.Content[idx-1])
			if err != nil {
				return nil, err
			}
			s = pe
		}
		return splice(d.src, s, e, ""), nil
	}
	ls := d.lineStart(s)
	if strings.TrimSpace(string(d.src[ls:s])) != "-" {
		return nil, errHandEdit
	}
	if len(recs.Content) == 1 {
		return nil, errors.New("this is the zone's last record in a block list; delete it on the Settings page (write `records: []`)")
	}
	return splice(d.src, ls, d.lineEnd(e), ""), nil
}

// ZoneRecords lists the records of every zone as written in the config.
func ZoneRecords(src []byte) (map[string][]string, error) {
	d, err := parseYAMLDoc(src)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	_, dns := mapGet(d.root, "dns")
	_, zones := mapGet(dns, "zones")
	if zones == nil {
		return out, nil
	}
	for _, z := range zones.Content {
		_, name := mapGet(z, "name")
		if name == nil {
			continue
		}
		_, recs := mapGet(z, "records")
		var rs []string
		if recs != nil {
			for _, r := range recs.Content {
				rs = append(rs, r.Value)
			}
		}
		out[name.Value] = rs
	}
	return out, nil
}

// ReplaceZoneRecord returns src with the record of zone whose text is old
// (as written in the config) changed to record: only that scalar's text
// changes, so its line keeps its indent and comment.
func ReplaceZoneRecord(src []byte, zone, old, record string) ([]byte, error) {
	record = strings.TrimSpace(record)
	if err := checkRecordText(record); err != nil {
		return nil, err
	}
	if record == old {
		return nil, errors.New("the record is unchanged")
	}
	d, recs, idx, err := findZoneRecord(src, zone, old)
	if err != nil {
		return nil, err
	}
	s, e, err := d.scalarSpan(recs.Content[idx])
	if err != nil {
		return nil, err
	}
	return splice(d.src, s, e, yamlQuote(record)), nil
}
