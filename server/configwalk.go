package server

// The walk over a config's YAML nodes that finds every unknown key and
// malformed value with its line, and the placing of validation problems
// at their nodes: what makes `airgapd check` report everything at once.

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/airgapd/airgapd/internal/conf"
)

// walker checks a YAML node tree against a Go type, collecting unknown keys
// and malformed values with their positions.
type walker struct {
	source   string
	diags    []Diagnostic
	reported []string // paths already reported, so validation does not pile on
}

// alreadyReported reports whether path, or a parent or child of it, has a
// diagnostic: a value the walker threw out would otherwise come back from
// Validate as "missing".
func (w *walker) alreadyReported(path string) bool {
	for _, r := range w.reported {
		if r == path || strings.HasPrefix(path, r+".") || strings.HasPrefix(path, r+"[") ||
			strings.HasPrefix(r, path+".") || strings.HasPrefix(r, path+"[") {
			return true
		}
	}
	return false
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

func (w *walker) add(n *yaml.Node, path, hint, format string, args ...any) {
	w.reported = append(w.reported, path)
	w.diags = append(w.diags, Diagnostic{File: w.source, Line: n.Line, Col: n.Column, Path: path, Msg: fmt.Sprintf(format, args...), Hint: hint})
}

// nullify replaces a bad node so the decode that follows leaves the default.
func nullify(n *yaml.Node) {
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
}

// hide renames a reported key so the decode that follows ignores it; the
// name is unique so yaml.v3 does not see duplicates either.
func hide(k *yaml.Node) {
	k.Value = fmt.Sprintf("\x00reported-%d-%d", k.Line, k.Column)
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return
	}
	// Types with their own YAML syntax (durations, tls, registry mirrors)
	// are tried on their own, so a bad one is reported where it is.
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			w.add(n, path, "", "%s", cleanYAMLError(err))
			nullify(n)
			return
		}
		if n.Kind != yaml.MappingNode || t.Kind() != reflect.Struct {
			return
		}
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.add(n, path, "", "expected a mapping of keys, found %s", describe(n))
			nullify(n)
			return
		}
		fields := yamlFields(t)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := conf.Join(path, k.Value)
			if seen[k.Value] {
				w.add(k, p, "remove one of them", "key %q appears twice", k.Value)
				hide(k)
				continue
			}
			seen[k.Value] = true
			f, ok := fields[k.Value]
			if !ok {
				w.add(k, p, suggest(k.Value, fields), "unknown key %q", k.Value)
				hide(k)
				continue
			}
			w.walk(v, f, p)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.add(n, path, "write a list: [a, b] or one '- item' per line", "expected a list, found %s", describe(n))
			nullify(n)
			return
		}
		for i, item := range n.Content {
			w.walk(item, t.Elem(), conf.Index(path, i))
		}
	case reflect.String, reflect.Int, reflect.Bool:
		if n.Kind != yaml.ScalarNode {
			w.add(n, path, "", "expected a single value, found %s", describe(n))
			nullify(n)
			return
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			w.add(n, path, "", "%q is not a %s", n.Value, kindWord(t.Kind()))
			nullify(n)
		}
	}
}

func kindWord(k reflect.Kind) string {
	switch k {
	case reflect.Int:
		return "whole number"
	case reflect.Bool:
		return "boolean (true or false)"
	}
	return k.String()
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

// yamlFields maps each YAML key of a struct to its field type.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "-" || !f.IsExported() {
			continue
		}
		if tag == "" {
			tag = strings.ToLower(f.Name)
		}
		m[tag] = f.Type
	}
	return m
}

