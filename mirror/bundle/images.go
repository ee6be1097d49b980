package bundle

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// cosignSuffixes are the tags cosign attaches to an image's digest
// (sha256-HEX.sig and so on), for registries without the referrers API.
var cosignSuffixes = []string{".sig", ".att", ".sbom"}

// maxAttached bounds the signatures and referrers followed from one image
// (referrers of referrers included), so a registry answering in circles
// cannot keep create busy.
const maxAttached = 256

// imageCollector describes images for a bundle: each image or index byte
// for byte with every blob it is made of, the platforms chosen, and what
// is attached to it (cosign tags and OCI referrers).
type imageCollector struct {
	ctx context.Context
	log *slog.Logger
	ups map[string]Upstream
	// local, when set, serves every image instead of its upstream.
	local *LocalRegistry
	srcs  map[string]blobSource
	// base holds name\x00digest of the images the base bundle carried.
	base map[string]bool
	// platforms filters multi-arch indexes; empty keeps them whole.
	platforms []v1.Platform
	// manifests holds the digests of every manifest and index described.
	manifests map[string]bool
}

// parsePlatforms reads --platform values: os/arch[/variant], each flag
// repeatable or a comma list.
func parsePlatforms(specs []string) ([]v1.Platform, error) {
	var out []v1.Platform
	for _, s := range specs {
		for _, one := range strings.Split(s, ",") {
			one = strings.TrimSpace(one)
			if one == "" {
				continue
			}
			p, err := v1.ParsePlatform(one)
			if err != nil || p.OS == "" || p.Architecture == "" {
				return nil, fmt.Errorf("--platform %q: write os/arch or os/arch/variant (linux/amd64, linux/arm64/v8)", one)
			}
			out = append(out, *p)
		}
	}
	return out, nil
}

// source is where an image named by its upstream-qualified name is
// fetched from, and how.
type source struct {
	repo name.Repository
	opts []remote.Option
}

// resolve turns a reference into its upstream-qualified name and the
// repository it is really fetched from (registry.mirrors' url).
func (c *imageCollector) resolve(tag name.Tag) (string, source, error) {
	n := imageName(tag)
	src := source{repo: tag.Context(), opts: []remote.Option{remote.WithContext(c.ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}}
	if c.local != nil {
		return c.fromLocal(c.local, n, src)
	}
	host, _, _ := strings.Cut(n, "/")
	up, ok := c.ups[host]
	if !ok || up.URL == "" {
		return n, src, nil
	}
	u, err := url.Parse(up.URL)
	if err != nil || u.Host == "" {
		return n, src, fmt.Errorf("image %s: registry.mirrors url %q is not a URL", n, up.URL)
	}
	var nopts []name.Option
	if u.Scheme == "http" {
		nopts = append(nopts, name.Insecure)
	}
	prefix := strings.Trim(u.Path, "/")
	if prefix != "" {
		prefix += "/"
	}
	src.repo, err = name.NewRepository(u.Host+"/"+prefix+tag.RepositoryStr(), nopts...)
	if err != nil {
		return n, src, fmt.Errorf("image %s via %s: %w", n, up.URL, err)
	}
	if up.Username != "" {
		src.opts[1] = remote.WithAuth(&authn.Basic{Username: up.Username, Password: up.Password})
	}
	return n, src, nil
}

// fromLocal points src at this instance's registry lr, where the image n
// (upstream-qualified, with its tag) is stored under its own name.
func (c *imageCollector) fromLocal(lr *LocalRegistry, n string, src source) (string, source, error) {
	u, err := url.Parse(lr.URL)
	if err != nil || u.Host == "" {
		return n, src, fmt.Errorf("this registry's address %q is not a URL", lr.URL)
	}
	var nopts []name.Option
	if u.Scheme == "http" {
		nopts = append(nopts, name.Insecure)
	}
	repo := n
	if i := strings.LastIndex(n, ":"); i > strings.LastIndex(n, "/") {
		repo = n[:i] // without the tag (a registry host's port is before a "/")
	}
	if src.repo, err = name.NewRepository(u.Host+"/"+repo, nopts...); err != nil {
		return n, src, fmt.Errorf("image %s in this registry: %w", n, err)
	}
	tr, err := localTransport(lr)
	if err != nil {
		return n, src, err
	}
	src.opts = append(src.opts, remote.WithTransport(tr))
	return n, src, nil
}

// localTransport trusts the appliance CA beside the system's roots.
func localTransport(lr *LocalRegistry) (*http.Transport, error) {
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if len(lr.CAPEM) > 0 && !roots.AppendCertsFromPEM(lr.CAPEM) {
		return nil, errors.New("the appliance CA is not a PEM certificate")
	}
	tr := remote.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	return tr, nil
}

// collect describes ref and everything attached to it: the image first,
// then its signatures and referrers, each an item of its own.
func (c *imageCollector) collect(ref string) ([]Image, error) {
	pin := ""
	if r, d, ok := strings.Cut(ref, "@"); ok {
		ref, pin = r, d
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w (write registry/repository:tag, optionally @sha256:… to pin it)", ref, err)
	}
	n, src, err := c.resolve(tag)
	if err != nil {
		return nil, err
	}
	return c.collectFrom(n, src, tag, pin)
}

// collectFrom describes the image n (tag of src.repo, pinned to pin when
// set) and what is attached to it.
func (c *imageCollector) collectFrom(n string, src source, tag name.Tag, pin string) ([]Image, error) {
	desc, err := remote.Get(src.repo.Tag(tag.TagStr()), src.opts...)
	if err != nil {
		return nil, fmt.Errorf("image %s: fetch from %s: %w", n, src.repo.RegistryStr(), err)
	}
	if pin != "" && pin != desc.Digest.String() {
		return nil, fmt.Errorf("image %s is %s now, not the pinned %s", n, desc.Digest, pin)
	}
	im, err := c.describe(n, desc, true)
	if err != nil {
		return nil, err
	}
	items := []Image{im}
	attached, err := c.attached(strings.TrimSuffix(n, ":"+tag.TagStr()), src, im)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", n, err)
	}
	return append(items, attached...), nil
}

