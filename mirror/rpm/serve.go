package rpm

import (
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/airgapd/airgapd/mirror"
)

// Handler serves /repos/ and /files/ (web mounts it on mirror.listen).
func (m *Mirror) Handler() http.Handler { return http.HandlerFunc(m.serveHTTP) }

func (m *Mirror) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		m.m.request("other", http.StatusMethodNotAllowed)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	switch {
	case p == "/repos" || p == "/repos/":
		m.serveRepoList(w, r)
	case strings.HasPrefix(p, "/repos/"):
		rest := strings.TrimPrefix(p, "/repos/")
		name, sub, hasSlash := strings.Cut(rest, "/")
		if !hasSlash && strings.HasSuffix(name, ".repo") {
			m.serveRepoFile(w, r, strings.TrimSuffix(name, ".repo"))
			return
		}
		if idx, ok := m.localIndex(name); ok && (sub == "repodata" || strings.HasPrefix(sub, "repodata/")) {
			// A local repo's published index, over whatever the folder holds.
			m.serveTree(w, r, "repos", idx, sub)
			return
		}
		root, err := m.repoRoot(name)
		if err != nil {
			m.m.request("repos", http.StatusNotFound)
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		if !hasSlash {
			http.Redirect(w, r, "/repos/"+url.PathEscape(name)+"/", http.StatusMovedPermanently)
			return
		}
		m.serveTree(w, r, "repos", root, sub)
	case p == "/files" || strings.HasPrefix(p, "/files/"):
		files := m.Config().Files
		if files == "" {
			m.m.request("files", http.StatusNotFound)
			http.Error(w, "no files folder: set mirror.files in the config", http.StatusNotFound)
			return
		}
		if p == "/files" {
			http.Redirect(w, r, "/files/", http.StatusMovedPermanently)
			return
		}
		m.serveTree(w, r, "files", files, strings.TrimPrefix(p, "/files/"))
	default:
		http.NotFound(w, r)
	}
}

// repoRoot is the folder served for a repo: the published snapshot of a
// mirror, or a local repo's folder as it is.
func (m *Mirror) repoRoot(name string) (string, error) {
	r, ok := m.Config().Lookup(name)
	if !ok && m.isImported(name) {
		r, ok = Repo{Name: name, BaseURL: "bundle"}, true // served from its published tree, like a mirror
	}
	if !ok {
		return "", fmt.Errorf("no repo %q here", name)
	}
	if !r.Mirrored() {
		return r.Path, nil
	}
	cur, err := mirror.RepoStore(m.deps.DataDir, name).Current()
	if err != nil {
		return "", err
	}
	if cur == "" {
		return "", fmt.Errorf("repo %q has not been synced yet: run `airgapd mirror sync %s`", name, name)
	}
	return cur, nil
}

// localIndex is the published index snapshot of local repo name (its
// repodata/ is served in place of the folder's), when there is one.
func (m *Mirror) localIndex(name string) (string, bool) {
	r, ok := m.Config().Lookup(name)
	if !ok || r.Mirrored() {
		return "", false
	}
	cur, err := mirror.RepoStore(m.deps.DataDir, name).Current()
	if err != nil || cur == "" {
		return "", false
	}
	return cur, true
}

// serveTree serves rel inside root: files with Range and ETag, folders as a
// listing. Nothing outside root is reachable: ".." is refused outright, and
// os.Root refuses symlinks that lead out.
func (m *Mirror) serveTree(w http.ResponseWriter, r *http.Request, kind, root, rel string) {
	m.m.request(kind, mirror.ServeTree(w, r, root, rel))
}

// serveRepoList lists the repos and their .repo files.
func (m *Mirror) serveRepoList(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/repos" {
		http.Redirect(w, r, "/repos/", http.StatusMovedPermanently)
		return
	}
	var entries []fs.DirEntry
	cfg := m.Config()
	for _, rp := range cfg.Repos {
		entries = append(entries, mirror.ListingEntry(rp.Name, true), mirror.ListingEntry(rp.Name+".repo", false))
	}
	for _, n := range mirror.ImportedRepos(m.deps.DataDir) {
		if _, ok := cfg.Lookup(n); !ok {
			entries = append(entries, mirror.ListingEntry(n, true), mirror.ListingEntry(n+".repo", false))
		}
	}
	mirror.WriteListing(w, r, entries)
	m.m.request("repos", http.StatusOK)
}

// serveRepoFile writes a .repo file for the nodes: drop it into
// /etc/yum.repos.d/.
func (m *Mirror) serveRepoFile(w http.ResponseWriter, r *http.Request, name string) {
	rp, ok := m.Config().Lookup(name)
	imported := !ok && m.isImported(name)
	if !ok && !imported {
		m.m.request("repos", http.StatusNotFound)
		http.Error(w, fmt.Sprintf("no repo %q here", name), http.StatusNotFound)
		return
	}
	desc := "local folder"
	switch {
	case imported:
		rp, desc = Repo{Name: name}, "repo imported from a bundle"
	case rp.Mirrored():
		desc = "mirror of " + rp.Upstream()
	}
	base := m.baseURL(r) + "/repos/" + url.PathEscape(rp.Name) + "/"
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Last-Modified", m.now().UTC().Format(http.TimeFormat))
	gpgcheck, repoGPGCheck, gpgkeys := m.repoKeys(rp, imported, base)
	fmt.Fprintf(w, "# airgapd: %s\n[%s]\nname=%s (airgapd %s)\nbaseurl=%s\nenabled=1\ngpgcheck=%d\n",
		desc, rp.Name, rp.Name, desc, base, gpgcheck)
	if repoGPGCheck {
		fmt.Fprint(w, "repo_gpgcheck=1\n")
	}
	if len(gpgkeys) > 0 {
		fmt.Fprintf(w, "gpgkey=%s\n", strings.Join(gpgkeys, " "))
	}
	m.m.request("repos", http.StatusOK)
}

// repoKeys is what a repo's .repo file says about signatures: gpgcheck=1
// with the repo's gpgkey once a sync with gpgcheck: true has verified and
// published it (keyFileName); repo_gpgcheck=1 with repomd.xml.key for a
// signed local index, and for a mirror whose upstream publishes
// repomd.xml.asc and repomd.xml.key (passed on byte for byte).
func (m *Mirror) repoKeys(rp Repo, imported bool, base string) (gpgcheck int, repoGPGCheck bool, gpgkeys []string) {
	switch {
	case imported:
		return 0, false, nil
	case !rp.Mirrored():
		if rp.Sign {
			// The index is signed with airgapd's key, served beside it.
			return 0, true, []string{base + "repodata/repomd.xml.key"}
		}
		return 0, false, nil
	}
	cur, err := mirror.RepoStore(m.deps.DataDir, rp.Name).Current()
	if err != nil || cur == "" {
		return 0, false, nil
	}
	has := func(rel string) bool {
		fi, err := os.Stat(filepath.Join(cur, filepath.FromSlash(rel)))
		return err == nil && fi.Mode().IsRegular()
	}
	if rp.GPGCheck && has(keyFileName(rp.Name)) {
		gpgcheck = 1
		gpgkeys = append(gpgkeys, base+url.PathEscape(keyFileName(rp.Name)))
	}
	if has("repodata/repomd.xml.asc") && has("repodata/repomd.xml.key") {
		repoGPGCheck = true
		gpgkeys = append(gpgkeys, base+"repodata/repomd.xml.key")
	}
	return gpgcheck, repoGPGCheck, gpgkeys
}
