package pypi

import (
	"encoding/json"
	"fmt"
	"html"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/airgapd/airgapd/mirror"
)

// Prefix is where the index is served on mirror.listen.
const Prefix = "/pypi/"

// Handler serves the index under /pypi/: /pypi/simple/ (PEP 503 HTML or
// PEP 691 JSON by Accept), /pypi/files/TREE/… (the files, with Range), and
// uploads (POST /pypi/ or /pypi/legacy/, twine's legacy API).
func (x *Index) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest := strings.TrimPrefix(r.URL.Path, Prefix)
		switch {
		case r.Method == http.MethodPost && (rest == "" || rest == "legacy/" || rest == "legacy"):
			x.m.request("upload", x.upload(w, r))
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			w.Header().Set("Allow", "GET, HEAD, POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			x.m.request("other", http.StatusMethodNotAllowed)
		case rest == "simple" || strings.HasPrefix(rest, "simple/"):
			x.m.request("simple", x.serveSimple(w, r, strings.TrimPrefix(strings.TrimPrefix(rest, "simple"), "/")))
		case strings.HasPrefix(rest, "files/"):
			x.m.request("files", x.serveFile(w, r, strings.TrimPrefix(rest, "files/")))
		case rest == "":
			http.Redirect(w, r, "simple/", http.StatusFound)
			x.m.request("other", http.StatusFound)
		default:
			http.NotFound(w, r)
			x.m.request("other", http.StatusNotFound)
		}
	})
}

// serveFile serves files/TREE/NAME/FILE from the tree's snapshot.
func (x *Index) serveFile(w http.ResponseWriter, r *http.Request, rel string) int {
	tree, rest, _ := strings.Cut(rel, "/")
	if tree != TreeIndex && tree != TreeLocal {
		http.NotFound(w, r)
		return http.StatusNotFound
	}
	cur, err := x.Store(tree).Current()
	if err != nil || cur == "" {
		http.Error(w, "nothing published yet: run airgapd pypi sync", http.StatusNotFound)
		return http.StatusNotFound
	}
	if strings.HasSuffix(rest, ".metadata") {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	return mirror.ServeTree(w, r, cur, "files/"+rest)
}

// negotiate picks the page's content type from Accept (PEP 691), or from
// ?format=; HTML when nothing better is asked for.
func negotiate(r *http.Request) (string, bool) {
	if f := r.URL.Query().Get("format"); f != "" {
		switch f {
		case typeJSON, typeHTMLv1, typeHTML:
			return f, true
		}
		return "", false
	}
	accept := r.Header.Get("Accept")
	if strings.TrimSpace(accept) == "" {
		return typeHTML, true
	}
	best, bestQ := "", -1.0
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		var got string
		switch mt {
		case typeJSON, typeHTMLv1, typeHTML:
			got = mt
		case "application/vnd.pypi.simple.latest+json":
			got = typeJSON
		case "application/vnd.pypi.simple.latest+html":
			got = typeHTMLv1
		case "*/*", "text/*":
			got = typeHTML
		}
		if got != "" && q > 0 && q > bestQ {
			best, bestQ = got, q
		}
	}
	return best, best != ""
}

// serveSimple answers the project list ("") and project pages (NAME/).
func (x *Index) serveSimple(w http.ResponseWriter, r *http.Request, rel string) int {
	ct, ok := negotiate(r)
	w.Header().Set("Vary", "Accept")
	if !ok {
		http.Error(w, "ask for "+typeJSON+", "+typeHTMLv1+" or "+typeHTML, http.StatusNotAcceptable)
		return http.StatusNotAcceptable
	}
	projects, err := x.merged()
	if err != nil {
		x.log.Warn("pypi tree unreadable", "err", err)
	}
	if rel == "" {
		return writeList(w, r, ct, projects)
	}
	name, after, _ := strings.Cut(rel, "/")
	if after != "" {
		http.NotFound(w, r)
		return http.StatusNotFound
	}
	if norm := Normalize(name); norm != name || !strings.HasSuffix(rel, "/") {
		http.Redirect(w, r, Prefix+"simple/"+url.PathEscape(norm)+"/", http.StatusMovedPermanently)
		return http.StatusMovedPermanently
	}
	files, ok := projects[name]
	if !ok {
		http.Error(w, fmt.Sprintf("no project %q here; add it to pypi.requirements or pypi.packages and sync", name), http.StatusNotFound)
		return http.StatusNotFound
	}
	return writePage(w, r, ct, name, files)
}

