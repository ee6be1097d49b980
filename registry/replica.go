package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/airgapd/airgapd/api"
)

// What an HA standby needs to copy the store of its primary exactly:
// every tag and every manifest, pushed, imported or pulled through alike,
// read from storage (never from an upstream), and a way to set tags and
// pins as the primary has them. The standby fetches the bytes over the
// primary's /v2/ with Cache-Control: only-if-cached, so its copy never
// makes the primary pull anything through.

// onlyIfCached reports whether a request asks for stored content only
// (RFC 9111's only-if-cached): pull-through then leaves it to the store.
func onlyIfCached(req *http.Request) bool {
	for _, v := range req.Header.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(d), "only-if-cached") {
				return true
			}
		}
	}
	return false
}

// Stored lists every tag (with its digest and whether it is pinned) and
// every manifest in storage.
func (r *Registry) Stored(ctx context.Context) (api.HARegistry, error) {
	ctx = withLogrus(ctx, r.log)
	out := api.HARegistry{Tags: map[string]api.HATag{}, Manifests: map[string][]string{}}
	en, ok := r.ns.(distribution.RepositoryEnumerator)
	if !ok {
		return out, errors.New("this storage cannot list its repositories")
	}
	err := en.Enumerate(ctx, func(name string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return r.storedRepo(ctx, name, &out)
	})
	if err != nil && !isPathNotFound(err) {
		return out, fmt.Errorf("list the registry's storage: %w", err)
	}
	return out, nil
}

func (r *Registry) storedRepo(ctx context.Context, name string, out *api.HARegistry) error {
	named, err := reference.WithName(name)
	if err != nil {
		return nil // not a repository distribution would serve
	}
	repo, err := r.ns.Repository(ctx, named)
	if err != nil {
		return err
	}
	ms, err := repo.Manifests(ctx)
	if err != nil {
		return err
	}
	var digests []string
	if en, ok := ms.(distribution.ManifestEnumerator); ok {
		err := en.Enumerate(ctx, func(d digest.Digest) error { digests = append(digests, d.String()); return nil })
		if err != nil && !isPathNotFound(err) {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	slices.Sort(digests)
	if len(digests) > 0 {
		out.Manifests[name] = digests
	}
	tags, err := repo.Tags(ctx).All(ctx)
	var unknown distribution.ErrRepositoryUnknown
	if err != nil && !errors.As(err, &unknown) && !isPathNotFound(err) {
		return fmt.Errorf("%s: %w", name, err)
	}
	for _, t := range tags {
		desc, err := repo.Tags(ctx).Get(ctx, t)
		if err != nil {
			continue // untagged meanwhile
		}
		out.Tags[name+":"+t] = api.HATag{Digest: desc.Digest.String(), Pinned: r.pinned(ctx, name, t)}
	}
	return nil
}

// repositoryToChange opens repo for a change under the write gate (so not
// while a garbage collection runs); the caller calls leave when done. The
// context it returns carries the registry's logger for distribution.
func (r *Registry) repositoryToChange(ctx context.Context, repo string) (context.Context, distribution.Repository, func(), error) {
	ctx = withLogrus(ctx, r.log)
	rp, err := r.repository(ctx, repo)
	if err != nil {
		return ctx, nil, nil, err
	}
	if !r.gate.enter() {
		return ctx, nil, nil, errGateClosed
	}
	return ctx, rp, r.gate.leave, nil
}

// SetTag points repo:tag at the stored manifest d and pins the tag
// against upstream refresh, or unpins it, as pinned says.
func (r *Registry) SetTag(ctx context.Context, repo, tag string, d digest.Digest, pinned bool) error {
	ctx, rp, leave, err := r.repositoryToChange(ctx, repo)
	if err != nil {
		return err
	}
	defer leave()
	ms, err := rp.Manifests(ctx)
	if err != nil {
		return err
	}
	m, err := ms.Get(ctx, d)
	if err != nil {
		return fmt.Errorf("%s@%s: %w", repo, d, err)
	}
	mt, payload, err := m.Payload()
	if err != nil {
		return err
	}
	if err := rp.Tags(ctx).Tag(ctx, tag, v1.Descriptor{MediaType: mt, Digest: d, Size: int64(len(payload))}); err != nil {
		return fmt.Errorf("tag %s:%s: %w", repo, tag, err)
	}
	if err := r.setPinned(ctx, repo, tag, pinned); err != nil {
		return err
	}
	r.markDirty()
	return nil
}

// setPinned writes or removes the pin of repo:tag.
func (r *Registry) setPinned(ctx context.Context, repo, tag string, pinned bool) error {
	if pinned {
		return r.driver.PutContent(ctx, pinPath(repo, tag), []byte(r.now().UTC().Format("2006-01-02T15:04:05Z")))
	}
	err := r.driver.Delete(ctx, pinPath(repo, tag))
	if err != nil && !isPathNotFound(err) {
		return fmt.Errorf("unpin %s:%s: %w", repo, tag, err)
	}
	return nil
}

// DeleteManifest removes manifest d from repo, with the tags that point
// at it; blobs stay until garbage collection.
func (r *Registry) DeleteManifest(ctx context.Context, repo string, d digest.Digest) error {
	ctx, rp, leave, err := r.repositoryToChange(ctx, repo)
	if err != nil {
		return err
	}
	defer leave()
	tags, err := rp.Tags(ctx).Lookup(ctx, v1.Descriptor{Digest: d})
	if err != nil && !isPathNotFound(err) {
		return err
	}
	for _, t := range tags {
		if err := rp.Tags(ctx).Untag(ctx, t); err != nil && !isPathNotFound(err) {
			return err
		}
		r.setPinned(ctx, repo, t, false)
	}
	ms, err := rp.Manifests(ctx)
	if err != nil {
		return err
	}
	if err := ms.Delete(ctx, d); err != nil && !isPathNotFound(err) {
		var unknown distribution.ErrManifestUnknownRevision
		if !errors.As(err, &unknown) {
			return fmt.Errorf("delete %s@%s: %w", repo, d, err)
		}
	}
	r.stats.deletes.Add(1)
	r.markDirty()
	return nil
}

// HasManifest reports whether repo holds manifest d.
func (r *Registry) HasManifest(ctx context.Context, repo string, d digest.Digest) bool {
	rp, err := r.repository(withLogrus(ctx, r.log), repo)
	if err != nil {
		return false
	}
	ms, err := rp.Manifests(withLogrus(ctx, r.log))
	if err != nil {
		return false
	}
	ok, _ := ms.Exists(ctx, d)
	return ok
}
