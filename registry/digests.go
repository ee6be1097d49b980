package registry

import (
	"bytes"
	"context"
	_ "crypto/sha512" // registers sha512 for go-digest
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"

	"github.com/distribution/distribution/v3"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// otherDigests lets clients push and pull content by digests of another
// algorithm than sha256 (sha512, which the OCI distribution spec allows),
// end to end. distribution stores every blob and manifest under its sha256
// (its canonical digest) and links the pushed digest beside it, but it
// answers with the canonical digest where the client named another, and
// refuses sha512 manifests outright (distribution/distribution#4420, open
// at v3.1.2; the blob cases below are found by the OCI conformance suite's
// sha512 groups against v3.1.2):
//
//   - a blob upload finished with ?digest=sha512:… answers
//     Docker-Content-Digest and Location with sha256;
//   - a HEAD or GET of a blob by sha512 answers Docker-Content-Digest sha256;
//   - a mount of a sha512 blob links only the sha256 into the target
//     repository, so the blob is then unknown there by the digest it was
//     mounted by;
//   - a manifest PUT by sha512 is refused as a digest mismatch, because
//     distribution only computes the sha256 of the body.
//
// This layer puts the client's digest back into the answers, adds the
// missing links, and stores a manifest pushed by sha512 under its sha256
// with a revision link for the sha512, so it is served by either.
func (r *Registry) otherDigests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rt := parseRoute(req.URL.Path)
		q := req.URL.Query()
		switch {
		case rt.kind == routeBlob && (req.Method == http.MethodGet || req.Method == http.MethodHead):
			if d, ok := nonCanonical(rt.ref); ok {
				w = &digestAnswer{ResponseWriter: w, digest: d}
			}
		case rt.kind == routeUpload && (req.Method == http.MethodPut || req.Method == http.MethodPost):
			if d, ok := nonCanonical(q.Get("digest")); ok {
				w = &digestAnswer{ResponseWriter: w, digest: d, location: true}
			} else if d, ok := nonCanonical(q.Get("mount")); ok && req.Method == http.MethodPost {
				from := q.Get("from")
				w = &digestAnswer{ResponseWriter: w, digest: d, location: true, created: func(digest.Digest) error {
					// distribution answers a mount with the digest asked
					// for; the source repository's link names the stored one.
					canonical, err := r.driver.GetContent(req.Context(), layerLinkPath(from, d))
					if err != nil {
						return fmt.Errorf("mounting %s from %s: %w", d, from, err)
					}
					// Both links, as an upload leaves them: distribution
					// serves the alias only where the canonical is linked.
					for _, link := range []digest.Digest{digest.Digest(canonical), d} {
						if err := r.linkAlias(req.Context(), layerLinkPath(rt.repo, link), digest.Digest(canonical)); err != nil {
							return err
						}
					}
					return nil
				}}
			}
		case rt.kind == routeManifest && req.Method == http.MethodPut:
			tags := q["tag"]
			if err := checkTags(rt, tags); err != nil {
				writeAPIError(w, http.StatusBadRequest, "TAG_INVALID", err.Error())
				return
			}
			if d, ok := nonCanonical(rt.ref); ok {
				r.putManifestByOther(w, req, rt, d, tags, next)
				return
			}
			if d, err := digest.Parse(rt.ref); err == nil && len(tags) > 0 {
				next.ServeHTTP(&digestAnswer{ResponseWriter: w, digest: d, created: func(stored digest.Digest) error {
					return r.tagPushed(req.Context(), w.Header(), rt.repo, stored, tags)
				}}, req)
				return
			}
		}
		next.ServeHTTP(w, req)
	})
}

// checkTags refuses ?tag= values that are no valid tag names. The
// parameter (PUT /v2/NAME/manifests/DIGEST?tag=T…, distribution-spec v1.1
// "push with tags") is how a client tags a manifest it pushes by a digest of
// another algorithm than sha256 — regctl does so for sha512 — and
// distribution ignores it.
func checkTags(rt route, tags []string) error {
	if len(tags) == 0 {
		return nil
	}
	if _, err := digest.Parse(rt.ref); err != nil {
		return fmt.Errorf("?tag= needs a manifest pushed by digest, not %q", rt.ref)
	}
	named, err := reference.WithName(rt.repo)
	if err != nil {
		return fmt.Errorf("repository %q: %w", rt.repo, err)
	}
	for _, t := range tags {
		if _, err := reference.WithTag(named, t); err != nil {
			return fmt.Errorf("tag %q: %w", t, err)
		}
	}
	return nil
}

// tagPushed points each tag at the manifest distribution stored as
// canonical and names them in OCI-Tag, which tells the client its tags were
// applied (else it pushes each tag again on its own).
func (r *Registry) tagPushed(ctx context.Context, h http.Header, repo string, canonical digest.Digest, tags []string) error {
	rp, err := r.repository(ctx, repo)
	if err != nil {
		return err
	}
	for _, t := range tags {
		if err := rp.Tags(ctx).Tag(ctx, t, distribution.Descriptor{Digest: canonical}); err != nil {
			return fmt.Errorf("tagging %s:%s: %w", repo, t, err)
		}
	}
	h.Set("OCI-Tag", strings.Join(tags, ","))
	return nil
}

// nonCanonical parses s as a digest of an algorithm other than sha256.
func nonCanonical(s string) (digest.Digest, bool) {
	d, err := digest.Parse(s)
	if err != nil || d.Algorithm() == digest.Canonical {
		return "", false
	}
	return d, true
}

