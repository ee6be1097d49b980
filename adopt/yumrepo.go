package adopt

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// yumKeys are the .repo keys that map to a mirror.repos key of the same
// meaning (dnf.conf(5)'s names are airgapd's).
var yumKeys = map[string]string{
	"mirrorlist": "mirrorlist", "metalink": "metalink", "gpgkey": "gpgkey",
	"sslcacert": "sslcacert", "sslclientcert": "sslclientcert", "sslclientkey": "sslclientkey",
	"proxy": "proxy", "proxy_username": "proxy_username", "proxy_password": "proxy_password",
}

// yumIgnored are .repo keys that only matter to dnf on the host itself.
var yumIgnored = map[string]string{
	"name": "kept as a comment", "skip_if_unavailable": "a sync that fails reports it and keeps the last good copy",
	"countme": "airgapd does not send countme", "metadata_expire": "mirror.sync_every or sync_at decide when to sync",
	"module_hotfixes": "nodes' .repo files are written by airgapd", "priority": "nodes' .repo files are written by airgapd",
	"cost": "nodes' .repo files are written by airgapd", "type": "rpm-md is the only kind",
	"repo_gpgcheck":    "airgapd checks repomd.xml by its checksums; sign: true signs local repos",
	"enabled_metadata": "nodes' .repo files are written by airgapd", "exclude": "airgapd mirrors every package of the repo",
	"excludepkgs": "airgapd mirrors every package of the repo", "includepkgs": "airgapd mirrors every package of the repo",
}

// importYumRepos maps every *.repo file of dir into mirror.repos.
func importYumRepos(dir string, doc *Document, rep *Report) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.repo"))
	if err != nil {
		return fmt.Errorf("list .repo files: %w", err)
	}
	sort.Strings(files)
	doc.setHead("mirror", "mirror: imported from "+dir+"/*.repo")
	doc.section("mirror")
	usesVars := false
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("read .repo file: %w", err)
		}
		for _, sec := range parseINI(f, data) {
			usesVars = importRepoSection(sec, doc, rep) || usesVars
		}
	}
	if usesVars {
		writeYumVars(dir, doc, rep)
	}
	return nil
}

type iniSection struct {
	pos  Pos
	name string
	keys []iniKey
}

type iniKey struct {
	pos        Pos
	key, value string
}

// parseINI reads dnf's ini: [section], key=value, continuation lines
// (leading whitespace) appended to the previous value, # and ; comments.
func parseINI(file string, data []byte) []iniSection {
	var out []iniSection
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		raw := sc.Text()
		text := strings.TrimSpace(raw)
		at := Pos{File: file, Line: line}
		switch {
		case text == "" || text[0] == '#' || text[0] == ';':
		case text[0] == '[' && strings.HasSuffix(text, "]"):
			out = append(out, iniSection{pos: at, name: strings.TrimSpace(text[1 : len(text)-1])})
		case len(out) == 0:
		case raw[0] == ' ' || raw[0] == '\t':
			if ks := out[len(out)-1].keys; len(ks) > 0 {
				ks[len(ks)-1].value += " " + text
			}
		default:
			k, v, _ := strings.Cut(text, "=")
			s := &out[len(out)-1]
			s.keys = append(s.keys, iniKey{pos: at, key: strings.ToLower(strings.TrimSpace(k)), value: strings.TrimSpace(v)})
		}
	}
	return out
}

