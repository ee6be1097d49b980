package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxManifestBytes is distribution's own limit for a manifest body.
const maxManifestBytes = 4 << 20

// referrersAPI adds what distribution v3 lacks of OCI 1.1's referrers:
//
//   - A manifest pushed with a `subject` is added, by the registry, to its
//     subject's referrers list, and the answer carries `OCI-Subject`, so
//     clients (oras, notation, cosign, go-containerregistry) leave the list
//     to the registry.
//   - GET /v2/NAME/referrers/DIGEST[?artifactType=T] returns that list.
//
// The list is kept where the referrers tag schema keeps it, the index under
// the tag `sha256-HEX`: clients that only know the tag schema read and
// extend the same list, and bundles and GC see it as an ordinary tag.
func (r *Registry) referrersAPI(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rt := parseRoute(req.URL.Path)
		switch {
		case rt.kind == routeReferrers && (req.Method == http.MethodGet || req.Method == http.MethodHead):
			r.serveReferrers(w, req, rt)
		case rt.kind == routeManifest && req.Method == http.MethodPut:
			r.putManifest(w, req, rt, next)
		case rt.kind == routeManifest && req.Method == http.MethodDelete:
			r.deleteManifest(w, req, rt, next)
		default:
			next.ServeHTTP(w, req)
		}
	})
}

// referrerFields are the parts of a pushed manifest its referrers entry
// is made of.
type referrerFields struct {
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType"`
	Config       *v1.Descriptor    `json:"config"`
	Subject      *v1.Descriptor    `json:"subject"`
	Annotations  map[string]string `json:"annotations"`
}

