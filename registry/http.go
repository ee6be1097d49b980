package registry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
)

// routeKind is which /v2/ endpoint a request is for.
type routeKind int

const (
	routeOther routeKind = iota
	routeBase
	routeCatalog
	routeTags
	routeManifest
	routeBlob
	routeUpload
	routeReferrers
)

var routeNames = [...]string{"other", "base", "catalog", "tags", "manifest", "blob", "upload", "referrers"}

func (k routeKind) String() string { return routeNames[k] }

// route is a /v2/ path taken apart.
type route struct {
	kind routeKind
	repo string
	ref  string // tag or digest (manifest, blob, referrers); upload id
}

// parseRoute splits /v2/<name>/<endpoint>/<ref>. Repository names may hold
// slashes, so the endpoint is found from the right.
func parseRoute(p string) route {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		if p == "/v2" {
			return route{kind: routeBase}
		}
		return route{}
	}
	switch {
	case rest == "":
		return route{kind: routeBase}
	case rest == "_catalog":
		return route{kind: routeCatalog}
	case strings.HasSuffix(rest, "/tags/list"):
		return route{kind: routeTags, repo: strings.TrimSuffix(rest, "/tags/list")}
	}
	if i := strings.LastIndex(rest, "/blobs/uploads"); i > 0 {
		return route{kind: routeUpload, repo: rest[:i], ref: strings.Trim(rest[i+len("/blobs/uploads"):], "/")}
	}
	for _, k := range []struct {
		sep  string
		kind routeKind
	}{{"/manifests/", routeManifest}, {"/blobs/", routeBlob}, {"/referrers/", routeReferrers}} {
		if i := strings.LastIndex(rest, k.sep); i > 0 {
			return route{kind: k.kind, repo: rest[:i], ref: rest[i+len(k.sep):]}
		}
	}
	return route{}
}

// action is what the request needs permission for: reads are pulls,
// DELETE of a manifest, tag or blob is a delete, the rest (uploads, manifest
// PUTs, and anything unknown) is a push.
func (rt route) action(method string) action {
	switch {
	case rt.kind == routeUpload:
		return actionPush
	case method == http.MethodGet || method == http.MethodHead:
		return actionPull
	case method == http.MethodDelete && (rt.kind == routeManifest || rt.kind == routeBlob):
		return actionDelete
	}
	return actionPush
}

// writeGate holds writes off while garbage collection runs: distribution's
// mark and sweep is not safe beside pushes. Writes in flight when a
// collection starts finish first; writes that arrive during it are refused
// with 503 (clients such as crane retry those).
type writeGate struct {
	mu       sync.Mutex
	gc       bool
	inflight int
	drained  chan struct{} // closed when inflight reaches 0 while gc is set
	isClosed atomic.Bool
}

var errGCRunning = errors.New("a garbage collection is already running")

// enter admits a write, or reports false while collection runs.
func (g *writeGate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gc {
		return false
	}
	g.inflight++
	return true
}

func (g *writeGate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inflight--
	if g.gc && g.inflight == 0 && g.drained != nil {
		close(g.drained)
		g.drained = nil
	}
}

// close stops new writes and waits for those in flight, at most until ctx
// ends (then the gate opens again and close fails).
func (g *writeGate) close(ctx context.Context) error {
	g.mu.Lock()
	if g.gc {
		g.mu.Unlock()
		return errGCRunning
	}
	g.gc = true
	g.isClosed.Store(true)
	var wait chan struct{}
	if g.inflight > 0 {
		wait = make(chan struct{})
		g.drained = wait
	}
	g.mu.Unlock()
	if wait == nil {
		return nil
	}
	select {
	case <-wait:
		return nil
	case <-ctx.Done():
		g.open()
		return errors.New("pushes in progress did not finish in time; try again later")
	}
}

func (g *writeGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gc = false
	g.drained = nil
	g.isClosed.Store(false)
}

func (g *writeGate) closed() bool { return g.isClosed.Load() }

// gated refuses writes while garbage collection runs.
func (r *Registry) gated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodGet || req.Method == http.MethodHead {
			next.ServeHTTP(w, req)
			return
		}
		if !r.gate.enter() {
			r.stats.writesRefused.Add(1)
			w.Header().Set("Retry-After", "5")
			writeAPIError(w, http.StatusServiceUnavailable, "UNAVAILABLE",
				"airgapd registry: garbage collection is running; writes are refused until it ends, retry in a few seconds")
			return
		}
		defer r.gate.leave()
		next.ServeHTTP(w, req)
	})
}

// pendingBlobs are blobs uploaded into a repository whose manifest has not
// been pushed yet: a push in progress. Garbage collection keeps them, or a
// push that straddles a collection would lose the blobs it already sent.
// An entry lapses after pendingTTL (a push abandoned half way).
type pendingBlobs struct {
	now   func() time.Time
	mu    sync.Mutex
	repos map[string]map[digest.Digest]time.Time
	n     int
}

const (
	pendingTTL = time.Hour
	pendingMax = 100000 // entries; past it the oldest repository's go
)

func newPendingBlobs(now func() time.Time) pendingBlobs {
	return pendingBlobs{now: now, repos: map[string]map[digest.Digest]time.Time{}}
}

func (p *pendingBlobs) add(repo string, d digest.Digest) {
	if d == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.repos[repo]
	if m == nil {
		m = map[digest.Digest]time.Time{}
		p.repos[repo] = m
	}
	if _, ok := m[d]; !ok {
		p.n++
	}
	m[d] = p.now()
	for p.n > pendingMax {
		p.dropOldestLocked()
	}
}

