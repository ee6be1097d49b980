package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/registry/storage"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Pull-through. A manifest or blob request for a repository under a
// configured mirror (docker.io/library/nginx) is served from the store;
// pullThrough first makes sure the store has what the upstream has:
//
//   - a tag is checked against the upstream (a HEAD, which Docker Hub does
//     not count against its pull limit) whenever the upstream is reachable,
//     and the manifest fetched and stored when it changed; when the
//     upstream is down or in back-off the stored tag is served as it is.
//     Tags pushed or imported into the store are pinned: the upstream never
//     overwrites them.
//   - a manifest by digest is fetched when the store lacks it.
//   - a blob the store lacks is fetched once, however many clients ask at
//     the same time, into a spool file that every asking client reads as it
//     grows, so each gets bytes as they arrive; once complete and verified it
//     goes into the store.
//
// Nothing expires: stored content stays until it is deleted and collected.
// Writes into the store pass the garbage collector's write gate; while a
// collection runs, pulled-through content is served but not stored.

const manifestMaxBytes = 4 << 20

func (r *Registry) pullThrough(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead || onlyIfCached(req) {
			next.ServeHTTP(w, req)
			return
		}
		rt := parseRoute(req.URL.Path)
		if rt.kind != routeManifest && rt.kind != routeBlob && rt.kind != routeTags {
			next.ServeHTTP(w, req)
			return
		}
		u, upRepo := r.mirrorFor(rt.repo)
		if u == nil || (rt.kind == routeTags && !r.pullTags(w, req, rt, u, upRepo)) {
			next.ServeHTTP(w, req)
			return
		}
		if rt.kind == routeTags {
			return
		}
		named, err := reference.WithName(rt.repo)
		if err != nil {
			next.ServeHTTP(w, req)
			return
		}
		ctx := withLogrus(req.Context(), r.log)
		repo, err := r.ns.Repository(ctx, named)
		if err != nil {
			next.ServeHTTP(w, req)
			return
		}
		pt := ptRequest{r: r, u: u, upRepo: upRepo, name: rt.repo, repo: repo}
		if rt.kind == routeManifest {
			if body, ct := pt.manifest(ctx, rt.ref); body != nil {
				// Fetched but not stored (a collection runs, or the store
				// failed): answer from memory.
				d := digest.FromBytes(body)
				w.Header().Set("Content-Type", ct)
				w.Header().Set("Docker-Content-Digest", d.String())
				w.Header().Set("Etag", `"`+d.String()+`"`)
				w.Header().Set("Content-Length", fmt.Sprint(len(body)))
				w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
				if req.Method == http.MethodGet {
					w.Write(body)
				}
				return
			}
			next.ServeHTTP(w, req)
			return
		}
		d, err := digest.Parse(rt.ref)
		if err != nil || d.Validate() != nil {
			next.ServeHTTP(w, req)
			return
		}
		if !pt.blob(ctx, w, req, d) {
			next.ServeHTTP(w, req)
		}
	})
}

// ptRequest is one request for a mirrored repository.
type ptRequest struct {
	r      *Registry
	u      *upstream
	upRepo string // the upstream's name: library/nginx
	name   string // the store's: docker.io/library/nginx
	repo   distribution.Repository
}

// manifest brings the store up to date for ref. It returns a body only
// when it fetched a manifest it could not store.
func (p ptRequest) manifest(ctx context.Context, ref string) ([]byte, string) {
	if d, err := digest.Parse(ref); err == nil {
		ms, err := p.repo.Manifests(ctx)
		if err != nil {
			return nil, ""
		}
		if ok, _ := ms.Exists(ctx, d); ok {
			p.u.hits.Add(1)
			return nil, ""
		}
		if !p.u.available() {
			return nil, ""
		}
		cctx, cancel := context.WithTimeout(ctx, upstreamCheckTimeout)
		defer cancel()
		return p.fetchManifest(cctx, ref, d, "")
	}
	local, lerr := p.repo.Tags(ctx).Get(ctx, ref)
	if lerr == nil && p.r.pinned(ctx, p.name, ref) {
		p.u.hits.Add(1)
		return nil, ""
	}
	if !p.u.available() {
		if lerr == nil {
			p.u.hits.Add(1)
		}
		return nil, ""
	}
	p.u.refreshes.Add(1)
	cctx, cancel := context.WithTimeout(ctx, upstreamCheckTimeout)
	defer cancel()
	resp, err := p.u.do(cctx, http.MethodHead, p.upRepo, "/manifests/"+ref, http.Header{"Accept": {manifestAccept}})
	if err != nil {
		p.r.log.Debug("registry: upstream check failed; serving the cache", "upstream", p.u.mirror.Name, "repo", p.name, "tag", ref, "err", err)
		if lerr == nil {
			p.u.hits.Add(1)
		}
		return nil, ""
	}
	drain(resp)
	if resp.StatusCode != http.StatusOK {
		return nil, "" // the upstream has no such tag: whatever the store has
	}
	want := digest.Digest(resp.Header.Get("Docker-Content-Digest"))
	if lerr == nil && want != "" && local.Digest == want {
		p.u.hits.Add(1)
		return nil, ""
	}
	if want.Validate() != nil {
		want = ""
	}
	return p.fetchManifest(cctx, ref, want, ref)
}

