package registry

import (
	"fmt"
	"net"
	"net/http"
	"strings"
)

// One store for every upstream. Content of an upstream lives in the one
// distribution application under the upstream-qualified repository name
// (registry.k8s.io/pause, docker.io/library/nginx), whether it was pulled
// through, pushed by a user or imported from a file. A request with
// containerd's ?ns=registry.k8s.io for /v2/pause/… and a request for
// /v2/registry.k8s.io/pause/… (the path-prefix layout, containerd's
// override_path, CRI-O's mirror location) are the same request once
// namespaces has rewritten the first into the second. One application
// rather than one per upstream: blobs shared between upstreams (base
// layers) are stored once, garbage collection, import, push, counting and
// the write gate stay as they are, and nothing depends on which upstreams
// are configured when content is stored.

// nsHeader is the response header of distribution-spec's registry
// proxying text: the namespace a request was served from.
const nsHeader = "OCI-Namespace"

// mirrorFor returns the configured mirror that repo (an upstream-qualified
// name) belongs to, and the upstream's own name for it.
func (r *Registry) mirrorFor(repo string) (*upstream, string) {
	ups := r.upstreams.Load()
	if ups == nil {
		return nil, ""
	}
	first, rest, ok := strings.Cut(repo, "/")
	if !ok {
		return nil, ""
	}
	u := (*ups)[first]
	if u == nil {
		return nil, ""
	}
	return u, rest
}

// qualify is the stored name of repo under namespace ns. Docker Hub's
// official images live under library/ (docker.io/nginx is
// docker.io/library/nginx), as containerd and docker spell them.
func qualify(ns, repo string) string {
	if ns == "docker.io" && !strings.Contains(repo, "/") {
		repo = "library/" + repo
	}
	return ns + "/" + repo
}

// configuredNS reports whether ns is a mirror in registry.mirrors.
func (r *Registry) configuredNS(ns string) bool {
	ups := r.upstreams.Load()
	return ups != nil && (*ups)[ns] != nil
}

// honorNS reports whether a request's ns= names a namespace of this store:
// a configured mirror, or any other registry host name (content pushed or
// imported under it) unless it is this registry itself, as the client
// reached it.
func (r *Registry) honorNS(ns, host string) bool {
	if ups := r.upstreams.Load(); ups != nil && (*ups)[ns] != nil {
		return true
	}
	if ns == host || strings.ContainsAny(ns, "/ ") {
		return false
	}
	if h, _, err := net.SplitHostPort(host); err == nil && h == ns {
		return false
	}
	return strings.ContainsAny(ns, ".:") || ns == "localhost"
}

// namespaces maps ?ns=NAME onto the repository NAME/REPO, normalises the
// path-prefix layout's docker.io/nginx to docker.io/library/nginx, and sets
// OCI-Namespace on the answer.
func (r *Registry) namespaces(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rt := parseRoute(req.URL.Path)
		q := req.URL.Query()
		ns := q.Get("ns")
		switch {
		case ns != "" && strings.Contains(ns, ":") && !r.configuredNS(ns) && rt.repo != "":
			// HOST:PORT names no store here: a port cannot be part of a
			// stored repository's path, so nothing was ever pushed or
			// imported under it. Unknown, like any repository not here.
			writeAPIError(w, http.StatusNotFound, "NAME_UNKNOWN",
				fmt.Sprintf("no mirror %s in registry.mirrors, and nothing stored under it", ns))
			return
		case ns != "" && r.honorNS(ns, req.Host):
			r.log.Debug("registry: request for a namespace", "ns", ns, "method", req.Method, "path", req.URL.Path)
			w.Header().Set(nsHeader, ns)
			if rt.repo != "" && !strings.HasPrefix(rt.repo, ns+"/") {
				q.Del("ns")
				req = withRepo(req, rt.repo, qualify(ns, rt.repo), q.Encode())
			}
		case rt.repo != "":
			first, rest, ok := strings.Cut(rt.repo, "/")
			if !ok {
				break
			}
			if u, _ := r.mirrorFor(rt.repo); u != nil {
				w.Header().Set(nsHeader, first)
			}
			if q := qualify(first, rest); q != rt.repo {
				req = withRepo(req, rt.repo, q, req.URL.RawQuery)
			}
		}
		next.ServeHTTP(w, req)
	})
}

// withRepo is req for repository to instead of from.
func withRepo(req *http.Request, from, to, rawQuery string) *http.Request {
	u := *req.URL
	u.Path = "/v2/" + to + strings.TrimPrefix(u.Path, "/v2/"+from)
	u.RawPath = ""
	u.RawQuery = rawQuery
	out := req.WithContext(req.Context())
	out.URL = &u
	out.RequestURI = u.RequestURI()
	return out
}
