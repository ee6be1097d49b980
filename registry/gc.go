package registry

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/airgapd/airgapd/api"
)

// GCResult is what one garbage collection removed (the api package
// defines it: it is the API's answer and part of Status).
type GCResult = api.GCResult

// GCBlob is one blob in a GCResult.
type GCBlob = api.GCBlob

// ErrGCOff is GC's answer on a host whose config says registry.gc.enabled:
// false.
var ErrGCOff = errors.New("garbage collection is off on this host (registry.gc.enabled: false): " +
	"its registry storage is shared with other airgapd hosts, and distribution's mark and sweep is safe from one host only; " +
	"run `airgapd registry gc` on the host whose config says registry.gc.enabled: true")

// gcDrainLimit bounds how long a collection waits for writes in flight.
const gcDrainLimit = 2 * time.Minute

// GC runs distribution's mark and sweep (storage.MarkAndSweep): every blob
// that no manifest of any repository references goes, with the
// repositories' links to it. Writes are held off while it runs (see
// writeGate), and blobs of pushes in progress are kept. With dryRun it
// runs the same mark and sweep against a storage handle that records the
// deletions instead of doing them, so the list is exactly what a real run
// would remove.
func (r *Registry) GC(ctx context.Context, dryRun bool) (GCResult, error) {
	if !r.cfg.Load().gcAllowed() {
		return GCResult{}, ErrGCOff
	}
	if !r.gcMu.TryLock() {
		return GCResult{}, errGCRunning
	}
	defer r.gcMu.Unlock()
	res := GCResult{DryRun: dryRun, Started: r.now()}
	drainCtx, cancel := context.WithTimeout(ctx, gcDrainLimit)
	err := r.gate.close(drainCtx)
	cancel()
	if err != nil {
		return res, err
	}
	defer r.gate.open()
	r.log.Info("garbage collection started; writes held off", "dry_run", dryRun)

	pushing := r.pending.snapshot()
	keep := map[digest.Digest]bool{}
	if err := r.keepAliased(ctx, keep); err != nil {
		return res, fmt.Errorf("garbage collection: %w", err)
	}
	maps.Copy(keep, pushing)
	rec := &recordingDriver{StorageDriver: r.driver, dryRun: dryRun}
	ns := protectedNamespace{Namespace: r.ns, keep: keep, mu: &sync.Mutex{}, seen: map[digest.Digest]bool{}}
	ctx = withLogrus(ctx, r.log)
	err = storage.MarkAndSweep(ctx, rec, ns, storage.GCOpts{Quiet: true})
	res.Duration = time.Since(res.Started).Seconds()
	res.Blobs, res.LayerLinks = rec.result()
	for _, b := range res.Blobs {
		res.Bytes += b.Size
	}
	for d := range ns.keptSeen() {
		if pushing[d] { // not the blobs kept for their sha512 links
			res.Kept = append(res.Kept, d.String())
		}
	}
	sort.Strings(res.Kept)
	if err != nil {
		res.Error = err.Error()
	}
	r.stats.recordGC(res, err)
	if !dryRun {
		r.lastGC.Store(&res)
		r.markDirty()
	}
	r.log.Info("garbage collection done", "dry_run", dryRun, "blobs", len(res.Blobs), "bytes", res.Bytes,
		"layer_links", res.LayerLinks, "kept_for_pushes", len(res.Kept), "seconds", res.Duration, "err", err)
	if err != nil {
		return res, fmt.Errorf("garbage collection: %w", err)
	}
	return res, nil
}

// recordingDriver notes every path mark and sweep deletes; when dry, it
// deletes nothing.
type recordingDriver struct {
	storagedriver.StorageDriver
	dryRun bool

	mu    sync.Mutex
	blobs []GCBlob
	links int
}