// fetchManifest gets ref from the upstream, checks it against want (when
// known), and stores it, tagged as tag when tag is set.
func (p ptRequest) fetchManifest(ctx context.Context, ref string, want digest.Digest, tag string) ([]byte, string) {
	resp, err := p.u.do(ctx, http.MethodGet, p.upRepo, "/manifests/"+ref, http.Header{"Accept": {manifestAccept}})
	if err != nil {
		p.r.log.Debug("registry: upstream manifest fetch failed", "upstream", p.u.mirror.Name, "repo", p.name, "ref", ref, "err", err)
		return nil, ""
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, ""
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, manifestMaxBytes+1))
	if err != nil || len(body) > manifestMaxBytes {
		p.r.log.Warn("registry: upstream manifest unreadable", "upstream", p.u.mirror.Name, "repo", p.name, "ref", ref, "err", err)
		return nil, ""
	}
	p.u.bytes.Add(int64(len(body)))
	p.u.misses.Add(1)
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	d := digest.FromBytes(body)
	if want != "" && want.Algorithm() == digest.SHA256 && d != want {
		p.r.log.Warn("registry: upstream manifest does not match its digest", "upstream", p.u.mirror.Name, "repo", p.name, "ref", ref, "want", want, "got", d)
		return nil, ""
	}
	if err := p.storeManifest(ctx, ct, body, d, tag); err != nil {
		p.r.log.Warn("registry: could not store a pulled-through manifest; serving it uncached", "repo", p.name, "ref", ref, "err", err)
		m, desc, uerr := distribution.UnmarshalManifest(ct, body)
		if uerr != nil || m == nil {
			return nil, ""
		}
		return body, desc.MediaType
	}
	p.r.log.Info("registry: pulled through manifest", "upstream", p.u.mirror.Name, "repo", p.name, "ref", ref, "digest", d)
	p.r.markDirty()
	return nil, ""
}

var errGateClosed = errors.New("garbage collection is running")

func (p ptRequest) storeManifest(ctx context.Context, ct string, body []byte, d digest.Digest, tag string) error {
	if !p.r.gate.enter() {
		return errGateClosed
	}
	defer p.r.gate.leave()
	m, desc, err := distribution.UnmarshalManifest(ct, body)
	if err != nil {
		return err
	}
	ms, err := p.repo.Manifests(ctx, storage.SkipLayerVerification())
	if err != nil {
		return err
	}
	got, err := ms.Put(ctx, m)
	if err != nil {
		return err
	}
	if got != d {
		return fmt.Errorf("stored as %s, not %s", got, d)
	}
	if tag != "" {
		return p.repo.Tags(ctx).Tag(ctx, tag, v1.Descriptor{MediaType: desc.MediaType, Digest: d, Size: int64(len(body))})
	}
	return nil
}

