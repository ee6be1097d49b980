package web

import (
	"fmt"
	"slices"
	"strconv"

	"gopkg.in/yaml.v3"
)

// The Settings page never shows a secret: bcrypt hashes (web.admin,
// registry users), the metrics token, upstream and proxy passwords are
// replaced by secretMask in the text it sends. A save puts each saved
// value back where the mask still stands (found by its key path, list
// items by their name), so saving the page as shown keeps every secret,
// and typing a new value over the mask changes it.

// secretMask stands for a value the page does not show.
const secretMask = "(hidden; saving keeps the current value)"

// secretKeys are the config keys whose values are secrets.
var secretKeys = []string{"password_hash", "password", "proxy_password", "token"}

// secretAt is one secret in a document: its key path, line, and the
// bytes of its value as written (quotes included).
type secretAt struct {
	path     string
	line     int
	from, to int
	value    string
}

// findSecrets lists the document's secret values, in file order.
func findSecrets(d *yamlDoc) ([]secretAt, error) {
	var out []secretAt
	var walk func(n *yaml.Node, path string) error
	walk = func(n *yaml.Node, path string) error {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				if v.Kind == yaml.ScalarNode && slices.Contains(secretKeys, k.Value) {
					if v.Value == "" || v.Tag == "!!null" {
						continue
					}
					from, to, err := d.scalarSpan(v)
					if err != nil {
						return fmt.Errorf("line %d: %s is written in a form the Settings page cannot hide (write it on one line)", v.Line, p)
					}
					out = append(out, secretAt{path: p, line: v.Line, from: from, to: to, value: v.Value})
					continue
				}
				if err := walk(v, p); err != nil {
					return err
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				if err := walk(c, path+"["+itemName(c, i)+"]"); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return out, walk(d.root, "")
}

// itemName names a list item by its name (or username) key, so that a
// reordered list keeps each user's hash; by its index otherwise.
func itemName(n *yaml.Node, i int) string {
	if n.Kind == yaml.MappingNode {
		for _, key := range []string{"name", "username"} {
			if _, v := mapGet(n, key); v != nil && v.Kind == yaml.ScalarNode && v.Value != "" {
				return key + "=" + v.Value
			}
		}
	}
	return strconv.Itoa(i)
}

// maskSecrets returns src with every secret value replaced by the mask.
// Text that is not YAML is returned as it is (it holds no secret the
// parser could find, and the page shows the parse error).
func maskSecrets(src []byte) ([]byte, error) {
	d, err := parseYAMLDoc(src)
	if err != nil {
		return src, nil
	}
	ss, err := findSecrets(d)
	if err != nil {
		return nil, err
	}
	out := src
	for i := len(ss) - 1; i >= 0; i-- {
		if ss[i].value != secretMask {
			out = splice(out, ss[i].from, ss[i].to, yamlQuote(secretMask))
		}
	}
	return out, nil
}

// unmaskSecrets returns text with each mask put back to the value saved
// at the same key path in cur. A mask at a path cur has no secret for
// (the key was moved or renamed) is an error: the value must be typed.
func unmaskSecrets(text, cur []byte) ([]byte, error) {
	d, err := parseYAMLDoc(text)
	if err != nil {
		return text, nil // the save reports the YAML error
	}
	ss, err := findSecrets(d)
	if err != nil {
		return nil, err
	}
	saved := map[string]string{}
	if cd, err := parseYAMLDoc(cur); err == nil {
		if cs, err := findSecrets(cd); err == nil {
			for _, s := range cs {
				saved[s.path] = string(cur[s.from:s.to])
			}
		}
	}
	out := text
	for i := len(ss) - 1; i >= 0; i-- {
		s := ss[i]
		if s.value != secretMask {
			continue
		}
		raw, ok := saved[s.path]
		if !ok {
			return nil, fmt.Errorf("line %d: %s shows the hidden-value placeholder, but the saved file has no value there to keep; type the value itself", s.line, s.path)
		}
		out = splice(out, s.from, s.to, raw)
	}
	return out, nil
}