func (d *recordingDriver) Delete(ctx context.Context, p string) error {
	// <root>/v2/blobs/<alg>/<2 hex>/<hex>, and
	// <root>/v2/repositories/<name>/_layers/<alg>/<hex>/link.
	parts := strings.Split(strings.Trim(strings.TrimSuffix(p, "/link"), "/"), "/")
	switch {
	case len(parts) >= 4 && parts[len(parts)-4] == "blobs":
		dg := digest.NewDigestFromEncoded(digest.Algorithm(parts[len(parts)-3]), parts[len(parts)-1])
		var size int64
		if fi, err := d.StorageDriver.Stat(ctx, path.Join(p, "data")); err == nil {
			size = fi.Size()
		}
		d.mu.Lock()
		d.blobs = append(d.blobs, GCBlob{Digest: dg.String(), Size: size})
		d.mu.Unlock()
	case len(parts) >= 3 && parts[len(parts)-3] == "_layers":
		d.mu.Lock()
		d.links++
		d.mu.Unlock()
	}
	if d.dryRun {
		return nil
	}
	return d.StorageDriver.Delete(ctx, p)
}

func (d *recordingDriver) result() ([]GCBlob, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := append([]GCBlob(nil), d.blobs...)
	sort.Slice(out, func(i, j int) bool { return out[i].Digest < out[j].Digest })
	return out, d.links
}

// protectedNamespace hides the blobs of pushes in progress from the sweep:
// mark and sweep deletes what the blob enumerators yield and nothing marks,
// so a blob they do not yield stays, with its repository link.
type protectedNamespace struct {
	distribution.Namespace
	keep map[digest.Digest]bool

	mu   *sync.Mutex
	seen map[digest.Digest]bool
}

func (p protectedNamespace) keptSeen() map[digest.Digest]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen
}

// filter wraps an enumeration callback, skipping kept digests.
func (p protectedNamespace) filter(ingest func(digest.Digest) error) func(digest.Digest) error {
	return func(d digest.Digest) error {
		if p.keep[d] {
			p.mu.Lock()
			p.seen[d] = true
			p.mu.Unlock()
			return nil
		}
		return ingest(d)
	}
}

// Enumerate lists repositories (MarkAndSweep needs a RepositoryEnumerator).
func (p protectedNamespace) Enumerate(ctx context.Context, ingest func(string) error) error {
	en, ok := p.Namespace.(distribution.RepositoryEnumerator)
	if !ok {
		return fmt.Errorf("storage cannot list repositories")
	}
	return en.Enumerate(ctx, ingest)
}

func (p protectedNamespace) Blobs() distribution.BlobEnumerator {
	return blobEnumFunc(func(ctx context.Context, ingest func(digest.Digest) error) error {
		return p.Namespace.Blobs().Enumerate(ctx, p.filter(ingest))
	})
}

func (p protectedNamespace) Repository(ctx context.Context, name reference.Named) (distribution.Repository, error) {
	repo, err := p.Namespace.Repository(ctx, name)
	if err != nil {
		return nil, err
	}
	return protectedRepo{Repository: repo, ns: p}, nil
}

type blobEnumFunc func(ctx context.Context, ingest func(digest.Digest) error) error

func (f blobEnumFunc) Enumerate(ctx context.Context, ingest func(digest.Digest) error) error {
	return f(ctx, ingest)
}

type protectedRepo struct {
	distribution.Repository
	ns protectedNamespace
}

func (p protectedRepo) Blobs(ctx context.Context) distribution.BlobStore {
	return protectedBlobs{BlobStore: p.Repository.Blobs(ctx), ns: p.ns}
}

// protectedBlobs is a repository's blob store; its Enumerate (the layer
// links) skips kept digests.
type protectedBlobs struct {
	distribution.BlobStore
	ns protectedNamespace
}

func (p protectedBlobs) Enumerate(ctx context.Context, ingest func(digest.Digest) error) error {
	en, ok := p.BlobStore.(distribution.ManifestEnumerator)
	if !ok {
		return fmt.Errorf("storage cannot list a repository's blobs")
	}
	return en.Enumerate(ctx, p.ns.filter(ingest))
}