func (p *pendingBlobs) dropOldestLocked() {
	var oldest string
	var at time.Time
	for repo, m := range p.repos {
		for _, t := range m {
			if oldest == "" || t.Before(at) {
				oldest, at = repo, t
			}
			break
		}
	}
	p.n -= len(p.repos[oldest])
	delete(p.repos, oldest)
}

// done ends the push in repo: its manifest arrived.
func (p *pendingBlobs) done(repo string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n -= len(p.repos[repo])
	delete(p.repos, repo)
}

// snapshot returns every blob of a push in progress.
func (p *pendingBlobs) snapshot() map[digest.Digest]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[digest.Digest]bool{}
	cut := p.now().Add(-pendingTTL)
	for repo, m := range p.repos {
		for d, t := range m {
			if t.Before(cut) {
				delete(m, d)
				p.n--
				continue
			}
			out[d] = true
		}
		if len(m) == 0 {
			delete(p.repos, repo)
		}
	}
	return out
}

// track notes what each successful request changed: blobs of pushes in
// progress, finished pushes, pulls and deletes.
func (r *Registry) track(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rt := parseRoute(req.URL.Path)
		if req.Body != nil && req.Method != http.MethodGet && req.Method != http.MethodHead {
			req.Body = &countingBody{ReadCloser: req.Body, n: &r.stats.bytesReceived}
		}
		rec := &statusRecorder{ResponseWriter: w}
		if rt.kind == routeBlob && req.Method == http.MethodGet {
			rec.counter = &r.stats.bytesSent
		}
		next.ServeHTTP(rec, req)
		code := rec.code()
		switch {
		case rt.kind == routeUpload && code == http.StatusCreated:
			// A finished upload (PUT …?digest=, or a monolithic POST) or
			// a cross-repository mount (POST …?mount=).
			d := req.URL.Query().Get("digest")
			if d == "" {
				d = req.URL.Query().Get("mount")
			}
			r.pending.add(rt.repo, digest.Digest(d))
		case rt.kind == routeManifest && req.Method == http.MethodPut && code == http.StatusCreated:
			r.pending.done(rt.repo)
			if _, err := digest.Parse(rt.ref); err != nil && registryHost(rt.repo) != "" {
				// A tag pushed or imported under an upstream's name: the
				// upstream's tag does not replace it.
				r.pin(req.Context(), rt.repo, rt.ref)
			}
			if registryHost(rt.repo) != "" {
				for _, tag := range req.URL.Query()["tag"] { // pushed by digest with ?tag=
					r.pin(req.Context(), rt.repo, tag)
				}
			}
			r.stats.pushes.Add(1)
			r.markDirty()
		case rt.kind == routeManifest && req.Method == http.MethodGet && code == http.StatusOK:
			r.stats.pulls.Add(1)
		case req.Method == http.MethodDelete && code == http.StatusAccepted:
			r.stats.deletes.Add(1)
			r.markDirty()
		}
	})
}

// statusRecorder remembers the status code and counts body bytes.
type statusRecorder struct {
	http.ResponseWriter
	status  int
	counter *atomic.Int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(p)
	if s.counter != nil {
		s.counter.Add(int64(n))
	}
	return n, err
}

// ReadFrom keeps the underlying writer's fast path (sendfile on plain
// HTTP) for blob bodies.
func (s *statusRecorder) ReadFrom(src io.Reader) (int64, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := s.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{s.ResponseWriter}, src)
	}
	if s.counter != nil {
		s.counter.Add(n)
	}
	return n, err
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) code() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// requestKey labels airgapd_registry_requests_total.
type requestKey struct {
	route  routeKind
	method string
	code   int
}

// stats counts what the registry did, for Status and metrics.
type stats struct {
	pulls, pushes, deletes   atomic.Int64
	bytesSent, bytesReceived atomic.Int64
	writesRefused            atomic.Int64
	authFail                 [3]atomic.Int64 // by authReason

	gcBlobs, gcBytes atomic.Int64

	mu       sync.Mutex
	requests map[requestKey]int64
	gcRuns   map[gcKey]int64
}

type authReason int

const (
	reasonWrongCredentials authReason = iota
	reasonNoCredentials
	reasonOutsidePullFrom
)

var authReasonNames = [...]string{"wrong_credentials", "no_credentials", "outside_pull_from"}

func (s *stats) authFailed(r authReason) { s.authFail[r].Add(1) }

func (s *stats) authFailures() int64 {
	var n int64
	for i := range s.authFail {
		n += s.authFail[i].Load()
	}
	return n
}

// middleware counts every request by route, method and status.
func (s *stats) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, req)
		k := requestKey{parseRoute(req.URL.Path).kind, normMethod(req.Method), rec.code()}
		s.mu.Lock()
		if s.requests == nil {
			s.requests = map[requestKey]int64{}
		}
		s.requests[k]++
		s.mu.Unlock()
	})
}

// normMethod bounds the method label to the ones the API uses.
func normMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodPatch, http.MethodDelete:
		return m
	}
	return "OTHER"
}

func (s *stats) requestCounts() map[requestKey]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[requestKey]int64, len(s.requests))
	for k, v := range s.requests {
		out[k] = v
	}
	return out
}

func codeLabel(c int) string { return strconv.Itoa(c) }