// blob serves d, fetching it from the upstream when the store lacks it. It
// reports false to leave the answer to distribution (stored content, or
// the 404 for a blob nobody has).
func (p ptRequest) blob(ctx context.Context, w http.ResponseWriter, req *http.Request, d digest.Digest) bool {
	if _, err := p.repo.Blobs(ctx).Stat(ctx, d); err == nil {
		p.u.hits.Add(1)
		return false
	}
	if _, err := p.r.ns.BlobStatter().Stat(ctx, d); err == nil {
		// Stored already (another upstream, another repository, a push):
		// link it into this repository.
		if err := p.r.linkBlob(ctx, p.name, d); err == nil {
			p.u.hits.Add(1)
			return false
		}
	}
	// A download in progress (or just finished and being stored) serves
	// whether or not the upstream is still there.
	f := p.r.fetches.join(p, d, false)
	if f == nil && !p.u.available() {
		return false
	}
	if f == nil && req.Method == http.MethodHead {
		// A push checking which blobs it must send carries credentials;
		// it must hear about the store, not the upstream.
		if req.Header.Get("Authorization") != "" {
			return false
		}
		cctx, cancel := context.WithTimeout(ctx, upstreamCheckTimeout)
		defer cancel()
		resp, err := p.u.do(cctx, http.MethodHead, p.upRepo, "/blobs/"+d.String(), nil)
		if err != nil {
			return false
		}
		drain(resp)
		if resp.StatusCode != http.StatusOK {
			return false
		}
		h := w.Header()
		h.Set("Docker-Distribution-API-Version", "registry/2.0")
		h.Set("Docker-Content-Digest", d.String())
		h.Set("Content-Type", "application/octet-stream")
		if resp.ContentLength >= 0 {
			h.Set("Content-Length", fmt.Sprint(resp.ContentLength))
		}
		w.WriteHeader(http.StatusOK)
		return true
	}
	if f == nil {
		f = p.r.fetches.join(p, d, true)
	}
	defer p.r.fetches.release(f)
	select {
	case <-f.started:
	case <-req.Context().Done():
		return true
	}
	if f.startErr != nil {
		return false
	}
	h := w.Header()
	h.Set("Docker-Distribution-API-Version", "registry/2.0")
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Type", "application/octet-stream")
	if f.size >= 0 {
		h.Set("Content-Length", fmt.Sprint(f.size))
	}
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	buf := make([]byte, 256<<10)
	var off int64
	for {
		written, done, err, changed := f.progress()
		for off < written {
			n := int64(len(buf))
			if written-off < n {
				n = written - off
			}
			m, rerr := f.file.ReadAt(buf[:n], off)
			if m > 0 {
				if _, werr := w.Write(buf[:m]); werr != nil {
					return true // the client went away; the fetch goes on
				}
				off += int64(m)
			}
			if rerr != nil && m == 0 {
				panic(http.ErrAbortHandler)
			}
		}
		rc.Flush()
		if done {
			if err != nil {
				// Cut the connection: the client must not take a short or
				// corrupt body for the blob.
				panic(http.ErrAbortHandler)
			}
			return true
		}
		select {
		case <-changed:
		case <-req.Context().Done():
			return true
		}
	}
}

// linkBlob links a stored blob into repository name, as distribution's
// linked blob store does after an upload or a mount.
func (r *Registry) linkBlob(ctx context.Context, name string, d digest.Digest) error {
	if !r.gate.enter() {
		return errGateClosed
	}
	defer r.gate.leave()
	return r.driver.PutContent(ctx, layerLinkPath(name, d), []byte(d.String()))
}

func layerLinkPath(name string, d digest.Digest) string {
	return fmt.Sprintf("/docker/registry/v2/repositories/%s/_layers/%s/%s/link", name, d.Algorithm(), d.Encoded())
}

// pinPath marks a tag pushed or imported into a mirrored namespace: the
// upstream does not overwrite it. It lives beside distribution's tree on
// the same storage, so admin hosts sharing an S3 bucket agree.
func pinPath(name, tag string) string {
	return "/airgapd/pinned/" + name + "/" + tag
}

func (r *Registry) pin(ctx context.Context, name, tag string) {
	if err := r.driver.PutContent(ctx, pinPath(name, tag), []byte(r.now().UTC().Format(time.RFC3339))); err != nil {
		r.log.Warn("registry: could not pin a pushed tag against upstream refresh", "repo", name, "tag", tag, "err", err)
	}
}

func (r *Registry) pinned(ctx context.Context, name, tag string) bool {
	_, err := r.driver.Stat(ctx, pinPath(name, tag))
	return err == nil
}

// blobFetches are the blob downloads in progress, one per digest.
type blobFetches struct {
	mu sync.Mutex
	m  map[digest.Digest]*blobFetch
}

// blobFetch is one blob coming from an upstream into a spool file that its
// readers follow.
type blobFetch struct {
	d       digest.Digest
	started chan struct{} // closed when the upstream answered (size, startErr set)
	size    int64         // -1 when the upstream sent no length
	// startErr is set when the upstream did not send the blob at all.
	startErr error
	file     *os.File // unlinked spool; readers use ReadAt

	mu      sync.Mutex
	refs    int // readers, plus the download itself
	written int64
	done    bool
	err     error
	changed chan struct{} // closed and replaced on progress
}

func (f *blobFetch) progress() (int64, bool, error, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.written, f.done, f.err, f.changed
}

func (f *blobFetch) advance(n int64, done bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.written += n
	if done {
		f.done, f.err = true, err
	}
	close(f.changed)
	f.changed = make(chan struct{})
}