// merged is every project of both trees; a project's uploads come first.
func (x *Index) merged() (map[string][]fileIn, error) {
	out := map[string][]fileIn{}
	var first error
	for _, tree := range []string{TreeLocal, TreeIndex} {
		t, err := x.tree(tree)
		if err != nil && first == nil {
			first = err
		}
		for n, fs := range t.Projects {
			for _, f := range fs {
				out[n] = append(out[n], fileIn{File: f, tree: tree})
			}
		}
	}
	return out, first
}

type fileIn struct {
	File
	tree string
}

// href is a file's link from its project page.
func (f fileIn) href() string {
	return "../../files/" + f.tree + "/" + (&url.URL{Path: strings.TrimPrefix(f.Path, "files/")}).EscapedPath()
}

func writeList(w http.ResponseWriter, r *http.Request, ct string, projects map[string][]fileIn) int {
	names := make([]string, 0, len(projects))
	for n := range projects {
		names = append(names, n)
	}
	sort.Strings(names)
	w.Header().Set("Content-Type", ct)
	if ct == typeJSON {
		type proj struct {
			Name string `json:"name"`
		}
		list := make([]proj, len(names))
		for i, n := range names {
			list[i] = proj{n}
		}
		return writeJSON(w, r, map[string]any{"meta": map[string]string{"api-version": "1.1"}, "projects": list})
	}
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html>\n<head><meta name=\"pypi:repository-version\" content=\"1.1\"><title>Simple index</title></head>\n<body>\n")
	for _, n := range names {
		fmt.Fprintf(&b, "<a href=\"%s/\">%s</a>\n", html.EscapeString(url.PathEscape(n)), html.EscapeString(n))
	}
	b.WriteString("</body>\n</html>\n")
	return writeBody(w, r, b.String())
}

func writePage(w http.ResponseWriter, r *http.Request, ct, name string, files []fileIn) int {
	w.Header().Set("Content-Type", ct)
	if ct == typeJSON {
		var list []map[string]any
		versions := map[string]bool{}
		for _, f := range files {
			versions[f.Version] = true
			j := map[string]any{"filename": f.Filename, "url": f.href(), "hashes": map[string]string{"sha256": f.SHA256}, "size": f.Size}
			if f.RequiresPython != "" {
				j["requires-python"] = f.RequiresPython
			}
			var meta any = false
			if f.Metadata && f.MetadataSHA256 != "" {
				meta = map[string]string{"sha256": f.MetadataSHA256}
			}
			// core-metadata only (PEP 714): pip before 23.1 (Debian 12's
			// 23.0.1) fails on the dict under dist-info-metadata.
			j["core-metadata"] = meta
			if f.Yanked {
				j["yanked"] = true
				if f.YankedReason != "" {
					j["yanked"] = f.YankedReason
				}
			}
			list = append(list, j)
		}
		vs := make([]string, 0, len(versions))
		for v := range versions {
			vs = append(vs, v)
		}
		sort.Strings(vs)
		return writeJSON(w, r, map[string]any{"meta": map[string]string{"api-version": "1.1"}, "name": name, "files": list, "versions": vs})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html>\n<head><meta name=\"pypi:repository-version\" content=\"1.1\"><title>Links for %s</title></head>\n<body>\n<h1>Links for %s</h1>\n", html.EscapeString(name), html.EscapeString(name))
	for _, f := range files {
		attrs := ""
		if f.RequiresPython != "" {
			attrs += fmt.Sprintf(` data-requires-python="%s"`, html.EscapeString(f.RequiresPython))
		}
		if f.Metadata && f.MetadataSHA256 != "" {
			attrs += fmt.Sprintf(` data-dist-info-metadata="sha256=%s" data-core-metadata="sha256=%s"`, f.MetadataSHA256, f.MetadataSHA256)
		}
		if f.Yanked {
			attrs += fmt.Sprintf(` data-yanked="%s"`, html.EscapeString(f.YankedReason))
		}
		fmt.Fprintf(&b, "<a href=\"%s#sha256=%s\"%s>%s</a><br/>\n", html.EscapeString(f.href()), f.SHA256, attrs, html.EscapeString(f.Filename))
	}
	b.WriteString("</body>\n</html>\n")
	return writeBody(w, r, b.String())
}

func writeJSON(w http.ResponseWriter, r *http.Request, v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return http.StatusInternalServerError
	}
	return writeBody(w, r, string(b))
}

func writeBody(w http.ResponseWriter, r *http.Request, s string) int {
	w.Header().Set("Content-Length", strconv.Itoa(len(s)))
	if r.Method != http.MethodHead {
		w.Write([]byte(s))
	}
	return http.StatusOK
}
