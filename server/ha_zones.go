package server

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/airgapd/airgapd/dnsd"
	"github.com/airgapd/airgapd/internal/atomicfile"
)

// Zone files on a pair. The primary's snapshot carries the text of each
// local zone's file: (read when the standby asks, as the primary's next
// reload would read it); the standby keeps a copy under
// data_dir/ha/zones/ and its config names that copy. So zone files follow
// the same single path as inline records: one snapshot, one transactional
// apply, no AXFR, NOTIFY, ACL or serial of a second protocol.

// zoneFiles is the text of each local zone's file, by zone name.
func (s *Server) zoneFiles(c *Config) map[string][]byte {
	if !c.Enabled("dns") {
		return nil
	}
	out := map[string][]byte{}
	for _, z := range c.DNS.Zones {
		if z.File == "" {
			continue
		}
		data, err := os.ReadFile(z.File)
		if err != nil {
			s.log.Warn("ha: cannot read a zone file for the standby", "zone", z.Name, "file", z.File, "err", err)
			continue
		}
		out[z.Name] = data
	}
	return out
}

// followZoneFiles writes the primary's zone files here, and returns where
// each is and whether any text changed.
func (n *haNode) followZoneFiles(files map[string][]byte) (map[string]string, bool, error) {
	if len(files) == 0 {
		return nil, false, nil
	}
	dir := filepath.Join(n.s.cfg.DataDir, "ha", "zones")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, false, err
	}
	paths, changed := map[string]string{}, false
	for zone, data := range files {
		if zone == "" || strings.ContainsAny(zone, `/\`) || strings.HasPrefix(zone, ".") {
			return nil, false, fmt.Errorf("the primary sent a zone file for %q, which is no zone name", zone)
		}
		path := filepath.Join(dir, zone+".zone")
		paths[zone] = path
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
			continue
		}
		if err := atomicfile.WriteFile(path, data, 0o644); err != nil {
			return nil, false, fmt.Errorf("copy zone file of %s: %w", zone, err)
		}
		changed = true
	}
	return paths, changed, nil
}

// setZoneFiles points each dns.zones entry named in files at its copy.
func setZoneFiles(root *yaml.Node, files map[string]string) {
	zones := mapValue(mapValue(root, "dns"), "zones")
	if zones == nil || zones.Kind != yaml.SequenceNode {
		return
	}
	for _, z := range zones.Content {
		name := mapValue(z, "name")
		if name == nil || mapValue(z, "file") == nil {
			continue
		}
		if path, ok := files[name.Value]; ok {
			setOrDelete(z, "file", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: path})
		}
	}
}

// dnsSection is what the dns service is built from: its section and the
// text of its zone files, so a file edited and reloaded (SIGHUP, or the
// standby's copy) reloads the zones although no config byte changed.
func dnsSection(c *Config) any {
	if !c.Enabled("dns") {
		return nil
	}
	type dnsInputs struct {
		DNS   dnsd.Config
		Files map[string][sha256.Size]byte
	}
	in := dnsInputs{DNS: *c.DNS, Files: map[string][sha256.Size]byte{}}
	for _, z := range c.DNS.Zones {
		if z.File != "" {
			data, _ := os.ReadFile(z.File) // unreadable: Validate said so
			in.Files[z.File] = sha256.Sum256(data)
		}
	}
	return in
}

// primaryCopy is where a standby keeps the primary's config as it last
// came, for promote (haRestoreRepos).
func primaryCopy(dataDir string) string { return filepath.Join(dataDir, "ha", "primary.yaml") }

func (n *haNode) keepPrimaryConfig(data []byte) error {
	path := primaryCopy(n.s.cfg.DataDir)
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, 0o600)
}

// haRestoreRepos gives each mirror repo of local (a standby's config,
// whose repos follow the primary's /repos/NAME/) its own definition from
// primary, the primary's config: upstream, schedule, keys. A repo made
// from a folder on the primary (path:) keeps following the copy: the
// folder is not on this host. It returns the names restored and kept.
func haRestoreRepos(local, primary []byte) (out []byte, restored, kept []string, err error) {
	var l, p yaml.Node
	if err := yaml.Unmarshal(local, &l); err != nil || len(l.Content) == 0 {
		return nil, nil, nil, fmt.Errorf("this host's config: %w", errors.Join(err, errors.New("unreadable")))
	}
	if err := yaml.Unmarshal(primary, &p); err != nil || len(p.Content) == 0 {
		return nil, nil, nil, fmt.Errorf("the primary's config (%s): %w", "data_dir/ha/primary.yaml", errors.Join(err, errors.New("unreadable")))
	}
	own := map[string]*yaml.Node{}
	if repos := mapValue(mapValue(p.Content[0], "mirror"), "repos"); repos != nil && repos.Kind == yaml.SequenceNode {
		for _, r := range repos.Content {
			if name := mapValue(r, "name"); name != nil {
				own[name.Value] = r
			}
		}
	}
	repos := mapValue(mapValue(l.Content[0], "mirror"), "repos")
	if repos == nil || repos.Kind != yaml.SequenceNode {
		return local, nil, nil, nil
	}
	for i, r := range repos.Content {
		name := mapValue(r, "name")
		if name == nil || own[name.Value] == nil {
			continue
		}
		if mapValue(own[name.Value], "path") != nil {
			kept = append(kept, name.Value)
			continue
		}
		repos.Content[i] = own[name.Value]
		restored = append(restored, name.Value)
	}
	if len(restored) == 0 {
		return local, nil, kept, nil
	}
	out, err = encodeYAML(&l)
	return out, restored, kept, err
}
