package adopt

import (
	"bufio"
	"bytes"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// registryIgnored are distribution config sections airgapd sets itself.
var registryIgnored = map[string]string{
	"version": "", "log": "airgapd logs to stderr/journald", "health": "airgapd's status and /metrics report health",
	"notifications": "webhooks are not supported", "redis": "no blob descriptor cache is used",
	"validation": "airgapd keeps distribution's defaults", "compatibility": "airgapd keeps distribution's defaults",
	"middleware": "storage middleware (CDN redirects) is not supported", "reporting": "error reporting services are not supported",
}

// importRegistryConfig maps a Docker Registry (distribution) config.yml.
func importRegistryConfig(path string, doc *Document, rep *Report) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read registry config: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return fmt.Errorf("%s: not a registry config (a mapping of version:, storage:, http:…)", path)
	}
	doc.setHead("registry", "registry: imported from "+path+" (Docker Registry config.yml)")
	doc.section("registry")
	ri := &registryImport{doc: doc, rep: rep, file: path}
	top := root.Content[0]
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		switch k.Value {
		case "storage":
			ri.storage(v)
		case "http":
			ri.http(v)
		case "auth":
			ri.auth(v)
		case "proxy":
			ri.proxy(k, v)
		default:
			why, ok := registryIgnored[k.Value]
			if !ok {
				why = "section " + k.Value + " is not supported"
			}
			if why == "" {
				continue
			}
			rep.add(ri.at(k), k.Value+": …", NoEquivalent, "%s", why)
		}
	}
	return nil
}

type registryImport struct {
	doc  *Document
	rep  *Report
	file string
}

func (ri *registryImport) at(n *yaml.Node) Pos { return Pos{File: ri.file, Line: n.Line} }

func pairs(n *yaml.Node) [][2]*yaml.Node {
	var out [][2]*yaml.Node
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, [2]*yaml.Node{n.Content[i], n.Content[i+1]})
	}
	return out
}

func (ri *registryImport) storage(v *yaml.Node) {
	st := &yaml.Node{Kind: yaml.MappingNode}
	for _, kv := range pairs(v) {
		k := kv[0]
		switch k.Value {
		case "filesystem", "s3", "redirect":
			st.Content = append(st.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k.Value}, plainCopy(kv[1]))
			note := "passed through to distribution"
			if k.Value == "filesystem" {
				note = "the registry's storage directory is reused in place: its images are served as they are"
			}
			ri.rep.add(ri.at(k), "storage."+k.Value, Mapped, "registry.storage.%s: %s", k.Value, note)
		case "delete", "maintenance", "cache", "tag":
			ri.rep.add(ri.at(k), "storage."+k.Value, NoEquivalent, "airgapd manages storage.%s itself (deletion by registry.users, `airgapd registry gc`)", k.Value)
		default:
			ri.rep.add(ri.at(k), "storage."+k.Value, NoEquivalent, "storage driver %s is not compiled in (filesystem, s3)", k.Value)
		}
	}
	if len(st.Content) > 0 {
		ri.doc.set("registry", "storage", st, ri.at(v))
	}
	for _, kv := range pairs(v) {
		if kv[0].Value == "s3" {
			// The registry adopted collected its garbage; airgapd asks it
			// said outright for a bucket other hosts may share.
			gc := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
				{Kind: yaml.ScalarNode, Value: "enabled"}, {Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"}}}
			ri.doc.set("registry", "gc", gc, ri.at(kv[0]))
			ri.rep.add(ri.at(kv[0]), "storage.s3", Mapped, "registry.gc.enabled: true: this host collects garbage in the bucket; set it false on any other airgapd host sharing the bucket")
		}
	}
}

// plainCopy drops the source's comments and styles from a subtree.
func plainCopy(n *yaml.Node) *yaml.Node {
	c := &yaml.Node{Kind: n.Kind, Tag: n.Tag, Value: n.Value}
	for _, x := range n.Content {
		c.Content = append(c.Content, plainCopy(x))
	}
	return c
}