// putManifest lets distribution store the manifest and, when it names a
// subject and was stored, lists it under the subject before the client is
// answered, so a client that reads the referrers right after its push
// finds it.
func (r *Registry) putManifest(w http.ResponseWriter, req *http.Request, rt route, next http.Handler) {
	body, err := io.ReadAll(io.LimitReader(req.Body, maxManifestBytes+1))
	if err != nil {
		http.Error(w, "reading the manifest: "+err.Error(), http.StatusBadRequest)
		return
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	var m referrerFields
	if len(body) > maxManifestBytes || json.Unmarshal(body, &m) != nil || m.Subject == nil || m.Subject.Digest.Validate() != nil {
		next.ServeHTTP(w, req) // distribution judges it as it would
		return
	}
	next.ServeHTTP(&subjectWriter{ResponseWriter: w, stored: func(h http.Header) {
		pushed, err := digest.Parse(h.Get("Docker-Content-Digest"))
		if err != nil {
			return
		}
		if err := r.addReferrer(req.Context(), rt.repo, m.Subject.Digest, referrerEntry(m, pushed, int64(len(body)))); err != nil {
			// The manifest is stored; a client that falls back to the tag
			// schema still lists it.
			r.log.Warn("listing a referrer", "repo", rt.repo, "subject", m.Subject.Digest, "referrer", pushed, "err", err)
			return
		}
		h.Set("OCI-Subject", m.Subject.Digest.String())
	}}, req)
}

// deleteManifest lets distribution delete a manifest by digest and, when
// the manifest named a subject, takes it out of the subject's list, so the
// list never names a manifest that is gone.
func (r *Registry) deleteManifest(w http.ResponseWriter, req *http.Request, rt route, next http.Handler) {
	target, err := digest.Parse(rt.ref)
	named, nameErr := reference.WithName(rt.repo)
	if err != nil || nameErr != nil {
		next.ServeHTTP(w, req)
		return
	}
	ctx := withLogrus(req.Context(), r.log)
	var subject *v1.Descriptor
	if rp, err := r.ns.Repository(ctx, named); err == nil {
		if ms, err := rp.Manifests(ctx); err == nil {
			if m, err := ms.Get(ctx, target); err == nil {
				if _, payload, err := m.Payload(); err == nil {
					var f referrerFields
					if json.Unmarshal(payload, &f) == nil && f.Subject != nil && f.Subject.Digest.Validate() == nil {
						subject = f.Subject
					}
				}
			}
		}
	}
	if subject == nil {
		next.ServeHTTP(w, req)
		return
	}
	next.ServeHTTP(&subjectWriter{ResponseWriter: w, done: http.StatusAccepted, stored: func(http.Header) {
		if err := r.removeReferrer(req.Context(), rt.repo, subject.Digest, target); err != nil {
			r.log.Warn("unlisting a deleted referrer", "repo", rt.repo, "subject", subject.Digest, "referrer", target, "err", err)
		}
	}}, req)
}

// listReferrer lists t, a manifest stored in repo, under the subject it
// names (if any), as a push of it would have.
func (r *Registry) listReferrer(ctx context.Context, repo string, t interface {
	RawManifest() ([]byte, error)
}) error {
	raw, err := t.RawManifest()
	if err != nil {
		return err
	}
	var m referrerFields
	if json.Unmarshal(raw, &m) != nil || m.Subject == nil || m.Subject.Digest.Validate() != nil {
		return nil
	}
	if !r.gate.enter() {
		return errors.New("a garbage collection is running: import again when it is done")
	}
	defer r.gate.leave()
	return r.addReferrer(ctx, repo, m.Subject.Digest, referrerEntry(m, digest.FromBytes(raw), int64(len(raw))))
}

// referrerEntry is a pushed manifest's line in its subject's list.
func referrerEntry(m referrerFields, d digest.Digest, size int64) v1.Descriptor {
	artifactType := m.ArtifactType
	if artifactType == "" && m.Config != nil {
		artifactType = m.Config.MediaType
	}
	return v1.Descriptor{MediaType: m.MediaType, Digest: d, Size: size, ArtifactType: artifactType, Annotations: m.Annotations}
}

// subjectWriter calls stored once distribution answers with the status that
// says it did the work (201 Created for a push, 202 Accepted for a delete),
// before the status goes out, so stored can still add headers.
type subjectWriter struct {
	http.ResponseWriter
	stored func(http.Header)
	done   int // the status that means distribution did it; 0: 201 Created
	wrote  bool
}

func (s *subjectWriter) WriteHeader(code int) {
	if !s.wrote {
		s.wrote = true
		done := s.done
		if done == 0 {
			done = http.StatusCreated
		}
		if code == done {
			s.stored(s.Header())
		}
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *subjectWriter) Write(b []byte) (int, error) {
	if !s.wrote {
		s.WriteHeader(http.StatusOK)
	}
	return s.ResponseWriter.Write(b)
}

// referrersTag is where the referrers tag schema keeps subject's list:
// ALG-HEX with the algorithm cut to 32 characters and the hex to 64, as the
// schema says, so a sha512 subject's tag is a valid tag (at most 128
// characters) and the one tag-schema clients look for.
func referrersTag(subject digest.Digest) string {
	alg, enc := subject.Algorithm().String(), subject.Encoded()
	return alg[:min(len(alg), 32)] + "-" + enc[:min(len(enc), 64)]
}

// addReferrer adds entry to subject's list in repo, once.
func (r *Registry) addReferrer(ctx context.Context, repo string, subject digest.Digest, entry v1.Descriptor) error {
	return r.changeReferrers(ctx, repo, subject, func(idx *v1.Index) bool {
		if slices.ContainsFunc(idx.Manifests, func(d v1.Descriptor) bool { return d.Digest == entry.Digest }) {
			return false
		}
		idx.Manifests = append(idx.Manifests, entry)
		return true
	})
}

// removeReferrer takes referrer out of subject's list in repo.
func (r *Registry) removeReferrer(ctx context.Context, repo string, subject, referrer digest.Digest) error {
	return r.changeReferrers(ctx, repo, subject, func(idx *v1.Index) bool {
		n := len(idx.Manifests)
		idx.Manifests = slices.DeleteFunc(idx.Manifests, func(d v1.Descriptor) bool { return d.Digest == referrer })
		return len(idx.Manifests) != n
	})
}

// changeReferrers reads subject's list in repo, lets change edit it and,
// when it did, writes it back; an emptied list takes its tag along. One
// change at a time: the list is read, changed and written back.
func (r *Registry) changeReferrers(ctx context.Context, repo string, subject digest.Digest, change func(*v1.Index) bool) error {
	named, err := reference.WithName(repo)
	if err != nil {
		return err
	}
	r.referrersMu.Lock()
	defer r.referrersMu.Unlock()
	ctx = withLogrus(ctx, r.log)
	rp, err := r.ns.Repository(ctx, named)
	if err != nil {
		return err
	}
	idx, err := r.referrersOf(ctx, rp, subject)
	if err != nil {
		return err
	}
	if !change(&idx) {
		return nil
	}
	if len(idx.Manifests) == 0 {
		if err := rp.Tags(ctx).Untag(ctx, referrersTag(subject)); err != nil {
			return fmt.Errorf("removing the empty referrers tag: %w", err)
		}
		r.markDirty()
		return nil
	}
	return r.storeReferrers(ctx, rp, subject, idx)
}

// storeReferrers writes idx as subject's list and points its tag at it.
func (r *Registry) storeReferrers(ctx context.Context, rp distribution.Repository, subject digest.Digest, idx v1.Index) error {
	payload, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	m, desc, err := distribution.UnmarshalManifest(v1.MediaTypeImageIndex, payload)
	if err != nil {
		return err
	}
	ms, err := rp.Manifests(ctx)
	if err != nil {
		return err
	}
	tag := referrersTag(subject)
	if _, err := ms.Put(ctx, m, distribution.WithTag(tag)); err != nil {
		return fmt.Errorf("storing the referrers index: %w", err)
	}
	if err := rp.Tags(ctx).Tag(ctx, tag, desc); err != nil {
		return fmt.Errorf("tagging the referrers index %s: %w", tag, err)
	}
	r.markDirty()
	return nil
}

// referrersOf reads subject's list in rp: the index under its referrers
// tag, or an empty one.
func (r *Registry) referrersOf(ctx context.Context, rp distribution.Repository, subject digest.Digest) (v1.Index, error) {
	idx := v1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageIndex, Manifests: []v1.Descriptor{}}
	desc, err := rp.Tags(ctx).Get(ctx, referrersTag(subject))
	if err != nil {
		var unknown distribution.ErrTagUnknown
		var repoUnknown distribution.ErrRepositoryUnknown
		if errors.As(err, &unknown) || errors.As(err, &repoUnknown) || isPathNotFound(err) {
			return idx, nil
		}
		return idx, err
	}
	ms, err := rp.Manifests(ctx)
	if err != nil {
		return idx, err
	}
	m, err := ms.Get(ctx, desc.Digest)
	if err != nil {
		return idx, err
	}
	_, payload, err := m.Payload()
	if err != nil {
		return idx, err
	}
	var stored v1.Index
	if err := json.Unmarshal(payload, &stored); err != nil {
		return idx, fmt.Errorf("the referrers tag %s is not an index: %w", referrersTag(subject), err)
	}
	idx.Manifests = append(idx.Manifests, stored.Manifests...)
	return idx, nil
}

// serveReferrers answers the referrers API. Per the distribution spec, a
// registry that serves it answers 200 with an empty index, never 404, when
// nothing refers to the digest.
func (r *Registry) serveReferrers(w http.ResponseWriter, req *http.Request, rt route) {
	subject, err := digest.Parse(rt.ref)
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, "DIGEST_INVALID", "not a digest: "+rt.ref)
		return
	}
	named, err := reference.WithName(rt.repo)
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, "NAME_INVALID", "not a repository name: "+rt.repo)
		return
	}
	ctx := withLogrus(req.Context(), r.log)
	rp, err := r.ns.Repository(ctx, named)
	if err != nil {
		writeAPIError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	idx, err := r.referrersOf(ctx, rp, subject)
	if err != nil {
		r.log.Warn("reading referrers", "repo", rt.repo, "subject", subject, "err", err)
		writeAPIError(w, http.StatusInternalServerError, "UNKNOWN", "reading the referrers list failed")
		return
	}
	if want := req.URL.Query().Get("artifactType"); want != "" {
		idx.Manifests = slices.DeleteFunc(idx.Manifests, func(d v1.Descriptor) bool { return d.ArtifactType != want })
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	body, err := json.Marshal(idx)
	if err != nil {
		writeAPIError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	w.Header().Set("Content-Type", v1.MediaTypeImageIndex)
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusOK)
	if req.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}
