package adopt

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// reposyncDepth is how deep under a given folder repos are looked for:
// reposync -p ROOT writes ROOT/REPOID/, and sites nest one or two levels
// more (ROOT/rocky/9/baseos/).
const reposyncDepth = 4

// repoNameChars is what a mirror.repos name may hold (mirror.ValidName).
var repoNameChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// importReposync turns every repo folder (one with repodata/repomd.xml,
// as `reposync --download-metadata` or createrepo_c leave it, served by
// nginx today) under roots into a local repo indexed in place: nothing is
// copied or downloaded, and nodes get it at /repos/NAME/. A .repo section
// of the same name, imported from yum.repos.d, becomes that local repo.
func importReposync(roots []string, doc *Document, rep *Report) error {
	doc.section("mirror")
	for _, root := range roots {
		dirs, err := findRepoDirs(root)
		if err != nil {
			return err
		}
		if len(dirs) == 0 {
			rep.add(Pos{File: root}, root, NoEquivalent, "no repo folder (one with repodata/repomd.xml) under it")
		}
		for _, dir := range dirs {
			addReposyncRepo(dir, doc, rep)
		}
	}
	return nil
}

// findRepoDirs lists the folders under root that hold repodata/repomd.xml,
// not looking inside a repo found (its Packages/ holds no more repos).
func findRepoDirs(root string) ([]string, error) {
	var out []string
	base := strings.Count(filepath.Clean(root), string(filepath.Separator))
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("look for repos under %s: %w", root, err)
		}
		if !d.IsDir() {
			return nil
		}
		if fileExists(filepath.Join(p, "repodata", "repomd.xml")) {
			out = append(out, p)
			return filepath.SkipDir
		}
		if strings.Count(filepath.Clean(p), string(filepath.Separator))-base >= reposyncDepth {
			return filepath.SkipDir
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

func addReposyncRepo(dir string, doc *Document, rep *Report) {
	at := Pos{File: dir}
	name := strings.Trim(repoNameChars.ReplaceAllString(filepath.Base(dir), "-"), "-.")
	if name == "" {
		rep.add(at, dir, NoEquivalent, "no usable repo name in the folder's name: add it by hand as {name: NAME, path: %s}", dir)
		return
	}
	if n := repoEntry(doc, name); n != nil {
		baseurl := mapValue(n, "baseurl")
		setMapValue(n, "path", dir)
		deleteMapKey(n, "baseurl")
		n.HeadComment += "; packages from " + dir
		rep.add(at, dir, Approximate, "mirror.repos %s: the reposync folder is indexed in place instead of syncing from %s; to sync again, put baseurl back and remove path (the first sync downloads everything)", name, valueOr(baseurl, "its baseurl"))
		return
	}
	doc.add("mirror", "repos", mapping("name", str(name), "path", str(dir)), at)
	rep.add(at, dir, Mapped, "mirror.repos %s: path %s, indexed in place (served at /repos/%s/, no download)", name, dir, name)
}

// repoEntry is mirror.repos' entry named name, or nil.
func repoEntry(doc *Document, name string) *yaml.Node {
	list := doc.get("mirror", "repos")
	if list == nil {
		return nil
	}
	for _, n := range list.Content {
		if mapValue(n, "name") == name {
			return n
		}
	}
	return nil
}

func mapValue(m *yaml.Node, key string) string {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1].Value
		}
	}
	return ""
}

func setMapValue(m *yaml.Node, key, value string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = str(value)
			return
		}
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, str(value))
}

func deleteMapKey(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}

// nginxRepoRoots are the folders nginx serves on this host: its root
// directives (nginx.conf and conf.d) and the packaged default roots.
func nginxRepoRoots() []string {
	roots := map[string]bool{}
	confs, _ := filepath.Glob("/etc/nginx/conf.d/*.conf")
	for _, f := range append([]string{"/etc/nginx/nginx.conf"}, confs...) {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(strings.TrimSuffix(strings.TrimSpace(line), ";"))
			if len(f) == 2 && f[0] == "root" && filepath.IsAbs(f[1]) {
				roots[filepath.Clean(f[1])] = true
			}
		}
	}
	for _, d := range []string{"/usr/share/nginx/html", "/var/www/html"} {
		roots[d] = true
	}
	var out []string
	for d := range roots {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			if dirs, _ := findRepoDirs(d); len(dirs) > 0 {
				out = append(out, d)
			}
		}
	}
	sort.Strings(out)
	return out
}
