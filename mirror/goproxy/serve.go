package goproxy

import (
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// Prefix is where web mounts the handler on mirror.listen.
const Prefix = "/goproxy/"

// Handler serves the GOPROXY protocol and the checksum database proxy
// under Prefix (requests may come with it or with it stripped).
func (p *Proxy) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := p.serve(w, r)
		p.m.request(code)
	})
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) int {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "read-only", http.StatusMethodNotAllowed)
		return http.StatusMethodNotAllowed
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, strings.TrimSuffix(Prefix, "/")), "/")
	if rest, ok := strings.CutPrefix(rel, "sumdb/"); ok {
		return p.serveSumDB(w, r, rest)
	}
	cur, _ := p.Store(treeName).Current()
	if escPath, ok := strings.CutSuffix(rel, "/@latest"); ok {
		return p.serveLatest(w, r, cur, escPath)
	}
	escPath, file, ok := strings.Cut(rel, "/@v/")
	if !ok || !validEscapedPath(escPath) {
		return notFound(w, "not a GOPROXY path: want MODULE/@v/list, MODULE/@v/VERSION.info|.mod|.zip or MODULE/@latest")
	}
	ctype := "text/plain; charset=utf-8"
	if file != "list" {
		ext := path.Ext(file)
		v, err := module.UnescapeVersion(strings.TrimSuffix(file, ext))
		if err != nil || (ext != ".info" && ext != ".mod" && ext != ".zip") {
			return notFound(w, "not a module version file")
		}
		if ev, _ := module.EscapeVersion(v); ev+ext != file {
			return notFound(w, "not a module version file")
		}
		switch ext {
		case ".info":
			ctype = "application/json"
		case ".zip":
			ctype = "application/zip"
		}
	}
	return serveFile(w, r, cur, escPath+"/@v/"+file, ctype)
}

// validEscapedPath admits a module path written as the protocol encodes
// it (capitals as !lower), and only that spelling.
func validEscapedPath(esc string) bool {
	mp, err := module.UnescapePath(esc)
	if err != nil {
		return false
	}
	again, err := module.EscapePath(mp)
	return err == nil && again == esc
}

// serveLatest answers MODULE/@latest with the .info of the highest
// listed version (a release before a pre-release), or of the highest
// version with an .info when the list is empty (pseudo-versions only).
func (p *Proxy) serveLatest(w http.ResponseWriter, r *http.Request, cur, esc string) int {
	if cur == "" || !validEscapedPath(esc) {
		return notFound(w, "module not mirrored here")
	}
	dir := filepath.Join(cur, filepath.FromSlash(esc), "@v")
	var versions []string
	if b, err := os.ReadFile(filepath.Join(dir, "list")); err == nil {
		versions = strings.Fields(string(b))
	}
	if len(versions) == 0 {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if v, ok := strings.CutSuffix(e.Name(), ".info"); ok {
				if uv, err := module.UnescapeVersion(v); err == nil {
					versions = append(versions, uv)
				}
			}
		}
	}
	best := ""
	for _, v := range versions {
		if best == "" || better(v, best) {
			best = v
		}
	}
	if best == "" {
		return notFound(w, "module not mirrored here")
	}
	ev, _ := module.EscapeVersion(best)
	return serveFile(w, r, cur, esc+"/@v/"+ev+".info", "application/json")
}

// better reports whether a is a later choice than b: releases win over
// pre-releases, then the higher version.
func better(a, b string) bool {
	if pa, pb := semver.Prerelease(a) != "", semver.Prerelease(b) != ""; pa != pb {
		return !pa
	}
	return semver.Compare(a, b) > 0
}

// serveFile serves rel of the published tree cur, 404 when absent.
func serveFile(w http.ResponseWriter, r *http.Request, cur, rel, ctype string) int {
	if cur == "" {
		return notFound(w, "nothing synced yet: run airgapd goproxy sync")
	}
	f, err := os.Open(filepath.Join(cur, filepath.FromSlash(rel)))
	if err != nil {
		return notFound(w, "not mirrored here: add it to goproxy.modules or a go_mod file and sync")
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return notFound(w, "not mirrored here")
	}
	w.Header().Set("Content-Type", ctype)
	if strings.Contains(rel, "/@v/") && !strings.HasSuffix(rel, "/list") {
		w.Header().Set("Cache-Control", "public, max-age=86400") // a version's files never change
	}
	sw := &codeWriter{ResponseWriter: w, code: http.StatusOK}
	http.ServeContent(sw, r, "", st.ModTime(), f)
	return sw.code
}

// notFound is the answer the go command reads as "no such module or
// version here" (404: it tries the next proxy in GOPROXY).
func notFound(w http.ResponseWriter, msg string) int {
	http.Error(w, msg, http.StatusNotFound)
	return http.StatusNotFound
}

type codeWriter struct {
	http.ResponseWriter
	code int
}

func (c *codeWriter) WriteHeader(code int) {
	c.code = code
	c.ResponseWriter.WriteHeader(code)
}
