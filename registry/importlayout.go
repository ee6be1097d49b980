package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/airgapd/airgapd/internal/atomicfile"
	"github.com/distribution/distribution/v3"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
)

// Annotations naming an image in an OCI layout's index.json.
const (
	annotationContainerdName = "io.containerd.image.name"
	annotationRefName        = "org.opencontainers.image.ref.name"
)

// layoutPlan is what a layout import stores besides what goes together
// through remote.MultiWrite.
type layoutPlan struct {
	// later are manifests with a subject (signatures, SBOMs, attestations
	// as OCI referrers), pushed one by one after the rest.
	later []plannedPush
	// partial are indexes some of whose manifests the layout lacks (a
	// bundle made with --platform): stored as they are, their other
	// platforms answering 404.
	partial []plannedPush
	// childOfPartial marks the todo entries that are a partial index's
	// children, pushed by digest.
	childOfPartial map[name.Reference]bool
}

type plannedPush struct {
	ref name.Reference
	t   remote.Taggable
}

// fromLayout adds every image or index listed in the layout's index.json.
// Blobs the layout lacks but the registry holds (an incremental bundle's
// base) are copied into it from storage first.
func (r *Registry) fromLayout(ctx context.Context, dir, repo string, todo map[name.Reference]remote.Taggable, plan *layoutPlan) error {
	p, err := layout.FromPath(dir)
	if err != nil {
		return fmt.Errorf("%s is not an OCI image layout: %w", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, desc := range im.Manifests {
		if _, err := r.fillFromStorage(ctx, dir, desc); err != nil {
			return err
		}
	}
	for _, desc := range im.Manifests {
		n := desc.Annotations[annotationContainerdName]
		if n == "" {
			n = desc.Annotations[annotationRefName]
		}
		ref, err := importName(n, repo)
		if err != nil {
			return fmt.Errorf("index.json entry %s: %w", desc.Digest, err)
		}
		switch {
		case desc.MediaType.IsIndex():
			ii, err := idx.ImageIndex(desc.Digest)
			if err != nil {
				return err
			}
			complete, err := layoutComplete(dir, desc)
			if err != nil {
				return err
			}
			if complete {
				todo[ref] = ii
				continue
			}
			if err := addPresentChildren(dir, ref.Context(), ii, todo, plan); err != nil {
				return err
			}
			plan.partial = append(plan.partial, plannedPush{ref: ref, t: ii})
		case desc.MediaType.IsImage():
			img, err := idx.Image(desc.Digest)
			if err != nil {
				return err
			}
			raw, err := img.RawManifest()
			if err != nil {
				return err
			}
			var withSubject struct {
				Subject *v1.Descriptor `json:"subject"`
			}
			if json.Unmarshal(raw, &withSubject) == nil && withSubject.Subject != nil {
				plan.later = append(plan.later, plannedPush{ref: ref, t: img})
				continue
			}
			todo[ref] = img
		default:
			continue // neither an image nor an index: skip it
		}
	}
	return nil
}

// layoutBlob is where a layout keeps blob d.
func layoutBlob(dir string, d v1.Hash) string {
	return filepath.Join(dir, "blobs", d.Algorithm, d.Hex)
}

// layoutComplete reports whether the layout holds every manifest and blob
// desc is made of.
func layoutComplete(dir string, desc v1.Descriptor) (bool, error) {
	missing := false
	err := walkLayout(dir, desc, func(d v1.Descriptor, present bool) {
		missing = missing || !present
	})
	return !missing, err
}

// walkLayout calls visit for desc and everything it references, saying
// whether the layout holds each; it descends into what it holds.
func walkLayout(dir string, desc v1.Descriptor, visit func(d v1.Descriptor, present bool)) error {
	raw, err := os.ReadFile(layoutBlob(dir, desc.Digest))
	if err != nil {
		visit(desc, false)
		return nil
	}
	visit(desc, true)
	switch {
	case desc.MediaType.IsIndex():
		im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("index %s: %w", desc.Digest, err)
		}
		for _, c := range im.Manifests {
			if err := walkLayout(dir, c, visit); err != nil {
				return err
			}
		}
	case desc.MediaType.IsImage():
		m, err := v1.ParseManifest(bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("manifest %s: %w", desc.Digest, err)
		}
		for _, b := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			_, err := os.Stat(layoutBlob(dir, b.Digest))
			visit(b, err == nil)
		}
	}
	return nil
}

// addPresentChildren adds, by digest, the children of a partial index
// that the layout holds whole.
func addPresentChildren(dir string, repo name.Repository, ii v1.ImageIndex, todo map[name.Reference]remote.Taggable, plan *layoutPlan) error {
	im, err := ii.IndexManifest()
	if err != nil {
		return err
	}
	if plan.childOfPartial == nil {
		plan.childOfPartial = map[name.Reference]bool{}
	}
	for _, c := range im.Manifests {
		complete, err := layoutComplete(dir, c)
		if err != nil {
			return err
		}
		ref := repo.Digest(c.Digest.String())
		switch {
		case complete && c.MediaType.IsIndex():
			child, err := ii.ImageIndex(c.Digest)
			if err != nil {
				return err
			}
			todo[ref] = child
		case complete && c.MediaType.IsImage():
			child, err := ii.Image(c.Digest)
			if err != nil {
				return err
			}
			todo[ref] = child
		case c.MediaType.IsIndex():
			if _, err := os.Stat(layoutBlob(dir, c.Digest)); err != nil {
				continue
			}
			child, err := ii.ImageIndex(c.Digest)
			if err != nil {
				return err
			}
			if err := addPresentChildren(dir, repo, child, todo, plan); err != nil {
				return err
			}
			plan.partial = append(plan.partial, plannedPush{ref: ref, t: child})
			continue
		default:
			continue // left out of the bundle (--platform)
		}
		plan.childOfPartial[ref] = true
	}
	return nil
}