// suggest names the closest known key, for misspellings.
func suggest(key string, fields map[string]reflect.Type) string {
	best, bestDist := "", 3
	for k := range fields {
		if d := editDistance(key, k); d < bestDist || (d == bestDist && best != "" && k < best) {
			best, bestDist = k, d
		}
	}
	if best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return "known keys here: " + strings.Join(keys, ", ")
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// at places a validation problem at the node its path names, or the nearest
// ancestor that exists (a missing key is reported at its section).
func (w *walker) at(root *yaml.Node, p conf.Problem) Diagnostic {
	d := Diagnostic{File: w.source, Path: p.Path, Msg: p.Msg, Hint: p.Hint}
	if p.File != "" { // in a file the config names, e.g. a zone file
		d.File, d.Line, d.Col = p.File, p.Line, 1
		return d
	}
	if n := lookup(root, p.Path); n != nil {
		d.Line, d.Col = n.Line, n.Column
	}
	return d
}

// lookup finds the node at a path like "dns.zones[0].file", returning the
// deepest node found along the way.
func lookup(root *yaml.Node, path string) *yaml.Node {
	n := root
	for _, part := range splitPath(path) {
		next := child(n, part)
		if next == nil {
			return n
		}
		n = next
	}
	return n
}

func splitPath(path string) []string {
	var parts []string
	for _, dotted := range strings.Split(path, ".") {
		for dotted != "" {
			i := strings.IndexByte(dotted, '[')
			if i < 0 {
				parts = append(parts, dotted)
				break
			}
			if i > 0 {
				parts = append(parts, dotted[:i])
			}
			j := strings.IndexByte(dotted, ']')
			if j < i {
				break
			}
			parts = append(parts, dotted[i:j+1])
			dotted = dotted[j+1:]
		}
	}
	return parts
}

func child(n *yaml.Node, part string) *yaml.Node {
	if strings.HasPrefix(part, "[") {
		i, err := strconv.Atoi(strings.Trim(part, "[]"))
		if err != nil || n.Kind != yaml.SequenceNode || i >= len(n.Content) {
			return nil
		}
		return n.Content[i]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == part {
			// Point at the value for scalars, the key for blocks.
			if v := n.Content[i+1]; v.Kind == yaml.ScalarNode {
				return v
			}
			return n.Content[i+1]
		}
	}
	return nil
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func yamlErrorDiagnostic(source string, data []byte, err error) Diagnostic {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	d := Diagnostic{File: source, Msg: msg, Hint: "this is a YAML syntax error; check indentation and quoting"}
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		d.Line, _ = strconv.Atoi(m[1])
		d.Col = 1
		d.Msg = m[2]
	}
	// yaml.v3 reports an unclosed [ or { at the line before the list, or
	// at its end: point at the bracket itself, where the fix goes.
	for open, closing := range map[byte]byte{'[': ']', '{': '}'} {
		if strings.Contains(d.Msg, "expected ',' or '"+string(closing)+"'") {
			if line, col, ok := unclosedBracket(data, open, closing, d.Line); ok {
				d.Line, d.Col = line, col
				d.Msg = fmt.Sprintf("this %c is never closed", open)
				d.Hint = fmt.Sprintf("add the %c that ends it (or write a block list, one \"- item\" a line)", closing)
			}
		}
	}
	return d
}

// unclosedBracket finds, from line from on, the first line whose open
// brackets outnumber its closing ones (outside quotes and comments), and
// the column of the first bracket left open.
func unclosedBracket(data []byte, open, closing byte, from int) (line, col int, ok bool) {
	for i, text := range strings.Split(string(data), "\n") {
		if i+1 < from {
			continue
		}
		var stack []int
		var quote byte
		for j := 0; j < len(text); j++ {
			c := text[j]
			switch {
			case quote != 0:
				if c == quote {
					quote = 0
				}
			case c == '"' || c == '\'':
				quote = c
			case c == '#' && (j == 0 || text[j-1] == ' '):
				j = len(text)
			case c == open:
				stack = append(stack, j)
			case c == closing && len(stack) > 0:
				stack = stack[:len(stack)-1]
			}
		}
		if len(stack) > 0 {
			return i + 1, stack[0] + 1, true
		}
	}
	return 0, 0, false
}

func typeErrorDiagnostics(source string, err error) []Diagnostic {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return []Diagnostic{{File: source, Msg: cleanYAMLError(err)}}
	}
	var ds []Diagnostic
	for _, e := range te.Errors {
		d := Diagnostic{File: source, Msg: e}
		if m := yamlLineRE.FindStringSubmatch(e); m != nil {
			d.Line, _ = strconv.Atoi(m[1])
			d.Col = 1
			d.Msg = m[2]
		}
		ds = append(ds, d)
	}
	return ds
}

func cleanYAMLError(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "yaml: unmarshal errors:\n")
	return strings.TrimSpace(strings.TrimPrefix(s, "yaml: "))
}
