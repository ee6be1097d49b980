package registry

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// CopyImage stores the image ref (an upstream-qualified name,
// up.example/lab/app:1.0, or docker.io's short form) from the upstream
// registry.mirrors names for its registry, as a pull of it through this
// registry would: under the same name, every manifest, config and layer
// (an index with all its platforms), each checked against its digest on
// the way in, and the tag not pinned, so later pulls still follow the
// upstream. It returns the stored repository and the digest. A chart
// sync with images: true copies its charts' images with it.
func (r *Registry) CopyImage(ctx context.Context, ref string) (stored, dgst string, err error) {
	src, err := name.ParseReference(ref)
	if err != nil {
		return "", "", fmt.Errorf("%q is not an image name: %w", ref, err)
	}
	host := registryHost(ref)
	if host == "" {
		host = "docker.io"
	}
	upRepo := src.Context().RepositoryStr()
	stored = qualify(host, upRepo)
	ups := r.upstreams.Load()
	var u *upstream
	if ups != nil {
		u = (*ups)[host]
	}
	if u == nil {
		return stored, "", fmt.Errorf("registry.mirrors has no entry for %s: add it (with the url it is reached at) so its images can be copied", host)
	}
	tr, err := u.transport(ctx, upRepo)
	if err != nil {
		return stored, "", fmt.Errorf("%s: %w", host, err)
	}
	var nopts []name.Option
	if u.base.Scheme == "http" {
		nopts = append(nopts, name.Insecure)
	}
	from, err := name.ParseReference(u.base.Host+"/"+upRepo+refSuffix(src), nopts...)
	if err != nil {
		return stored, "", err
	}
	desc, err := remote.Get(from, remote.WithContext(ctx), remote.WithTransport(tr))
	if err != nil {
		return stored, "", fmt.Errorf("fetch %s from %s: %w", ref, u.base.Redacted(), err)
	}
	if d, ok := src.(name.Digest); ok && d.DigestStr() != desc.Digest.String() {
		return stored, "", fmt.Errorf("%s: the upstream sent %s", ref, desc.Digest)
	}
	to, err := name.NewDigest(internalRegistry+"/"+stored+"@"+desc.Digest.String(), name.StrictValidation)
	if err != nil {
		return stored, "", err
	}
	into := []remote.Option{remote.WithContext(ctx), remote.WithTransport(handlerTransport{r.internal})}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err == nil {
			err = remote.WriteIndex(to, idx, into...)
		}
		if err != nil {
			return stored, "", fmt.Errorf("copy %s: %w", ref, err)
		}
	} else {
		img, err := desc.Image()
		if err == nil {
			err = remote.Write(to, img, into...)
		}
		if err != nil {
			return stored, "", fmt.Errorf("copy %s: %w", ref, err)
		}
	}
	if t, ok := src.(name.Tag); ok {
		if err := r.tagCopied(ctx, stored, t.TagStr(), desc.Descriptor); err != nil {
			return stored, "", fmt.Errorf("tag %s: %w", ref, err)
		}
	}
	r.log.Info("registry: image copied from its upstream", "image", ref, "stored", stored, "digest", desc.Digest)
	return stored, desc.Digest.String(), nil
}

// refSuffix is ":TAG" or "@DIGEST" of ref.
func refSuffix(ref name.Reference) string {
	if d, ok := ref.(name.Digest); ok {
		return "@" + d.DigestStr()
	}
	return ":" + ref.Identifier()
}

// tagCopied points tag of repo at the copied manifest as pull-through
// would (unpinned), unless the tag was pushed or imported here: then the
// pushed one stays.
func (r *Registry) tagCopied(ctx context.Context, repo, tag string, d v1.Descriptor) error {
	ctx = withLogrus(ctx, r.log)
	if r.pinned(ctx, repo, tag) {
		return nil
	}
	if !r.gate.enter() {
		return errors.New("a garbage collection is running: sync again when it is done")
	}
	defer r.gate.leave()
	rp, err := r.repository(ctx, repo)
	if err != nil {
		return err
	}
	dg, err := digest.Parse(d.Digest.String())
	if err != nil {
		return err
	}
	if err := rp.Tags(ctx).Tag(ctx, tag, ocispec.Descriptor{MediaType: string(d.MediaType), Digest: dg, Size: d.Size}); err != nil {
		return err
	}
	r.markDirty()
	return nil
}