// putManifestByOther checks the body against d itself, hands distribution
// the PUT by the body's sha256, and once it is stored links d to it.
func (r *Registry) putManifestByOther(w http.ResponseWriter, req *http.Request, rt route, d digest.Digest, tags []string, next http.Handler) {
	body, err := io.ReadAll(io.LimitReader(req.Body, maxManifestBytes+1))
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, "MANIFEST_INVALID", "reading the manifest: "+err.Error())
		return
	}
	if len(body) > maxManifestBytes {
		writeAPIError(w, http.StatusRequestEntityTooLarge, "SIZE_INVALID", "manifest is larger than 4 MiB")
		return
	}
	if d.Algorithm().FromBytes(body) != d {
		writeAPIError(w, http.StatusBadRequest, "DIGEST_INVALID", "provided digest did not match uploaded content")
		return
	}
	canonical := digest.FromBytes(body)
	byCanonical := req.Clone(req.Context())
	byCanonical.URL.Path = strings.TrimSuffix(req.URL.Path, rt.ref) + canonical.String()
	byCanonical.URL.RawPath = ""
	byCanonical.Body = io.NopCloser(bytes.NewReader(body))
	byCanonical.ContentLength = int64(len(body))
	next.ServeHTTP(&digestAnswer{ResponseWriter: w, digest: d, location: true, created: func(stored digest.Digest) error {
		if stored != canonical {
			return fmt.Errorf("distribution stored the manifest as %s, not %s", stored, canonical)
		}
		if err := r.linkAlias(req.Context(), manifestLinkPath(rt.repo, d), canonical); err != nil {
			return err
		}
		if len(tags) == 0 {
			return nil
		}
		return r.tagPushed(req.Context(), w.Header(), rt.repo, canonical, tags)
	}}, byCanonical)
}

// linkAlias writes a link, at path, to the canonical digest of stored
// content, as distribution's linked blob store does for the digests it was
// given.
func (r *Registry) linkAlias(ctx context.Context, path string, canonical digest.Digest) error {
	if err := canonical.Validate(); err != nil || canonical.Algorithm() != digest.Canonical {
		return fmt.Errorf("linking %s: distribution answered no sha256 digest (%q)", path, canonical)
	}
	if err := r.driver.PutContent(ctx, path, []byte(canonical.String())); err != nil {
		return fmt.Errorf("linking %s: %w", path, err)
	}
	return nil
}

func manifestLinkPath(name string, d digest.Digest) string {
	return fmt.Sprintf("/docker/registry/v2/repositories/%s/_manifests/revisions/%s/%s/link", name, d.Algorithm(), d.Encoded())
}

// digestAnswer puts the client's digest into a successful answer's
// Docker-Content-Digest (and Location, when it names the stored content).
// created, when set, runs on a 201 before the client is answered, with the
// digest distribution stored the content under; when it fails the client
// gets a 500 instead.
type digestAnswer struct {
	http.ResponseWriter
	digest   digest.Digest
	location bool
	created  func(canonical digest.Digest) error
	wrote    bool
	failed   bool
}

func (a *digestAnswer) WriteHeader(code int) {
	if a.wrote {
		return
	}
	a.wrote = true
	h := a.Header()
	if code >= 200 && code < 300 {
		stored := digest.Digest(h.Get("Docker-Content-Digest"))
		if code == http.StatusCreated && a.created != nil {
			if err := a.created(stored); err != nil {
				a.failed = true
				h.Del("Location")
				h.Del("Docker-Content-Digest")
				h.Del("Content-Length")
				writeAPIError(a.ResponseWriter, http.StatusInternalServerError, "UNKNOWN", err.Error())
				return
			}
		}
		if stored != "" {
			h.Set("Docker-Content-Digest", a.digest.String())
		}
		if loc := h.Get("Location"); a.location && stored != "" && strings.HasSuffix(loc, "/"+stored.String()) {
			h.Set("Location", strings.TrimSuffix(loc, stored.String())+a.digest.String())
		}
	}
	a.ResponseWriter.WriteHeader(code)
}

func (a *digestAnswer) Write(p []byte) (int, error) {
	if !a.wrote {
		a.WriteHeader(http.StatusOK)
	}
	if a.failed {
		return len(p), nil // distribution's body for the answer replaced
	}
	return a.ResponseWriter.Write(p)
}

func (a *digestAnswer) Flush() {
	if f, ok := a.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (a *digestAnswer) Unwrap() http.ResponseWriter { return a.ResponseWriter }

// keepAliased adds to keep every stored blob a repository links by another
// digest than sha256. Mark and sweep marks the digests manifests name
// (sha512:…) but sweeps the store by the digests it keeps blobs under
// (sha256:…), so it would delete every blob pushed by sha512 however many
// manifests use it. Kept while any such link is left: the sweep removes the
// links no manifest names, so a blob no longer used goes at the next
// collection.
func (r *Registry) keepAliased(ctx context.Context, keep map[digest.Digest]bool) error {
	en, ok := r.ns.(distribution.RepositoryEnumerator)
	if !ok {
		return errors.New("storage cannot list repositories")
	}
	return en.Enumerate(ctx, func(name string) error {
		base := fmt.Sprintf("/docker/registry/v2/repositories/%s/_layers", name)
		algs, err := r.driver.List(ctx, base)
		if err != nil {
			var missing storagedriver.PathNotFoundError
			if errors.As(err, &missing) {
				return nil
			}
			return fmt.Errorf("listing %s: %w", base, err)
		}
		for _, alg := range algs {
			if path.Base(alg) == string(digest.Canonical) {
				continue
			}
			links, err := r.driver.List(ctx, alg)
			if err != nil {
				return fmt.Errorf("listing %s: %w", alg, err)
			}
			for _, l := range links {
				target, err := r.driver.GetContent(ctx, l+"/link")
				if err != nil {
					continue // a link being written or removed
				}
				if d, err := digest.Parse(string(target)); err == nil {
					keep[d] = true
				}
			}
		}
		return nil
	})
}
