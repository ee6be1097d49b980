package rpm

import (
	"errors"
	"fmt"
	"html"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
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
		files := m.config().Files
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
	r, ok := m.config().repo(name)
	if !ok && m.isImported(name) {
		r, ok = Repo{Name: name, BaseURL: "bundle"}, true // served from its published tree, like a mirror
	}
	if !ok {
		return "", fmt.Errorf("no repo %q here", name)
	}
	if !r.Mirrored() {
		return r.Path, nil
	}
	cur, err := repoStore(m.deps.DataDir, name).current()
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
	r, ok := m.config().repo(name)
	if !ok || r.Mirrored() {
		return "", false
	}
	cur, err := repoStore(m.deps.DataDir, name).current()
	if err != nil || cur == "" {
		return "", false
	}
	return cur, true
}

// serveTree serves rel inside root: files with Range and ETag, folders as a
// listing. Nothing outside root is reachable: ".." is refused outright, and
// os.Root refuses symlinks that lead out.
func (m *Mirror) serveTree(w http.ResponseWriter, r *http.Request, kind, root, rel string) {
	code, err := m.serveTreeErr(w, r, root, rel)
	if err != nil {
		http.Error(w, err.Error(), code)
	}
	m.m.request(kind, code)
}

func (m *Mirror) serveTreeErr(w http.ResponseWriter, r *http.Request, root, rel string) (int, error) {
	segs := strings.Split(rel, "/")
	for i, s := range segs {
		if s == ".." || s == "." || strings.ContainsAny(s, "\x00\\") || (s == "" && i != len(segs)-1) {
			return http.StatusBadRequest, errors.New("refused: the path must stay inside the folder")
		}
	}
	rt, err := os.OpenRoot(root)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return http.StatusNotFound, errors.New("this folder does not exist yet")
		}
		return http.StatusInternalServerError, errors.New("cannot open the folder")
	}
	defer rt.Close()
	name := strings.TrimSuffix(rel, "/")
	if name == "" {
		name = "."
	}
	f, err := rt.Open(filepath.FromSlash(name))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return http.StatusNotFound, errors.New("not found")
		}
		// Escaping symlinks and unreadable files alike.
		return http.StatusForbidden, errors.New("refused")
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return http.StatusForbidden, errors.New("refused")
	}
	if fi.IsDir() {
		if rel != "" && !strings.HasSuffix(rel, "/") {
			http.Redirect(w, r, path.Base(rel)+"/", http.StatusMovedPermanently)
			return http.StatusMovedPermanently, nil
		}
		entries, err := f.ReadDir(-1)
		if err != nil {
			return http.StatusForbidden, errors.New("refused")
		}
		writeListing(w, r, entries)
		return http.StatusOK, nil
	}
	if !fi.Mode().IsRegular() || strings.HasSuffix(rel, "/") {
		return http.StatusNotFound, errors.New("not found")
	}
	// nginx's ETag: mtime and size in hex. Files never change in place here
	// (a new sync links new files), so this is as good as a digest.
	w.Header().Set("ETag", fmt.Sprintf(`"%x-%x"`, fi.ModTime().Unix(), fi.Size()))
	if ct := contentType(name); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	rw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
	http.ServeContent(rw, r, path.Base(name), fi.ModTime(), f)
	return rw.code, nil
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// contentType is what nginx's mime.types says for repo files.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".rpm":
		return "application/x-rpm"
	case ".xml":
		return "text/xml"
	case ".gz":
		return "application/gzip"
	case ".bz2":
		return "application/x-bzip2"
	case ".xz":
		return "application/x-xz"
	case ".zst":
		return "application/zstd"
	case ".asc", ".key", ".repo":
		return "text/plain; charset=utf-8"
	case ".yaml", ".yml":
		return "application/yaml"
	case ".sqlite":
		return "application/vnd.sqlite3"
	}
	return mime.TypeByExtension(path.Ext(name)) // "" lets ServeContent sniff
}

// writeListing is nginx's autoindex: folders first, then files, with size
// and time.
func writeListing(w http.ResponseWriter, r *http.Request, entries []os.DirEntry) {
	slices.SortFunc(entries, func(a, b os.DirEntry) int {
		if a.IsDir() != b.IsDir() {
			if a.IsDir() {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name(), b.Name())
	})
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if r.Method == http.MethodHead {
		return
	}
	title := html.EscapeString(r.URL.Path)
	fmt.Fprintf(w, "<html>\n<head><title>Index of %s</title></head>\n<body>\n<h1>Index of %s</h1><hr><pre><a href=\"../\">../</a>\n", title, title)
	for _, e := range entries {
		name := e.Name()
		size, when := "-", ""
		if fi, err := e.Info(); err == nil {
			when = fi.ModTime().UTC().Format("02-Jan-2006 15:04")
			if !e.IsDir() {
				size = strconv.FormatInt(fi.Size(), 10)
			}
		}
		if e.IsDir() {
			name += "/"
		}
		fmt.Fprintf(w, "<a href=\"%s\">%s</a>%s %s %20s\n", html.EscapeString((&url.URL{Path: name}).EscapedPath()), html.EscapeString(name),
			strings.Repeat(" ", max(1, 51-len(name))), when, size)
	}
	fmt.Fprint(w, "</pre><hr></body>\n</html>\n")
}

// serveRepoList lists the repos and their .repo files.
func (m *Mirror) serveRepoList(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/repos" {
		http.Redirect(w, r, "/repos/", http.StatusMovedPermanently)
		return
	}
	var entries []os.DirEntry
	cfg := m.config()
	for _, rp := range cfg.Repos {
		entries = append(entries, virtualEntry{name: rp.Name, dir: true}, virtualEntry{name: rp.Name + ".repo"})
	}
	for _, n := range m.importedRepos() {
		if _, ok := cfg.repo(n); !ok {
			entries = append(entries, virtualEntry{name: n, dir: true}, virtualEntry{name: n + ".repo"})
		}
	}
	writeListing(w, r, entries)
	m.m.request("repos", http.StatusOK)
}

// virtualEntry lists a repo that may not exist on disk yet.
type virtualEntry struct {
	name string
	dir  bool
}

func (v virtualEntry) Name() string { return v.name }
func (v virtualEntry) IsDir() bool  { return v.dir }
func (v virtualEntry) Type() fs.FileMode {
	if v.dir {
		return fs.ModeDir
	}
	return 0
}
func (v virtualEntry) Info() (fs.FileInfo, error) { return nil, fs.ErrNotExist }

var _ fs.DirEntry = virtualEntry{}

// serveRepoFile writes a .repo file for the nodes: drop it into
// /etc/yum.repos.d/.
func (m *Mirror) serveRepoFile(w http.ResponseWriter, r *http.Request, name string) {
	rp, ok := m.config().repo(name)
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
	w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
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
	cur, err := repoStore(m.deps.DataDir, rp.Name).current()
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