// importRepoSection writes one repo; it reports whether its URLs use vars.
func importRepoSection(sec iniSection, doc *Document, rep *Report) bool {
	for _, k := range sec.keys {
		if k.key == "enabled" && !yes(k.value) {
			rep.add(sec.pos, "["+sec.name+"] enabled="+k.value, NoEquivalent, "a disabled repo is not imported")
			return false
		}
	}
	pairs := []any{"name", str(sec.name)}
	var title string
	usesVars := false
	for _, k := range sec.keys {
		text := k.key + "=" + k.value
		usesVars = usesVars || strings.Contains(k.value, "$")
		switch {
		case k.key == "enabled":
		case k.key == "baseurl":
			urls := strings.FieldsFunc(k.value, func(r rune) bool { return r == ' ' || r == ',' })
			if len(urls) == 0 {
				continue
			}
			if path, ok := strings.CutPrefix(urls[0], "file://"); ok {
				pairs = append(pairs, "path", str(path))
				rep.add(k.pos, text, Mapped, "mirror.repos %s: path %s, a local folder indexed in place", sec.name, path)
				continue
			}
			pairs = append(pairs, "baseurl", str(urls[0]))
			note := ""
			if len(urls) > 1 {
				note = "; only the first baseurl is kept (use mirrorlist for fail-over)"
			}
			rep.add(k.pos, text, outcomeOf(strings.Fields(note)), "mirror.repos %s: baseurl%s", sec.name, note)
		case k.key == "gpgcheck":
			pairs = append(pairs, "gpgcheck", boolean(yes(k.value)))
			rep.add(k.pos, text, Mapped, "mirror.repos %s: gpgcheck", sec.name)
		case k.key == "sslverify":
			pairs = append(pairs, "sslverify", boolean(yes(k.value)))
			rep.add(k.pos, text, Mapped, "mirror.repos %s: sslverify", sec.name)
		case yumKeys[k.key] != "":
			pairs = append(pairs, yumKeys[k.key], str(strings.Join(strings.FieldsFunc(k.value, func(r rune) bool { return r == ' ' || r == ',' }), " ")))
			rep.add(k.pos, text, Mapped, "mirror.repos %s: %s", sec.name, yumKeys[k.key])
		case k.key == "name":
			title = k.value
			rep.add(k.pos, text, Mapped, "kept as a comment")
		case yumIgnored[k.key] != "":
			rep.add(k.pos, text, NoEquivalent, "%s", yumIgnored[k.key])
		default:
			rep.add(k.pos, text, NoEquivalent, "key %s is not supported", k.key)
		}
	}
	n := mapping(pairs...)
	doc.add("mirror", "repos", n, sec.pos)
	if title != "" {
		n.HeadComment += ": " + title
	}
	if d := doc.get("mirror", "repos"); d != nil && hasKey(n, "path") {
		rep.add(sec.pos, "["+sec.name+"]", Mapped, "mirror.repos %s: its folder is indexed in place, as createrepo_c did", sec.name)
		return usesVars
	}
	rep.add(sec.pos, "["+sec.name+"]", Approximate, "mirror.repos %s: needs a first `airgapd mirror sync %s` (or a bundle) before nodes can use it", sec.name, sec.name)
	return usesVars
}

// writeYumVars gives $releasever and $basearch values: from dnf's vars
// folder beside the repos folder when it has them, else this host's.
func writeYumVars(dir string, doc *Document, rep *Report) {
	vars := map[string]string{}
	varsDir := filepath.Join(filepath.Dir(dir), "dnf", "vars")
	if entries, err := os.ReadDir(varsDir); err == nil {
		for _, e := range entries {
			if b, err := os.ReadFile(filepath.Join(varsDir, e.Name())); err == nil {
				vars[e.Name()] = strings.TrimSpace(string(b))
			}
		}
	}
	at := Pos{File: dir}
	var notes []string
	if vars["basearch"] == "" {
		vars["basearch"] = map[string]string{"amd64": "x86_64", "arm64": "aarch64", "ppc64le": "ppc64le", "s390x": "s390x"}[runtime.GOARCH]
		notes = append(notes, "basearch "+vars["basearch"]+" is this machine's")
	}
	if vars["releasever"] == "" {
		vars["releasever"] = hostReleasever()
		notes = append(notes, "releasever "+vars["releasever"]+" is from this host's /etc/os-release")
	}
	pairs := []any{}
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		pairs = append(pairs, k, str(vars[k]))
	}
	doc.set("mirror", "vars", mapping(pairs...), at)
	rep.add(at, "$releasever, $basearch", outcomeOf(notes), "kept in the URLs; their values in mirror.vars: %s; set the release and arch you mirror", strings.Join(notes, "; "))
}

func hostReleasever() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "9"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VERSION_ID="); ok {
			v = strings.Trim(v, `"`)
			major, _, _ := strings.Cut(v, ".")
			if major != "" {
				return major
			}
		}
	}
	return "9"
}

func hasKey(m *yaml.Node, key string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return true
		}
	}
	return false
}
