package server

import (
	"bytes"
	"fmt"

	"gopkg.in/yaml.v3"
)

// What a standby keeps of its own when it takes the primary's config: the
// rest is the primary's, byte for byte as yaml.v3 writes it.
var (
	// haLocalTop are whole top-level keys: where this host keeps its
	// data, how nodes name it, its log, its half of the pair, and the
	// gateway (interface names and addresses differ between hosts, and
	// only the host holding the VIP applies it: `ha notify`).
	haLocalTop = []string{"data_dir", "runtime_dir", "log", "advertise", "ha", "gateway"}
	// haLocalKeys are keys inside a section: listen addresses and
	// certificate files.
	haLocalKeys = map[string][]string{
		"web":      {"listen", "tls"},
		"dns":      {"listen"},
		"ntp":      {"listen", "cmdmon"},
		"mirror":   {"listen", "files"},
		"registry": {"listen", "tls"},
	}
	// haRepoDrop are a repo's keys that name its upstream or a local
	// folder: on the standby every repo's upstream is the primary's
	// published copy.
	haRepoDrop = []string{"baseurl", "mirrorlist", "metalink", "path", "gpgcheck", "gpgkey", "sync_every", "sync_at", "keep", "arch"}
)

// haMerge is the standby's config: the primary's (primary), with this
// host's own keys from local, every mirror repo pointed at the primary's
// /repos/NAME/ under mirrorBase (http://PRIMARY:PORT), and each local zone
// named in zoneFiles read from this host's copy of its file.
func haMerge(primary, local []byte, mirrorBase string, zoneFiles map[string]string) ([]byte, error) {
	var p, l yaml.Node
	if err := yaml.Unmarshal(primary, &p); err != nil {
		return nil, fmt.Errorf("the primary's config: %w", err)
	}
	if err := yaml.Unmarshal(local, &l); err != nil {
		return nil, fmt.Errorf("this host's config: %w", err)
	}
	if len(p.Content) == 0 || p.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("the primary's config is not a mapping")
	}
	proot := p.Content[0]
	lroot := &yaml.Node{Kind: yaml.MappingNode}
	if len(l.Content) > 0 && l.Content[0].Kind == yaml.MappingNode {
		lroot = l.Content[0]
	}
	for _, k := range haLocalTop {
		setOrDelete(proot, k, mapValue(lroot, k))
	}
	for sec, keys := range haLocalKeys {
		ps := mapValue(proot, sec)
		if ps == nil || ps.Kind != yaml.MappingNode {
			continue
		}
		ls := mapValue(lroot, sec)
		for _, k := range keys {
			var v *yaml.Node
			if ls != nil && ls.Kind == yaml.MappingNode {
				v = mapValue(ls, k)
			}
			setOrDelete(ps, k, v)
		}
	}
	if m := mapValue(proot, "mirror"); m != nil && m.Kind == yaml.MappingNode {
		if repos := mapValue(m, "repos"); repos != nil && repos.Kind == yaml.SequenceNode {
			for _, r := range repos.Content {
				name := mapValue(r, "name")
				if r.Kind != yaml.MappingNode || name == nil {
					continue
				}
				for _, k := range haRepoDrop {
					setOrDelete(r, k, nil)
				}
				setOrDelete(r, "baseurl", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: mirrorBase + "/repos/" + name.Value + "/"})
				setOrDelete(r, "delete", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"})
			}
		}
	}
	setZoneFiles(proot, zoneFiles)
	return encodeYAML(&p)
}

// encodeYAML writes doc as the config files airgapd writes look.
func encodeYAML(doc *yaml.Node) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	enc.Close()
	return buf.Bytes(), nil
}

// mapValue is m's value for key, or nil.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// setOrDelete sets m's key to v (appending it when missing), or removes
// the key when v is nil.
func setOrDelete(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			if v == nil {
				m.Content = append(m.Content[:i], m.Content[i+2:]...)
			} else {
				m.Content[i+1] = v
			}
			return
		}
	}
	if v != nil {
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
	}
}