// join returns the download of d, starting it when none runs and start is
// set (nil when none runs and start is not).
func (b *blobFetches) join(p ptRequest, d digest.Digest, start bool) *blobFetch {
	b.mu.Lock()
	defer b.mu.Unlock()
	if f := b.m[d]; f != nil {
		f.mu.Lock()
		f.refs++
		f.mu.Unlock()
		return f
	}
	if !start {
		return nil
	}
	if b.m == nil {
		b.m = map[digest.Digest]*blobFetch{}
	}
	f := &blobFetch{d: d, started: make(chan struct{}), size: -1, refs: 2, changed: make(chan struct{})}
	b.m[d] = f
	go p.r.download(p, f)
	return f
}

// release drops one reference; the last closes the spool.
func (b *blobFetches) release(f *blobFetch) {
	f.mu.Lock()
	f.refs--
	last := f.refs == 0
	f.mu.Unlock()
	if last && f.file != nil {
		f.file.Close()
	}
}

func (b *blobFetches) remove(f *blobFetch) {
	b.mu.Lock()
	if b.m[f.d] == f {
		delete(b.m, f.d)
	}
	b.mu.Unlock()
}

// download fetches f's blob, feeding its readers, then stores it.
func (r *Registry) download(p ptRequest, f *blobFetch) {
	defer r.fetches.release(f)
	defer r.fetches.remove(f)
	u := p.u
	u.inflight.Add(1)
	defer u.inflight.Add(-1)
	ctx, cancel := context.WithTimeout(withLogrus(r.fetchCtx, r.log), upstreamBlobTimeout)
	defer cancel()
	fail := func(err error) {
		f.startErr = err
		close(f.started)
	}
	// The download outlives the request that started it.
	if named, err := reference.WithName(p.name); err == nil {
		if repo, err := r.ns.Repository(ctx, named); err == nil {
			p.repo = repo
		}
	}
	spool := filepath.Join(r.deps.DataDir, "registry-spool")
	if err := os.MkdirAll(spool, 0o750); err != nil {
		fail(err)
		return
	}
	file, err := os.CreateTemp(spool, "blob-")
	if err != nil {
		fail(err)
		return
	}
	os.Remove(file.Name()) // open handles keep it; nothing is left after a crash
	f.file = file
	resp, err := u.do(ctx, http.MethodGet, p.upRepo, "/blobs/"+f.d.String(), nil)
	if err != nil {
		r.log.Info("registry: upstream blob fetch failed", "upstream", u.mirror.Name, "repo", p.name, "digest", f.d, "err", err)
		fail(err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fail(fmt.Errorf("%s: %s", u.mirror.Name, resp.Status))
		return
	}
	u.misses.Add(1)
	f.size = resp.ContentLength
	close(f.started)
	start := r.now()
	r.log.Info("registry: pulling through blob", "upstream", u.mirror.Name, "repo", p.name, "digest", f.d, "size", f.size)

	verifier := f.d.Verifier()
	buf := make([]byte, 256<<10)
	var off int64
	var rerr error
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := file.WriteAt(buf[:n], off); werr != nil {
				rerr = werr
				break
			}
			verifier.Write(buf[:n])
			off += int64(n)
			u.bytes.Add(int64(n))
			f.advance(int64(n), false, nil)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			rerr = err
			break
		}
	}
	switch {
	case rerr != nil:
	case f.size >= 0 && off != f.size:
		rerr = fmt.Errorf("got %d bytes of %d", off, f.size)
	case !verifier.Verified():
		rerr = fmt.Errorf("content does not match %s", f.d)
	}
	if rerr != nil {
		u.failed(fmt.Errorf("blob %s: %w", f.d, rerr))
		r.log.Warn("registry: upstream blob download failed", "upstream", u.mirror.Name, "repo", p.name, "digest", f.d, "err", rerr)
		f.advance(0, true, rerr)
		return
	}
	f.advance(0, true, nil)
	if err := r.storeBlob(ctx, p, file, off, f.d); err != nil {
		r.log.Warn("registry: could not store a pulled-through blob", "repo", p.name, "digest", f.d, "err", err)
		return
	}
	r.log.Info("registry: pulled through blob", "upstream", u.mirror.Name, "repo", p.name, "digest", f.d, "bytes", off, "seconds", r.now().Sub(start).Seconds())
	r.markDirty()
}

func (r *Registry) storeBlob(ctx context.Context, p ptRequest, file *os.File, size int64, d digest.Digest) error {
	if !r.gate.enter() {
		return errGateClosed
	}
	defer r.gate.leave()
	bw, err := p.repo.Blobs(ctx).Create(ctx)
	if err != nil {
		return err
	}
	if _, err := bw.ReadFrom(io.NewSectionReader(file, 0, size)); err != nil {
		bw.Cancel(ctx)
		return err
	}
	_, err = bw.Commit(ctx, v1.Descriptor{MediaType: "application/octet-stream", Digest: d, Size: size})
	if err != nil {
		bw.Cancel(ctx)
	}
	return err
}
