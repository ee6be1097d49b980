package mirror

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
)

// ServeTree serves rel (slash-separated, from the URL) inside root: files
// with Range, ETag and If-Modified-Since, folders as an nginx-style
// listing. Nothing outside root is reachable: ".." is refused outright
// (400), and os.Root refuses symlinks that lead out (403); symlinks inside
// are followed. It returns the status code it answered, for metrics.
func ServeTree(w http.ResponseWriter, r *http.Request, root, rel string) int {
	code, err := serveTree(w, r, root, rel)
	if err != nil {
		http.Error(w, err.Error(), code)
	}
	return code
}

func serveTree(w http.ResponseWriter, r *http.Request, root, rel string) (int, error) {
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
		WriteListing(w, r, entries)
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

// contentType is what nginx's mime.types says for repository files (the
// packages and metadata of every format).
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

// WriteListing is nginx's autoindex: folders first, then files, with size
// and time.
func WriteListing(w http.ResponseWriter, r *http.Request, entries []fs.DirEntry) {
	slices.SortFunc(entries, func(a, b fs.DirEntry) int {
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

// ListingEntry is an entry of a listing that need not exist on disk (a
// repo not synced yet, its .repo file).
func ListingEntry(name string, dir bool) fs.DirEntry { return listingEntry{name: name, dir: dir} }

type listingEntry struct {
	name string
	dir  bool
}

func (v listingEntry) Name() string { return v.name }
func (v listingEntry) IsDir() bool  { return v.dir }
func (v listingEntry) Type() fs.FileMode {
	if v.dir {
		return fs.ModeDir
	}
	return 0
}
func (v listingEntry) Info() (fs.FileInfo, error) { return nil, fs.ErrNotExist }

var _ fs.DirEntry = listingEntry{}
