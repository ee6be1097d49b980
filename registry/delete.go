package registry

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/reference"
)

// ErrTagNotFound is DeleteTag's answer for a repository or tag that is not
// stored; it wraps fs.ErrNotExist.
var ErrTagNotFound = fmt.Errorf("no such tag: %w", fs.ErrNotExist)

// DeleteTag removes tag from repo, as `DELETE /v2/REPO/manifests/TAG`
// would (distribution's tag service untags it). The manifest and its blobs
// stay until garbage collection finds nothing else references them. It is
// refused while a collection runs, as pushes are.
func (r *Registry) DeleteTag(ctx context.Context, repo, tag string) error {
	named, err := reference.WithName(repo)
	if err != nil {
		return fmt.Errorf("repository %q: %w", repo, err)
	}
	if !reference.TagRegexp.MatchString(tag) || len(tag) > 128 {
		return fmt.Errorf("%q is not a tag", tag)
	}
	if !r.gate.enter() {
		return errors.New("a garbage collection is running: delete the tag when it is done")
	}
	defer r.gate.leave()
	ctx = withLogrus(ctx, r.log)
	rp, err := r.ns.Repository(ctx, named)
	if err != nil {
		return err
	}
	tags := rp.Tags(ctx)
	if _, err := tags.Get(ctx, tag); err != nil {
		var unknown distribution.ErrTagUnknown
		var repoUnknown distribution.ErrRepositoryUnknown
		if errors.As(err, &unknown) || errors.As(err, &repoUnknown) || isPathNotFound(err) {
			return fmt.Errorf("%s:%s: %w", repo, tag, ErrTagNotFound)
		}
		return err
	}
	if err := tags.Untag(ctx, tag); err != nil {
		if isPathNotFound(err) {
			return fmt.Errorf("%s:%s: %w", repo, tag, ErrTagNotFound)
		}
		return fmt.Errorf("delete %s:%s: %w", repo, tag, err)
	}
	r.setPinned(ctx, repo, tag, false)
	r.stats.deletes.Add(1)
	r.markDirty()
	r.log.Info("tag deleted", "repo", repo, "tag", tag)
	return nil
}