// fillFromStorage copies into the layout each blob desc references that
// the layout lacks and the registry's storage holds, checking its digest.
// It returns how many it copied.
func (r *Registry) fillFromStorage(ctx context.Context, dir string, desc v1.Descriptor) (int, error) {
	copied := 0
	for {
		var missing []v1.Descriptor
		if err := walkLayout(dir, desc, func(d v1.Descriptor, present bool) {
			if !present {
				missing = append(missing, d)
			}
		}); err != nil {
			return copied, err
		}
		progress := false
		for _, d := range missing {
			ok, err := r.copyStoredBlob(ctx, d.Digest, layoutBlob(dir, d.Digest))
			if err != nil {
				return copied, err
			}
			if ok {
				copied++
				progress = true
			}
		}
		// A manifest copied in may name blobs the walk has not seen yet.
		if !progress {
			return copied, nil
		}
	}
}

// storedBlobPath is where distribution's storage keeps a blob's bytes.
func storedBlobPath(d v1.Hash) string {
	return "/docker/registry/v2/blobs/" + d.Algorithm + "/" + d.Hex[:2] + "/" + d.Hex + "/data"
}

// copyStoredBlob copies blob d from storage to dst; false when storage
// does not hold it.
func (r *Registry) copyStoredBlob(ctx context.Context, d v1.Hash, dst string) (bool, error) {
	if d.Algorithm != "sha256" || len(d.Hex) != 64 {
		return false, nil
	}
	rc, err := r.driver.Reader(ctx, storedBlobPath(d), 0)
	if err != nil {
		var notFound storagedriver.PathNotFoundError
		if errors.As(err, &notFound) {
			return false, nil
		}
		return false, fmt.Errorf("read blob %s from storage: %w", d, err)
	}
	defer rc.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return false, err
	}
	// A blob whose bytes do not match never lands under its digest.
	err = atomicfile.WriteWith(dst, 0o644, func(w io.Writer) error {
		h := sha256.New()
		if _, err := io.Copy(io.MultiWriter(w, h), rc); err != nil {
			return err
		}
		if hex.EncodeToString(h.Sum(nil)) != d.Hex {
			return fmt.Errorf("storage holds other bytes under blob %s: run airgapd registry gc, or import the bundle that carried it again", d)
		}
		return nil
	})
	return err == nil, err
}

// MissingBlobs lists the digests the registry's storage does not hold, so
// an incremental bundle's images can leave out what its base brought.
func (r *Registry) MissingBlobs(ctx context.Context, digests []string) ([]string, error) {
	var missing []string
	for _, s := range digests {
		d, err := digest.Parse(s)
		if err != nil {
			return nil, err
		}
		if _, err := r.ns.BlobStatter().Stat(ctx, d); err != nil {
			if errors.Is(err, distribution.ErrBlobUnknown) {
				missing = append(missing, s)
				continue
			}
			return nil, fmt.Errorf("blob %s: %w", s, err)
		}
	}
	return missing, nil
}

// putPartialIndex stores an index some of whose manifests are absent
// (a bundle made with --platform) byte for byte, and tags it. The served
// handler refuses such an index (distribution checks an index's children
// exist before accepting it), so it goes straight into storage through
// airgapd's own handle, which does not check, under the same write gate
// as pushes. Pulling a platform left out answers 404 manifest unknown.
func (r *Registry) putPartialIndex(ctx context.Context, ref name.Reference, ii v1.ImageIndex) error {
	if !r.gate.enter() {
		return errGCRunning
	}
	defer r.gate.leave()
	ctx = withLogrus(ctx, r.log)
	raw, err := ii.RawManifest()
	if err != nil {
		return err
	}
	mt, err := ii.MediaType()
	if err != nil {
		return err
	}
	want, err := ii.Digest()
	if err != nil {
		return err
	}
	named, err := reference.WithName(ref.Context().RepositoryStr())
	if err != nil {
		return err
	}
	repo, err := r.ns.Repository(ctx, named)
	if err != nil {
		return err
	}
	ms, err := repo.Manifests(ctx)
	if err != nil {
		return err
	}
	m, _, err := distribution.UnmarshalManifest(string(mt), raw)
	if err != nil {
		return fmt.Errorf("index %s: %w", want, err)
	}
	got, err := ms.Put(ctx, m)
	if err != nil {
		return fmt.Errorf("store index %s: %w", want, err)
	}
	if got.String() != want.String() {
		return fmt.Errorf("storage named index %s %s: its bytes changed on the way, which must not happen", want, got)
	}
	if tag, ok := ref.(name.Tag); ok {
		if err := repo.Tags(ctx).Tag(ctx, tag.TagStr(), distribution.Descriptor{MediaType: string(mt), Digest: got, Size: int64(len(raw))}); err != nil {
			return fmt.Errorf("tag %s: %w", ref, err)
		}
	}
	return nil
}