// describe lists every blob of the image or index desc (with --platform,
// of the chosen platforms only) and records where to read each.
func (c *imageCollector) describe(n string, desc *remote.Descriptor, filter bool) (Image, error) {
	im := Image{Name: n, Digest: desc.Digest.String(), MediaType: string(desc.MediaType), Size: desc.Size, Blobs: []string{}}
	im.InBase = c.base[im.Name+"\x00"+im.Digest]
	var err error
	if desc.MediaType.IsIndex() {
		var idx v1.ImageIndex
		if idx, err = desc.ImageIndex(); err == nil {
			err = c.addIndex(&im, idx, filter, true)
		}
	} else {
		var img v1.Image
		if img, err = desc.Image(); err == nil {
			err = c.addImage(&im, img)
		}
	}
	if err != nil {
		return im, fmt.Errorf("image %s: %w", n, err)
	}
	return im, nil
}

func (c *imageCollector) addBytes(im *Image, d v1.Hash, b []byte) {
	im.Blobs = append(im.Blobs, d.String())
	if _, ok := c.srcs[d.String()]; !ok {
		c.srcs[d.String()] = blobSource{size: int64(len(b)), open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
	}
}

func (c *imageCollector) addImage(im *Image, img v1.Image) error {
	raw, err := img.RawManifest()
	if err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	c.addBytes(im, d, raw)
	c.manifests[d.String()] = true
	cfgName, err := img.ConfigName()
	if err != nil {
		return err
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	c.addBytes(im, cfgName, rawCfg)
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		ld, err := l.Digest()
		if err != nil {
			return err
		}
		size, err := l.Size()
		if err != nil {
			return err
		}
		im.Blobs = append(im.Blobs, ld.String())
		if _, ok := c.srcs[ld.String()]; !ok {
			c.srcs[ld.String()] = blobSource{size: size, open: l.Compressed}
		}
	}
	return nil
}

// addIndex adds the index's own bytes, unchanged, and its children: all of
// them, or with --platform the chosen platforms' manifests and the
// attestation manifests that describe them (buildx's, platform
// unknown/unknown). top: im.Platforms records a filter that left some out.
func (c *imageCollector) addIndex(im *Image, idx v1.ImageIndex, filter, top bool) error {
	raw, err := idx.RawManifest()
	if err != nil {
		return err
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	c.addBytes(im, d, raw)
	c.manifests[d.String()] = true
	mf, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	keep := make([]bool, len(mf.Manifests))
	kept := map[string]bool{}
	var offered []string
	for i, ch := range mf.Manifests {
		switch {
		case !filter || len(c.platforms) == 0 || ch.MediaType.IsIndex():
			keep[i] = true
		case ch.Platform != nil && slices.ContainsFunc(c.platforms, ch.Platform.Satisfies):
			keep[i] = true
		}
		if keep[i] {
			kept[ch.Digest.String()] = true
		}
		if ch.Platform != nil && ch.Platform.OS != "unknown" {
			offered = append(offered, ch.Platform.String())
		}
	}
	for i, ch := range mf.Manifests {
		if !keep[i] && ch.Annotations["vnd.docker.reference.type"] == "attestation-manifest" && kept[ch.Annotations["vnd.docker.reference.digest"]] {
			keep[i] = true
		}
	}
	dropped := slices.Contains(keep, false)
	if top && dropped {
		if !slices.ContainsFunc(mf.Manifests, func(ch v1.Descriptor) bool {
			return kept[ch.Digest.String()] && ch.Platform != nil && ch.Platform.OS != "unknown"
		}) {
			return fmt.Errorf("no manifest for --platform %s: the index offers %s", platformList(c.platforms), strings.Join(offered, ", "))
		}
		im.Platforms = strings.Split(platformList(c.platforms), ",")
	}
	for i, ch := range mf.Manifests {
		if !keep[i] {
			continue
		}
		if ch.MediaType.IsIndex() {
			child, err := idx.ImageIndex(ch.Digest)
			if err != nil {
				return err
			}
			if err := c.addIndex(im, child, filter, false); err != nil {
				return err
			}
			continue
		}
		child, err := idx.Image(ch.Digest)
		if err != nil {
			return err
		}
		if err := c.addImage(im, child); err != nil {
			return fmt.Errorf("manifest %s: %w", ch.Digest, err)
		}
	}
	return nil
}

func platformList(ps []v1.Platform) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return strings.Join(s, ",")
}

// manifestDigests are the digests of the manifests im carries (the image
// or index, and the children kept): what signatures and referrers can
// point at.
func (c *imageCollector) manifestDigests(im Image) []string {
	out := []string{im.Digest}
	for _, b := range im.Blobs {
		if b == im.Digest {
			continue
		}
		if c.manifests[b] {
			out = append(out, b)
		}
	}
	return out
}

// attached finds what is attached to im's manifests in the upstream: the
// cosign tags sha256-HEX.sig, .att, .sbom and the OCI referrers (the
// referrers API, or its tag schema sha256-HEX where a registry lacks it;
// remote.Referrers asks both), and referrers of those in turn.
func (c *imageCollector) attached(repoName string, src source, im Image) ([]Image, error) {
	var out []Image
	seen := map[string]bool{}
	queue := c.manifestDigests(im)
	for _, d := range queue {
		seen[d] = true
	}
	for len(queue) > 0 {
		subject := queue[0]
		queue = queue[1:]
		hexD := strings.TrimPrefix(subject, "sha256:")
		var found []Image
		for _, suffix := range cosignSuffixes {
			tag := "sha256-" + hexD + suffix
			// HEAD first: most images have no such tag, and registries
			// that limit pulls count GETs of manifests, not HEADs.
			_, err := remote.Head(src.repo.Tag(tag), src.opts...)
			if isNotFound(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("signature tag %s: %w", tag, err)
			}
			desc, err := remote.Get(src.repo.Tag(tag), src.opts...)
			if err != nil {
				return nil, fmt.Errorf("signature tag %s: %w", tag, err)
			}
			a, err := c.describe(repoName+":"+tag, desc, false)
			if err != nil {
				return nil, err
			}
			found = append(found, a)
		}
		h, err := v1.NewHash(subject)
		if err != nil {
			return nil, err
		}
		refs, err := remote.Referrers(src.repo.Digest(h.String()), src.opts...)
		if err != nil && !isNotFound(err) {
			return nil, fmt.Errorf("referrers of %s: %w", subject, err)
		}
		if err == nil {
			mf, err := refs.IndexManifest()
			if err != nil {
				return nil, fmt.Errorf("referrers of %s: %w", subject, err)
			}
			for _, r := range mf.Manifests {
				desc, err := remote.Get(src.repo.Digest(r.Digest.String()), src.opts...)
				if err != nil {
					return nil, fmt.Errorf("referrer %s of %s: %w", r.Digest, subject, err)
				}
				a, err := c.describe(repoName+"@"+r.Digest.String(), desc, false)
				if err != nil {
					return nil, err
				}
				found = append(found, a)
			}
		}
		for _, a := range found {
			if seen[a.Digest+"\x00"+a.Name] {
				continue
			}
			seen[a.Digest+"\x00"+a.Name] = true
			a.Subject = subject
			out = append(out, a)
			if len(out) > maxAttached {
				return nil, fmt.Errorf("more than %d signatures and referrers attached: the upstream answers in circles", maxAttached)
			}
			if !seen[a.Digest] {
				seen[a.Digest] = true
				queue = append(queue, a.Digest)
			}
		}
	}
	if len(out) > 0 {
		c.log.Info("bundle: carrying signatures and referrers", "image", im.Name, "count", len(out))
	}
	return out, nil
}

// isNotFound is a registry's 404 (no such tag or manifest).
func isNotFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound
}