func (ri *registryImport) http(v *yaml.Node) {
	sawTLS := false
	for _, kv := range pairs(v) {
		k, val := kv[0], kv[1]
		switch k.Value {
		case "addr":
			ri.doc.set("registry", "listen", str(val.Value), ri.at(k))
			ri.rep.add(ri.at(k), "http.addr: "+val.Value, Mapped, "registry.listen")
		case "tls":
			sawTLS = true
			tls := map[string]string{}
			for _, t := range pairs(val) {
				tls[t[0].Value] = t[1].Value
			}
			if tls["certificate"] == "" || tls["key"] == "" {
				ri.rep.add(ri.at(k), "http.tls", NoEquivalent, "only certificate and key files are imported (no letsencrypt, no client CAs); tls: auto is kept")
				continue
			}
			ri.doc.set("registry", "tls", mapping("cert", str(tls["certificate"]), "key", str(tls["key"])), ri.at(k))
			ri.rep.add(ri.at(k), "http.tls", Mapped, "registry.tls: cert %s, key %s", tls["certificate"], tls["key"])
		default:
			ri.rep.add(ri.at(k), "http."+k.Value, NoEquivalent, "airgapd's HTTP listener sets http.%s itself", k.Value)
		}
	}
	if !sawTLS {
		ri.rep.add(ri.at(v), "http (no tls)", Approximate, "the registry served plain HTTP; airgapd serves HTTPS with its own CA (tls: auto): nodes get the CA from /ca.crt, or set registry.tls: off")
	}
}

func (ri *registryImport) auth(v *yaml.Node) {
	for _, kv := range pairs(v) {
		k := kv[0]
		if k.Value != "htpasswd" {
			ri.rep.add(ri.at(k), "auth."+k.Value, NoEquivalent, "only htpasswd users are imported")
			continue
		}
		path := ""
		for _, p := range pairs(kv[1]) {
			if p[0].Value == "path" {
				path = p[1].Value
			}
		}
		if path != "" && !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(ri.file), path)
		}
		ri.htpasswd(ri.at(k), path)
	}
}

// htpasswd imports the users whose hashes are bcrypt, as the registry
// itself accepts only those; the hashes are kept, never the passwords.
func (ri *registryImport) htpasswd(at Pos, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		ri.rep.add(at, "auth.htpasswd.path: "+path, NoEquivalent, "cannot read it: %v", err)
		return
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		hat := Pos{File: path, Line: line}
		name, hash, _ := strings.Cut(text, ":")
		if !strings.HasPrefix(hash, "$2") {
			ri.rep.add(hat, name+":…", NoEquivalent, "user %s: not a bcrypt hash (htpasswd -B); set a new password", name)
			continue
		}
		ri.doc.add("registry", "users", mapping("name", str(name), "password_hash", str(hash)), hat)
		ri.rep.add(hat, name+":$2…", Mapped, "registry.users %s, bcrypt hash kept", name)
	}
}

func (ri *registryImport) proxy(k, v *yaml.Node) {
	fields := map[string]string{}
	for _, p := range pairs(v) {
		fields[p[0].Value] = p[1].Value
	}
	u, err := url.Parse(fields["remoteurl"])
	if err != nil || u.Host == "" {
		ri.rep.add(ri.at(k), "proxy", NoEquivalent, "proxy.remoteurl %q is not a URL", fields["remoteurl"])
		return
	}
	name, m := u.Host, []any{}
	if name == "registry-1.docker.io" || name == "index.docker.io" {
		name = "docker.io"
	} else {
		m = append(m, "url", str(u.Scheme+"://"+u.Host))
	}
	m = append([]any{"name", str(name)}, m...)
	if fields["username"] != "" {
		m = append(m, "username", str(fields["username"]), "password", str(fields["password"]))
	}
	ri.doc.add("registry", "mirrors", mapping(m...), ri.at(k))
	ri.rep.add(ri.at(k), "proxy.remoteurl: "+fields["remoteurl"], Mapped,
		"registry.mirrors %s: pulled through under its own name (nodes ask with ns=%s)", name, name)
}
