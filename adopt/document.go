package adopt

import (
	"bytes"
	"fmt"
	"strconv"

	"gopkg.in/yaml.v3"
)

// sectionOrder is the order of ARCHITECTURE.md's config, in which the
// sections are written.
var sectionOrder = []string{"dns", "ntp", "gateway", "mirror", "registry"}

// Document is the airgapd.yaml being built: one mapping per section, each
// key carrying a comment that names where it came from.
type Document struct {
	sections map[string]*yaml.Node
	heads    map[string]string
}

func newDocument() *Document {
	return &Document{sections: map[string]*yaml.Node{}, heads: map[string]string{}}
}

func (d *Document) section(name string) *yaml.Node {
	s, ok := d.sections[name]
	if !ok {
		s = &yaml.Node{Kind: yaml.MappingNode}
		d.sections[name] = s
	}
	return s
}

// Has reports whether a section was written.
func (d *Document) Has(section string) bool { return d.sections[section] != nil }

// setHead puts a comment above a section: the files it came from.
func (d *Document) setHead(section, comment string) { d.heads[section] = comment }

// set writes section.key (key may be "a.b" for one nested level), replacing
// an earlier value; from names the source line in a comment.
func (d *Document) set(section, key string, value *yaml.Node, from Pos) {
	m := d.section(section)
	if outer, inner, nested := cut(key); nested {
		m = child(m, outer)
		key = inner
	}
	keyNode := &yaml.Node{Kind: yaml.ScalarNode, Value: key}
	// yaml.v3 writes a block value's line comment on its parent's line, so
	// block values carry it on their key instead.
	if value.Kind == yaml.ScalarNode || value.Style == yaml.FlowStyle {
		value.LineComment = commentFor(value, from)
	} else {
		keyNode.LineComment = commentFor(keyNode, from)
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i], m.Content[i+1] = keyNode, value
			return
		}
	}
	m.Content = append(m.Content, keyNode, value)
}

// get returns section.key, or nil.
func (d *Document) get(section, key string) *yaml.Node {
	m := d.sections[section]
	if m == nil {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// add appends item to the list at section.key.
func (d *Document) add(section, key string, item *yaml.Node, from Pos) {
	list := d.get(section, key)
	if list == nil {
		list = &yaml.Node{Kind: yaml.SequenceNode}
		d.set(section, key, list, Pos{})
	}
	item.HeadComment = "from " + from.String()
	list.Content = append(list.Content, item)
}

func cut(key string) (outer, inner string, ok bool) {
	for i := range key {
		if key[i] == '.' {
			return key[:i], key[i+1:], true
		}
	}
	return key, "", false
}

func child(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	c := &yaml.Node{Kind: yaml.MappingNode}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, c)
	return c
}

func commentFor(value *yaml.Node, from Pos) string {
	if from.File == "" {
		return value.LineComment
	}
	c := "from " + from.String()
	if value.LineComment != "" {
		c += "; " + value.LineComment
	}
	return c
}

// YAML renders the document.
func (d *Document) YAML() ([]byte, error) {
	root := &yaml.Node{Kind: yaml.MappingNode}
	for _, name := range sectionOrder {
		s, ok := d.sections[name]
		if !ok {
			continue
		}
		key := &yaml.Node{Kind: yaml.ScalarNode, Value: name, HeadComment: d.heads[name]}
		root.Content = append(root.Content, key, s)
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root},
		HeadComment: "Written by `airgapd import`; review it, then check it with `airgapd check --config FILE`."}); err != nil {
		return nil, fmt.Errorf("encode airgapd.yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode airgapd.yaml: %w", err)
	}
	return b.Bytes(), nil
}

// Node builders. Lists of scalars are written in flow style, as
// examples/lab.yaml writes them.

func str(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func integer(n int) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(n)}
}

func boolean(b bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(b)}
}

func strs(ss []string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, s := range ss {
		n.Content = append(n.Content, str(s))
	}
	return n
}

// mapping builds a mapping from key, value pairs, skipping nil values.
func mapping(pairs ...any) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i+1 < len(pairs); i += 2 {
		v, _ := pairs[i+1].(*yaml.Node)
		if v == nil {
			continue
		}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: pairs[i].(string)}, v)
	}
	return n
}
