package registry

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// inventory is what the storage holds, counted in the background for
// Status and metrics.
type inventory struct {
	at      time.Time
	repos   []RepoStatus
	omitted int
	tags    int
	blobs   int
	bytes   int64
}

const (
	// statusRepoLimit bounds the repositories listed in Status.
	statusRepoLimit = 500
	// countLimit bounds one count.
	countLimit = time.Minute
)

var errStop = errors.New("stop")

// count walks the storage: repositories, their tags, manifests and linked
// blobs, and every blob with its size.
func (r *Registry) count(ctx context.Context) {
	ctx, cancel := context.WithTimeout(withLogrus(ctx, r.log), countLimit)
	defer cancel()
	inv, err := r.countStorage(ctx)
	if err != nil && ctx.Err() == nil {
		r.log.Warn("could not count the registry's contents", "err", err)
		return
	}
	if err == nil {
		r.inv.Store(inv)
	}
}

func (r *Registry) countStorage(ctx context.Context) (*inventory, error) {
	inv := &inventory{at: r.now()}
	sizes := map[digest.Digest]int64{}
	statter := r.ns.BlobStatter()
	err := r.ns.Blobs().Enumerate(ctx, func(d digest.Digest) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		desc, err := statter.Stat(ctx, d)
		if err == nil {
			sizes[d] = desc.Size
			inv.blobs++
			inv.bytes += desc.Size
		}
		return nil
	})
	if err != nil && !isPathNotFound(err) {
		return nil, err
	}
	en, ok := r.ns.(distribution.RepositoryEnumerator)
	if !ok {
		return inv, nil
	}
	err = en.Enumerate(ctx, func(name string) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rs, err := r.countRepo(ctx, name, sizes)
		if err != nil {
			return nil // a repository half written or half deleted: skip it
		}
		inv.tags += len(rs.Tags)
		if len(inv.repos) >= statusRepoLimit {
			inv.omitted++
			return nil
		}
		inv.repos = append(inv.repos, rs)
		return nil
	})
	if err != nil && !isPathNotFound(err) {
		return nil, err
	}
	sort.Slice(inv.repos, func(i, j int) bool { return inv.repos[i].Name < inv.repos[j].Name })
	return inv, nil
}

func (r *Registry) countRepo(ctx context.Context, name string, sizes map[digest.Digest]int64) (RepoStatus, error) {
	rs := RepoStatus{Name: name}
	named, err := reference.WithName(name)
	if err != nil {
		return rs, err
	}
	repo, err := r.ns.Repository(ctx, named)
	if err != nil {
		return rs, err
	}
	tags, err := repo.Tags(ctx).All(ctx)
	if err != nil {
		var unknown distribution.ErrRepositoryUnknown
		if !errors.As(err, &unknown) && !isPathNotFound(err) {
			return rs, err
		}
	}
	sort.Strings(tags)
	rs.Tags = tags
	if rs.Tags == nil {
		rs.Tags = []string{}
	}
	ms, err := repo.Manifests(ctx)
	if err != nil {
		return rs, err
	}
	if en, ok := ms.(distribution.ManifestEnumerator); ok {
		en.Enumerate(ctx, func(digest.Digest) error { rs.Manifests++; return nil })
	}
	if en, ok := repo.Blobs(ctx).(distribution.ManifestEnumerator); ok {
		en.Enumerate(ctx, func(d digest.Digest) error { rs.Bytes += sizes[d]; return nil })
	}
	return rs, nil
}
