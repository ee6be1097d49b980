package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// This file is what mirror/charts (the classic Helm chart repository view
// over the charts/ namespace) needs of the registry, in plain types: server
// hands the registry to it through an interface mirror/charts declares.

// Changes counts the pushes, deletes and collections since the registry
// started, so that a view over its content knows when to look again.
func (r *Registry) Changes() uint64 { return r.changes.Load() }

// TagDigests lists every repository whose name starts with prefix
// ("charts/") and, for each, its tags with the digest of the manifest each
// points at.
func (r *Registry) TagDigests(ctx context.Context, prefix string) (map[string]map[string]string, error) {
	ctx = withLogrus(ctx, r.log)
	out := map[string]map[string]string{}
	en, ok := r.ns.(distribution.RepositoryEnumerator)
	if !ok {
		return out, nil
	}
	var names []string
	err := en.Enumerate(ctx, func(name string) error {
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
		return ctx.Err()
	})
	if err != nil && !isPathNotFound(err) {
		return nil, fmt.Errorf("list the registry's repositories: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		rp, err := r.repository(ctx, name)
		if err != nil {
			return nil, err
		}
		ts := rp.Tags(ctx)
		tags, err := ts.All(ctx)
		if err != nil {
			continue // a repository with no tags (left after a delete)
		}
		m := map[string]string{}
		for _, t := range tags {
			if d, err := ts.Get(ctx, t); err == nil {
				m[t] = d.Digest.String()
			}
		}
		if len(m) > 0 {
			out[name] = m
		}
	}
	return out, nil
}

// ReadManifest returns the manifest repo@dgst as stored.
func (r *Registry) ReadManifest(ctx context.Context, repo, dgst string) ([]byte, error) {
	ctx = withLogrus(ctx, r.log)
	d, err := digest.Parse(dgst)
	if err != nil {
		return nil, err
	}
	rp, err := r.repository(ctx, repo)
	if err != nil {
		return nil, err
	}
	ms, err := rp.Manifests(ctx)
	if err != nil {
		return nil, err
	}
	m, err := ms.Get(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("manifest %s@%s: %w", repo, dgst, err)
	}
	_, payload, err := m.Payload()
	return payload, err
}

// OpenBlob opens the blob dgst that repo links.
func (r *Registry) OpenBlob(ctx context.Context, repo, dgst string) (io.ReadSeekCloser, error) {
	ctx = withLogrus(ctx, r.log)
	d, err := digest.Parse(dgst)
	if err != nil {
		return nil, err
	}
	rp, err := r.repository(ctx, repo)
	if err != nil {
		return nil, err
	}
	return rp.Blobs(ctx).Open(ctx, d)
}

// PushManifest stores blobs in repo, then the manifest (of mediaType) that
// references them under tag, as a client's push would. It is refused
// while a garbage collection runs.
func (r *Registry) PushManifest(ctx context.Context, repo, tag, mediaType string, manifest []byte, blobs [][]byte) (string, error) {
	if !reference.TagRegexp.MatchString(tag) || len(tag) > 128 {
		return "", fmt.Errorf("%q is not a tag", tag)
	}
	if !r.gate.enter() {
		return "", errors.New("a garbage collection is running: push again when it is done")
	}
	defer r.gate.leave()
	ctx = withLogrus(ctx, r.log)
	rp, err := r.repository(ctx, repo)
	if err != nil {
		return "", err
	}
	bs := rp.Blobs(ctx)
	for _, b := range blobs {
		if _, err := bs.Put(ctx, "application/octet-stream", b); err != nil {
			return "", fmt.Errorf("store a blob in %s: %w", repo, err)
		}
	}
	m, desc, err := distribution.UnmarshalManifest(mediaType, manifest)
	if err != nil {
		return "", fmt.Errorf("manifest for %s:%s: %w", repo, tag, err)
	}
	ms, err := rp.Manifests(ctx)
	if err != nil {
		return "", err
	}
	d, err := ms.Put(ctx, m, distribution.WithTag(tag))
	if err != nil {
		return "", fmt.Errorf("store %s:%s: %w", repo, tag, err)
	}
	// As distribution's manifest handler does: Put stores, Tag names.
	desc.Digest = d
	if err := rp.Tags(ctx).Tag(ctx, tag, desc); err != nil {
		return "", fmt.Errorf("tag %s:%s: %w", repo, tag, err)
	}
	r.stats.pushes.Add(1)
	r.markDirty()
	return desc.Digest.String(), nil
}

func (r *Registry) repository(ctx context.Context, repo string) (distribution.Repository, error) {
	named, err := reference.WithName(repo)
	if err != nil {
		return nil, fmt.Errorf("repository %q: %w", repo, err)
	}
	return r.ns.Repository(ctx, named)
}
